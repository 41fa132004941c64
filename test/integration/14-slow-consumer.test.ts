// 14: slow consumers and memory (workers/README.md, "Output and slow consumers").
// A subscriber that stops reading must neither slow the others nor grow the broker's memory
// without bound.
//
// QoS 0: one subscriber stops reading (raw socket: CONNECT + SUBSCRIBE, then socket.pause())
// while 1M small QoS 0 messages are published to it and to a normal subscriber.
// - The broker's RSS (/proc/<pid>/status VmRSS; every thread is in that one process) grows by
//   less than RSS_BOUND over the run. The slow subscriber is sent ~211 MB, so a broker that
//   buffers for it without bound fails; a bounded one needs its working set only.
// - The normal subscriber gets every message, in order.
// - The publisher respects flow: TCP back-pressure ('drain'), and at most WINDOW messages ahead
//   of what the normal subscriber has read, so the normal subscriber never has more than
//   WINDOW * 211 bytes (well under any sane output high-water mark) outstanding and is never
//   a slow consumer itself. The broker may legitimately drop QoS 0 only to the slow one.
// - The drop is counted on a $SYS/broker/... counter; the slow subscriber is still connected
//   (QoS 0 to a slow consumer is dropped, not disconnected), and when it reads again it gets a
//   subset of the messages, in order, then new ones.
//
// QoS 1: a slow subscriber with a small in-flight window stops reading; its session queue is
// bounded by --max-queued-messages / --max-queued-bytes and --queue-policy decides what goes
// (drop-oldest keeps the newest, drop-new keeps the oldest, disconnect closes it); the drops are
// counted on $SYS; the normal QoS 1 subscriber gets every message.
//
// `--sys-interval 1` is the broker's own setting for the $SYS update period (its --help);
// without it the counters would still come, only up to 10 s later.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import * as mqttPacket from 'mqtt-packet';
import type { IPublishPacket } from 'mqtt-packet';
import { waitUntil, within } from '../helpers/wait';
import { rssBytes, crashLines } from '../helpers/proc';
import { launchBroker, Broker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';
import { FrameCounter } from '../helpers/frames';
import { SysWatcher } from '../helpers/sys-watcher';
import { RawConn, publishQos1 } from '../helpers/qos1-load';
import { metric } from '../helpers/metrics';

const MB = 1024 * 1024;
const Q0_MESSAGES = 1_000_000;
const PAYLOAD = 200;
const RSS_BOUND = 120 * MB;
const WINDOW = 1000;
const BATCH = 250;
const Q1_MESSAGES = 20_000;
const STALL_MS = 30000;

// ---------------------------------------------------------------------------------------------

/** Samples the broker's RSS until stopped; keeps the peak. */
class RssSampler {
  peak = 0;
  private timer: NodeJS.Timeout;
  constructor(readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 50);
  }
  sample(): void { try { this.peak = Math.max(this.peak, rssBytes(this.pid)); } catch { /* exited */ } }
  stop(): number { clearInterval(this.timer); this.sample(); return this.peak; }
}

/** A raw v3.1.1 socket that counts PUBLISH frames and checks their sequence numbers. */
class CountingSubscriber {
  readonly counter: FrameCounter;
  next = 0;
  outOfOrder = '';
  closed = false;
  private progress: Array<() => void> = [];
  private constructor(readonly socket: net.Socket, seqOffsetFromEnd: number) {
    this.counter = new FrameCounter((buf, _h, _start, end) => {
      const seq = buf.readUInt32BE(end - seqOffsetFromEnd);
      if (seq !== this.next && !this.outOfOrder) this.outOfOrder = `expected message ${this.next}, got ${seq}`;
      this.next = seq + 1;
    });
    socket.on('data', (d: Buffer) => { this.counter.push(d); for (const p of this.progress.splice(0)) p(); });
    socket.on('error', () => { /* close follows */ });
    socket.on('close', () => { this.closed = true; for (const p of this.progress.splice(0)) p(); });
  }
  static async connect(port: number, topic: string, id: string): Promise<CountingSubscriber> {
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    const c = new CountingSubscriber(s, PAYLOAD);
    s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: id }));
    s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
    await waitUntil(() => c.counter.frames >= 2 || c.closed, `${id}: CONNACK and SUBACK`, 10000);
    assert.ok(!c.closed, `${id}: closed during CONNECT/SUBSCRIBE`);
    return c;
  }
  get received(): number { return this.counter.publishes; }
  /** Resolves at the next read (or close); rejects if nothing arrives within `ms`. */
  nextProgress(ms: number, what: string): Promise<void> {
    return within(new Promise<void>((r) => this.progress.push(r)), ms, what);
  }
}

