// One load thread: owns a share of the publishers, subscribers and idle connections of a run.
// Conversation with the controller (generator.ts):
//   worker → 'online';  controller → 'setup'  → worker connects everything → 'ready' | 'error'
//   controller → 'start' → worker publishes (or churns) while the shared phase is WARMUP/MEASURE
//   controller → 'report' → worker → 'report' (latency histogram);  controller → 'close'
import { parentPort, workerData } from 'node:worker_threads';
import { DISCONNECT } from './protocol';
import { newHistogram } from './histogram';
import type { ChurnPlan, PubSubPlan, SubscriberSpec, WorkerInit } from './plan';
import { Publisher } from './publisher';
import { openSession, Session } from './session';
import { Phase, seenIndex, sentIndex, SharedView, Stat, statIndex, view } from './shared';
import { ReceiveTally, Subscriber } from './subscriber';

const SETUP_TIMEOUT_MS = 15000;
const MAX_BATCH = 128;
// BENCH_DEBUG=1 prints these per thread each second: how the load itself behaves (chunks per
// read, messages per batch, pumps per second) when a figure looks wrong.
const dbg = { chunks: 0, bytes: 0, pumps: 0, batches: 0, sent: 0, blocked: 0 };
if (process.env.BENCH_DEBUG) setInterval(() => { console.error(`load thread ${init.thread}`, JSON.stringify(dbg)); }, 1000).unref();

const init = workerData as WorkerInit;
const shared: SharedView = view(init.shared, init.threads, init.publisherCount);
const port = parentPort!;
const sessions: Session[] = [];
const publishers: Publisher[] = [];
const subscribers: Subscriber[] = [];
let faulted = false;

function stat(s: Stat): number {
  return statIndex(init.thread, s);
}

function phase(): Phase {
  return Atomics.load(shared.all, 0) as Phase;
}

function nowMicros(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

function fault(message: string): void {
  Atomics.add(shared.all, stat(Stat.ERRORS), 1);
  if (!faulted && phase() < Phase.DRAIN) {
    faulted = true;
    port.postMessage({ type: 'fault', message });
  }
}

function watch(session: Session, what: string): void {
  session.socket.on('error', (err) => fault(`${what}: ${err.message}`));
  session.socket.on('close', () => { if (phase() < Phase.DONE) fault(`${what}: connection closed by broker`); });
}

function session(clientId: string, filters: string[], qos: number, persistent = false): Promise<Session> {
  return openSession({ host: init.host, port: init.port, clientId, version: init.plan.version, filters, qos, timeoutMs: SETUP_TIMEOUT_MS, persistent })
    .then((s) => { sessions.push(s); return s; });
}

// ---- receive side --------------------------------------------------------------------------

const tally: ReceiveTally = {
  received: 0, outOfOrder: 0, perPublisher: new Int32Array(init.publisherCount), touched: [],
  histogram: newHistogram(), recording: false, nowMicros: 0,
};

/** Publishes this chunk's counts to shared memory: one atomic per counter per chunk. */
function flushTally(): void {
  const all = shared.all;
  if (tally.received > 0) Atomics.add(all, stat(Stat.RECEIVED), tally.received);
  if (tally.outOfOrder > 0) Atomics.add(all, stat(Stat.OUT_OF_ORDER), tally.outOfOrder);
  tally.received = 0;
  tally.outOfOrder = 0;
  for (const pub of tally.touched) {
    Atomics.add(all, seenIndex(shared, pub), tally.perPublisher[pub]);
    tally.perPublisher[pub] = 0;
  }
  tally.touched.length = 0;
}

async function addSubscriber(spec: SubscriberSpec, plan: PubSubPlan): Promise<void> {
  const s = await session(spec.clientId, spec.filters, plan.qos, spec.persistent);
  const sub = new Subscriber(s, plan.version, init.publisherCount, tally);
  subscribers.push(sub);
  watch(s, `subscriber ${spec.clientId}`);
  s.socket.on('data', (chunk: Buffer) => {
    dbg.chunks++;
    dbg.bytes += chunk.length;
    tally.recording = phase() === Phase.MEASURE;
    tally.nowMicros = nowMicros();
    try { s.framer.push(chunk, sub); } catch (err) { fault((err as Error).message); }
    sub.flushAcks();
    flushTally();
    if (plan.rate === 0) schedulePump(true);
  });
}

// ---- send side -----------------------------------------------------------------------------

let started = 0;
let pumpImmediate: NodeJS.Immediate | null = null;
let pumpTimer: NodeJS.Timeout | null = null;

async function addPublisher(spec: { index: number; clientId: string; topics: string[] }, plan: PubSubPlan): Promise<void> {
  const s = await session(spec.clientId, [], 0);
  const pub = new Publisher(spec.index, s, spec.topics, plan.qos, plan.payload, plan.version);
  publishers.push(pub);
  watch(s, `publisher ${spec.clientId}`);
  s.socket.on('data', (chunk: Buffer) => {
    const before = pub.completed;
    try { s.framer.push(chunk, pub); } catch (err) { fault((err as Error).message); }
    pub.flushReleases();
    if (pub.completed !== before) Atomics.add(shared.all, stat(Stat.COMPLETED), pub.completed - before);
    if (plan.qos > 0) schedulePump(true);
  });
  s.socket.on('drain', () => schedulePump(true));
}

/** How many messages a publisher may send now: rate schedule, closed-loop window, QoS window. */
function allowance(pub: Publisher, plan: PubSubPlan, elapsedMs: number): number {
  let n = MAX_BATCH;
  if (plan.rate > 0) {
    n = Math.min(n, Math.floor(elapsedMs * plan.rate / 1000 / init.publisherCount) - pub.sent);
  } else {
    const seen = Atomics.load(shared.all, seenIndex(shared, pub.index));
    n = Math.min(n, plan.window - (pub.sent - Math.floor(seen / plan.fanout)));
  }
  if (plan.qos > 0) n = Math.min(n, Math.min(plan.inflight, pub.inflightLimit) - (pub.sent - pub.completed));
  return n;
}

function pump(plan: PubSubPlan): void {
  dbg.pumps++;
  if (pumpImmediate) clearImmediate(pumpImmediate);
  if (pumpTimer) clearTimeout(pumpTimer);
  pumpImmediate = null;
  pumpTimer = null;
  if (phase() >= Phase.DRAIN) return;
  const elapsed = performance.now() - started;
  const stamp = nowMicros();
  let full = false;
  for (const pub of publishers) {
    if (pub.blocked) continue;
    const n = allowance(pub, plan, elapsed);
    if (n <= 0) continue;
    pub.sendBatch(n, stamp);
    dbg.batches++;
    dbg.sent += n;
    Atomics.store(shared.all, sentIndex(shared, pub.index), pub.sent);
    Atomics.add(shared.all, stat(Stat.PUBLISHED), n);
    if (n === MAX_BATCH && !pub.blocked) full = true;
  }
  schedulePump(full);
}

// Closed loop: immediately when there is more to send now; otherwise a 1 ms timer. Several
// wake-up reasons in one turn collapse into one pump. A fixed rate has no shared pump: each
// publisher is on its own timer (pace).
function schedulePump(immediate: boolean): void {
  const plan = init.plan as PubSubPlan;
  if (publishers.length === 0 || started === 0 || plan.rate > 0) return;
  if (immediate && !pumpImmediate) pumpImmediate = setImmediate(pump, plan);
  else if (!immediate && !pumpTimer && !pumpImmediate) pumpTimer = setTimeout(pump, 1, plan);
}

/**
 * Fixed rate: every publisher on its own timer, one period (1 / its share of the rate, at least
 * the 1 ms timer resolution) apart, the publishers' phases spread evenly over the period. So
 * they send as independent devices do, not in one synchronized burst per tick, which would hand
 * the broker one big read per connection per tick (its most efficient shape, not the common
 * one). Each tick sends what the publisher's schedule owes (usually one message; more when its
 * share exceeds 1,000 msg/s, or to catch up after a blocked socket or a full QoS window).
 */
function pace(plan: PubSubPlan): void {
  const periodMs = Math.max(1, 1000 / (plan.rate / init.publisherCount));
  for (const pub of publishers) {
    let due = started + (pub.index / init.publisherCount) * periodMs;
    const tick = (): void => {
      if (phase() >= Phase.DRAIN) return;
      const now = performance.now();
      if (!pub.blocked) {
        const n = allowance(pub, plan, now - started);
        if (n > 0) {
          pub.sendBatch(n, nowMicros());
          dbg.batches++;
          dbg.sent += n;
          Atomics.store(shared.all, sentIndex(shared, pub.index), pub.sent);
          Atomics.add(shared.all, stat(Stat.PUBLISHED), n);
        }
      }
      due = Math.max(due + periodMs, now);
      setTimeout(tick, due - now);
    };
    setTimeout(tick, Math.max(0, due - performance.now()));
  }
}

// ---- idle connections and churn --------------------------------------------------------------

async function connectIdle(count: number, concurrency: number, prefix: string): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const s = await session(`${prefix}-${init.thread}-${i}`, [], 0);
      s.socket.on('error', () => Atomics.add(shared.all, stat(Stat.ERRORS), 1));
      Atomics.add(shared.all, stat(Stat.CONNECTS), 1);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
}