/** A raw v3.1.1 QoS 0 publisher writing pre-encoded PUBLISH frames in batches. */
class Publisher {
  private template: Buffer;
  private constructor(readonly socket: net.Socket, topic: string) {
    this.template = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(PAYLOAD, 0x70), qos: 0, dup: false, retain: false });
    socket.on('error', () => { /* close follows */ });
  }
  static async connect(port: number, topic: string): Promise<Publisher> {
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `pub-${topic}` }));
    const [ack] = await within(once(s, 'data'), 10000, 'publisher CONNACK') as [Buffer];
    assert.equal(ack[0], 0x20, 'publisher: expected CONNACK');
    return new Publisher(s, topic);
  }
  batch(from: number, count: number): Buffer {
    const len = this.template.length;
    const out = Buffer.allocUnsafe(len * count);
    for (let i = 0; i < count; i++) {
      this.template.copy(out, i * len);
      out.writeUInt32BE(from + i, (i + 1) * len - PAYLOAD);
    }
    return out;
  }
  /** Publishes messages [from, to), never more than `window` ahead of `sub`. */
  async pump(from: number, to: number, sub: CountingSubscriber, window: number): Promise<void> {
    let sent = from;
    while (sent < to) {
      if (sub.closed) throw new Error(`normal subscriber disconnected after ${sub.received} messages`);
      if (sent - sub.received + BATCH > window) {
        await sub.nextProgress(STALL_MS, `normal subscriber stalled at ${sub.received} of ${sent} published (messages to a non-slow subscriber lost?)`);
        continue;
      }
      const k = Math.min(BATCH, to - sent);
      const ok = this.socket.write(this.batch(sent, k));
      sent += k;
      if (!ok) await within(once(this.socket, 'drain'), STALL_MS, `publisher socket not drained within ${STALL_MS} ms at ${sent} (broker stopped reading?)`);
    }
  }
}

function assertHealthy(b: Broker, what: string): void {
  assert.ok(b.alive(), `${what}: broker exited; output:\n${b.output().slice(-3000)}`);
  assert.deepEqual(crashLines(b.output()), [], `${what}: crash lines in the broker output:\n${b.output().slice(-3000)}`);
}

// ---------------------------------------------------------------------------------------------