function churn(plan: ChurnPlan): void {
  let n = 0;
  const loop = (lane: number) => {
    if (phase() >= Phase.DRAIN) return;
    const clientId = plan.persistent ? `churn-${init.thread}-${lane}` : `churn-${init.thread}-${lane}-${n++}`;
    openSession({ host: init.host, port: init.port, clientId, version: plan.version, filters: [], qos: 0, timeoutMs: 5000, persistent: plan.persistent })
      .then((s) => {
        Atomics.add(shared.all, stat(Stat.CONNECTS), 1);
        s.socket.on('error', () => { /* the broker may reset after DISCONNECT */ });
        s.socket.end(DISCONNECT);
        setImmediate(loop, lane);
      }, () => {
        Atomics.add(shared.all, stat(Stat.ERRORS), 1);
        setTimeout(loop, 10, lane);
      });
  };
  for (let lane = 0; lane < plan.concurrency; lane++) loop(lane);
}

// ---- controller messages -------------------------------------------------------------------

async function setup(): Promise<void> {
  const plan = init.plan;
  if (plan.kind === 'pubsub') {
    await Promise.all(init.subscribers.map((s) => addSubscriber(s, plan)));
    await Promise.all(init.publishers.map((p) => addPublisher(p, plan)));
    if (init.idle > 0) await connectIdle(init.idle, 64, 'idle');
  } else if (plan.kind === 'idle') {
    await connectIdle(init.idle, plan.concurrency, 'idle');
  }
}

function close(): void {
  Atomics.store(shared.all, 0, Phase.DONE);
  for (const s of sessions) {
    s.socket.removeAllListeners('data');
    s.socket.on('error', () => { /* closing */ });
    s.socket.end(DISCONNECT);
    setTimeout(() => s.socket.destroy(), 300).unref();
  }
  setTimeout(() => process.exit(0), 500);
}

port.on('message', (msg: { type: string }) => {
  if (msg.type === 'setup') {
    const t0 = performance.now();
    setup().then(() => port.postMessage({ type: 'ready', setupMs: performance.now() - t0 }),
      (err: Error) => port.postMessage({ type: 'error', message: err.message }));
  } else if (msg.type === 'start') {
    started = performance.now();
    if (init.plan.kind === 'churn') churn(init.plan);
    else if (init.plan.kind === 'pubsub') {
      if (init.plan.rate > 0) pace(init.plan);
      else pump(init.plan);
    }
  } else if (msg.type === 'report') {
    port.postMessage({ type: 'report', histogram: Array.from(tally.histogram) });
  } else if (msg.type === 'close') {
    close();
  }
});
port.postMessage({ type: 'online' });