for (const workers of [1, 3]) {
  describe(`QoS 0 slow consumer, --workers ${workers}`, () => {
    test(`${Q0_MESSAGES} messages: RSS growth < ${RSS_BOUND / MB} MB, normal subscriber gets all, drops counted`, { timeout: 300000 }, async (t) => {
      const b = await launchBroker(workers, ['--sys-interval', '1']);
      try {
        // Sequential connects: with 3 workers, publisher and subscribers land on different workers.
        const topic = 'slow/q0';
        const normal = await CountingSubscriber.connect(b.port, topic, 'normal-q0');
        const slow = await RawClient.connect(b.port, 4);
        assert.equal((await slow.handshake({ clientId: 'slow-q0' })).returnCode, 0);
        await slow.subscribe(topic, 0);
        const pub = await Publisher.connect(b.port, topic);

        // Warm up (JIT, buffers) with both subscribers reading, then stop the slow one reading.
        const WARM = 20_000;
        await pub.pump(0, WARM, normal, WINDOW);
        await waitUntil(() => slow.publishes(topic).length === WARM, () => `slow subscriber to read the ${WARM} warm-up messages (has ${slow.publishes(topic).length})`, 20000);
        slow.packets.length = 0;
        slow.socket.pause();
        const base = rssBytes(b.proc.pid!);
        const rss = new RssSampler(b.proc.pid!);
        const t0 = Date.now();
        try {
          await pub.pump(WARM, WARM + Q0_MESSAGES, normal, WINDOW);
          await waitUntil(() => normal.received === WARM + Q0_MESSAGES || normal.closed, () => `normal subscriber to get all ${WARM + Q0_MESSAGES} (has ${normal.received})`, STALL_MS);
        } finally {
          rss.stop();
        }
        const secs = (Date.now() - t0) / 1000;
        const growth = rss.peak - base;
        t.diagnostic(`${Q0_MESSAGES} messages in ${secs.toFixed(1)} s; broker RSS ${(base / MB).toFixed(0)} MB -> peak ${(rss.peak / MB).toFixed(0)} MB (growth ${(growth / MB).toFixed(1)} MB)`);

        assertHealthy(b, 'after the QoS 0 run');
        assert.equal(normal.outOfOrder, '', `normal subscriber: ${normal.outOfOrder}`);
        assert.equal(normal.received, WARM + Q0_MESSAGES, `normal subscriber got ${normal.received} of ${WARM + Q0_MESSAGES}`);
        assert.ok(growth < RSS_BOUND, `broker RSS grew by ${(growth / MB).toFixed(1)} MB (bound ${RSS_BOUND / MB} MB) while a subscriber did not read`);
        assert.ok(!slow.closed, 'the slow QoS 0 subscriber was disconnected (QoS 0 to a slow consumer should be dropped and counted)');

        // The drops are counted.
        const sys = await SysWatcher.start(b.port);
        try {
          const c = await sys.waitCounter(/drop/i, Q0_MESSAGES / 2, 'QoS 0 slow-consumer drops');
          t.diagnostic(`drop counter ${c.topic} = ${c.value}`);
        } finally { sys.close(); }

        // Reading again: the slow subscriber gets an in-order subset, then new messages. While
        // the broker still holds a backlog for it, a new QoS 0 message may rightly be dropped,
        // so publish one new message at a time until one arrives (bounded).
        slow.socket.resume();
        const firstNew = WARM + Q0_MESSAGES;
        const seqs = () => slow.publishes(topic).map((p) => (p.payload as Buffer).readUInt32BE(0));
        const deadline = Date.now() + 30000;
        for (let next = firstNew; ; next++) {
          await pub.pump(next, next + 1, normal, WINDOW);
          const arrived = await waitUntil(() => seqs().some((s) => s >= firstNew) || slow.closed, 'a new message', 500, 20).then(() => true, () => false);
          if (arrived) break;
          assert.ok(Date.now() < deadline, `the slow subscriber, reading again, got no new message within 30 s (has ${slow.publishes(topic).length}, read ${slow.socket.bytesRead} bytes, buffered ${slow.socket.readableLength}, flowing ${slow.socket.readableFlowing})`);
        }
        assert.ok(!slow.closed, 'the slow subscriber was disconnected when it read again');
        const got = seqs();
        for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `slow subscriber: message ${got[i]} after ${got[i - 1]} (reordered or duplicated)`);
        assert.ok(got.length < Q0_MESSAGES, `slow subscriber got ${got.length} messages: nothing was dropped?`);
        assert.equal(slow.parseError, undefined, `slow subscriber: broker output does not parse: ${slow.parseError?.message}`);
        t.diagnostic(`slow subscriber got ${got.length} of ${Q0_MESSAGES + 1} messages`);
      } finally {
        await b.kill();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// QoS 1: bounded session queues and the queue policy.

interface Q1Case { policy: 'drop-oldest' | 'drop-new' | 'disconnect'; maxMessages: number; maxBytes?: number }
const INFLIGHT = 10;

async function qos1Run(t: { diagnostic(s: string): void }, workers: number, c: Q1Case): Promise<void> {
  const args = ['--sys-interval', '1', '--max-inflight', String(INFLIGHT), '--max-queued-messages', String(c.maxMessages), '--queue-policy', c.policy];
  if (c.maxBytes !== undefined) args.push('--max-queued-bytes', String(c.maxBytes));
  const b = await launchBroker(workers, args);
  try {
    const topic = 'slow/q1';
    const normal = await rawSession(b.port, 5, { clientId: 'normal-q1' });
    await normal.subscribe(topic, 1);
    const slow = await rawSession(b.port, 5, { clientId: 'slow-q1', properties: { receiveMaximum: INFLIGHT } });
    slow.autoAck = false;
    await slow.subscribe(topic, 1);
    slow.socket.pause();
    const pub = await RawClient.connect(b.port, 5);
    const ack = await pub.handshake({ clientId: 'pub-q1' });
    assert.equal(ack.reasonCode, 0);
    const window = Math.min(100, ack.properties?.receiveMaximum ?? 65535);

    // QoS 1 publisher honouring the broker's Receive Maximum; packet ids 1..window reused.
    const payload = (i: number) => { const p = Buffer.alloc(PAYLOAD, 0x71); p.writeUInt32BE(i, 0); return p; };
    let acked = 0;
    let scanned = 0;
    pub.socket.on('data', () => { for (; scanned < pub.packets.length; scanned++) if (pub.packets[scanned].cmd === 'puback') acked++; });
    // The normal subscriber must never be a slow consumer: stay at most `ahead` messages in
    // front of it, well inside its own bounded queue.
    const queueCap = Math.min(c.maxMessages, c.maxBytes !== undefined ? Math.floor(c.maxBytes / PAYLOAD) : Infinity);
    const ahead = Math.min(window, Math.floor(queueCap / 2));
    let normalGot = 0;
    let normalScanned = 0;
    normal.socket.on('data', () => { for (; normalScanned < normal.packets.length; normalScanned++) if (normal.packets[normalScanned].cmd === 'publish') normalGot++; });
    for (let i = 0; i < Q1_MESSAGES; i++) {
      if (i - acked >= window || i - normalGot >= ahead) {
        await waitUntil(() => (i - acked < window && i - normalGot < ahead) || pub.closed || normal.closed,
          () => `PUBACKs from the broker (${acked} of ${i}) and deliveries to the normal subscriber (${normalGot} of ${i})`, STALL_MS, 1);
        assert.ok(!normal.closed, `the normal QoS 1 subscriber was disconnected after ${normalGot} messages`);
        assert.ok(!pub.closed, `publisher disconnected after ${acked} PUBACKs: ${pub.packets.filter((p) => p.cmd === 'disconnect').map((p) => JSON.stringify(p)).join(' ')}`);
      }
      pub.send({ cmd: 'publish', topic, payload: payload(i), qos: 1, messageId: (i % window) + 1, dup: false, retain: false });
    }
    await waitUntil(() => acked === Q1_MESSAGES || pub.closed, () => `PUBACKs for all ${Q1_MESSAGES} (has ${acked})`, STALL_MS, 20);
    await waitUntil(() => normal.publishes(topic).length >= Q1_MESSAGES || normal.closed, () => `normal QoS 1 subscriber to get all ${Q1_MESSAGES} (has ${normal.publishes(topic).length})`, STALL_MS, 50);
    assertHealthy(b, `QoS 1 ${c.policy}`);
    const normalSeqs = normal.publishes(topic).map((p: IPublishPacket) => (p.payload as Buffer).readUInt32BE(0));
    assert.equal(new Set(normalSeqs).size, Q1_MESSAGES, `normal QoS 1 subscriber got ${new Set(normalSeqs).size} distinct of ${Q1_MESSAGES}`);

    if (c.policy === 'disconnect') {
      // A client that does not read cannot see its connection close: read again, then look.
      slow.socket.resume();
      assert.ok(await slow.waitClosed(20000), `--queue-policy disconnect: the slow subscriber is still connected after its queue (${queueCap}) overflowed`);
      return;
    }
    const sys = await SysWatcher.start(b.port);
    try {
      const counted = await sys.waitCounter(/drop/i, Q1_MESSAGES - INFLIGHT - queueCap - 10, `QoS 1 queue-full drops (${c.policy})`);
      t.diagnostic(`drop counter ${counted.topic} = ${counted.value}`);
    } finally { sys.close(); }

    // Reading (and acknowledging) again: the slow subscriber gets its in-flight window and its
    // bounded queue, chosen by the policy, then a new message.
    assert.ok(!slow.closed, `the slow QoS 1 subscriber was disconnected under --queue-policy ${c.policy}`);
    slow.autoAck = true;
    for (const p of slow.packets) if (p.cmd === 'publish') slow.send({ cmd: 'puback', messageId: p.messageId! });
    slow.socket.resume();
    // While its queue drains, a new message may rightly be dropped (drop-new) or queued: publish
    // one new message at a time until one arrives (bounded).
    const seqs = () => slow.publishes(topic).map((p) => (p.payload as Buffer).readUInt32BE(0));
    const deadline = Date.now() + 30000;
    for (let marker = Q1_MESSAGES, id = 1; ; marker++, id = (id % window) + 1) {
      const from = pub.packets.length;
      pub.send({ cmd: 'publish', topic, payload: payload(marker), qos: 1, messageId: id, dup: false, retain: false });
      await pub.waitFor((p) => p.cmd === 'puback' && p.messageId === id, `PUBACK for new message ${marker}`, STALL_MS, from);
      const arrived = await waitUntil(() => seqs().some((s) => s >= Q1_MESSAGES) || slow.closed, 'a new message', 500, 20).then(() => true, () => false);
      assert.ok(!slow.closed, `the slow subscriber was disconnected when it read again (${c.policy})`);
      if (arrived) break;
      assert.ok(Date.now() < deadline, `the slow subscriber, reading again, got no new message within 30 s (has ${slow.publishes(topic).length})`);
    }
    const got = new Set(seqs().filter((s) => s < Q1_MESSAGES));
    t.diagnostic(`${c.policy}, queue cap ${queueCap}: slow subscriber got ${got.size} of ${Q1_MESSAGES}`);
    assert.ok(got.size <= INFLIGHT + queueCap + 10, `slow subscriber got ${got.size} messages; in-flight ${INFLIGHT} + queue ${queueCap} should bound it`);
    // The queue must have held what its bound allows: a message count exactly; a byte bound
    // may count some per-message overhead (topic, properties) besides the payload.
    const minQueued = c.maxBytes !== undefined ? Math.floor(c.maxBytes / (PAYLOAD + 64)) : queueCap;
    assert.ok(got.size >= minQueued, `slow subscriber got only ${got.size} messages; its queue should have held at least ${minQueued}`);
    if (c.policy === 'drop-oldest') {
      assert.ok(got.has(Q1_MESSAGES - 1), 'drop-oldest: the newest message was not kept');
      assert.ok(!got.has(INFLIGHT + 1), `drop-oldest: an old message (${INFLIGHT + 1}) was kept`);
    } else {
      assert.ok(got.has(INFLIGHT + 1), `drop-new: an early queued message (${INFLIGHT + 1}) was not kept`);
      assert.ok(!got.has(Q1_MESSAGES - 1), 'drop-new: the newest message was kept though the queue was full');
    }
  } finally {
    await b.kill();
  }
}

describe('QoS 1 slow consumer: bounded session queue and --queue-policy', () => {
  const cases: Array<Q1Case & { workers: number }> = [
    { workers: 3, policy: 'drop-oldest', maxMessages: 1000 },
    { workers: 1, policy: 'drop-new', maxMessages: 1000 },
    { workers: 3, policy: 'drop-oldest', maxMessages: 100000, maxBytes: 100000 },
    { workers: 3, policy: 'disconnect', maxMessages: 1000 },
  ];
  for (const c of cases) {
    const bound = c.maxBytes !== undefined ? `--max-queued-bytes ${c.maxBytes}` : `--max-queued-messages ${c.maxMessages}`;
    test(`${Q1_MESSAGES} QoS 1 messages, ${bound}, --queue-policy ${c.policy}, --workers ${c.workers}`, { timeout: 300000 }, async (t) => {
      await qos1Run(t, c.workers, c);
    });
  }
});

// A stalled QoS 1 subscriber in the default configuration (10,000 queued, 1,024 in flight,
// drop-oldest): STALL_MESSAGES QoS 1 messages flow past it. The broker's RSS grows by less than
// STALL_RSS_BOUND (what queue and window hold, not what passed: before the compact session queue
// this grew ~60 MiB), every message beyond the window and the queue is dropped and counted once,
// and the subscriber stays connected.
const STALL_MESSAGES = 480_000;
const STALL_RSS_BOUND = 32 * MB;
describe('QoS 1 stalled subscriber, default limits', () => {
  test(`${STALL_MESSAGES} QoS 1 messages past it: RSS growth < ${STALL_RSS_BOUND / MB} MiB, drops counted, still connected`, { timeout: 300000 }, async (t) => {
    const b = await launchBroker(1, []);
    const conns: RawConn[] = [];
    try {
      const stalled = await RawConn.open(b.port, 'stalled-q1', true);
      conns.push(stalled);
      await stalled.subscribe('stall/q1', 1);
      stalled.sock.pause();
      // Warm up (JIT, pools) past another subscriber-less topic, then measure.
      await publishQos1(b.port, 20_000, () => 'stall/warm', Buffer.alloc(64, 0x61));
      const dropped0 = await metric(b, 'fleetmq_messages_dropped_total', { reason: 'queue_full' });
      const rss = new RssSampler(b.proc.pid!);
      const before = rss.peak;
      await publishQos1(b.port, STALL_MESSAGES, () => 'stall/q1', Buffer.alloc(64, 0x61));
      const peak = rss.stop();
      assertHealthy(b, 'stalled QoS 1 subscriber');
      t.diagnostic(`RSS before ${(before / MB).toFixed(1)} MiB, peak growth ${((peak - before) / MB).toFixed(1)} MiB`);
      assert.ok(peak - before < STALL_RSS_BOUND, `broker RSS grew by ${((peak - before) / MB).toFixed(1)} MiB while ${STALL_MESSAGES} QoS 1 messages passed a stalled subscriber (bound ${STALL_RSS_BOUND / MB} MiB)`);
      const window = 1024, queue = 10_000; // --max-inflight and --max-queued-messages defaults
      const dropped = await metric(b, 'fleetmq_messages_dropped_total', { reason: 'queue_full' }) - dropped0;
      assert.equal(dropped, STALL_MESSAGES - window - queue, 'each message beyond the window and the queue is dropped (drop-oldest) and counted once');
      assert.ok(!stalled.closed, 'the stalled subscriber stays connected (drop-oldest drops, it does not disconnect)');
    } finally {
      for (const c of conns) c.close();
      await b.kill();
    }
  });
});
