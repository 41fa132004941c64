// The coordinator thread: what must be single per process (src/README.md, "Threads") — the session
// registry, the retained index and the store; the cluster attaches here later.
import { parentPort, workerData, MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { topicIndex, subscriberWorker } from '../shared/topic-index';
import { native } from '../native';
import type { BrokerConfig } from '../config';
import type { FromCoordinator, PersistResult, RestoredSession, ToCoordinator } from '../shared/messages';
import { Registry } from './registry';
import { RetainedStore, RetainedCursors } from './retained';
import { Persistence } from './persistence';
import { StoreIds } from '../shared/store-ids';
import { StoreInbox } from './store-inbox';
import { BellWaiter } from '../shared/ring';

const { workers, config, trieId, storeIds, coordBell } = workerData as {
  workers: number; config: BrokerConfig; trieId: number; storeIds: SharedArrayBuffer; coordBell: SharedArrayBuffer;
};
/** Every worker's trie subscriptions (subscriber id → filters), to clean up after a dead worker. */
const journal = new Map<number, Set<string>>();
const ports: (MessagePort | null)[] = new Array(workers).fill(null);
/** Each worker's store ring (its store requests, in order). */
const inboxes: (StoreInbox | null)[] = new Array(workers).fill(null);
const bell = new BellWaiter(coordBell);
const registry = new Registry(ports);
const retained = new RetainedStore();
const cursors = new RetainedCursors(retained);
let persistence: Persistence | null = null;
/** Restored sessions not yet handed to a worker, per worker index. */
const toAdopt: RestoredSession[][] = Array.from({ length: workers }, () => []);

function onWorkerMessage(index: number, port: MessagePort, m: ToCoordinator): void {
  if (ports[index] !== port) return; // a message from a worker that has since been replaced
  // What the worker wrote to its store ring before posting this comes first (e.g. the store
  // ops of a session's old owner before its connection moves).
  drainStore(index);
  switch (m.t) {
    case 'claim': registry.claim(index, m.req, m.clientId, m.clean); break;
    case 'released': registry.released(index, m.req); break;
    case 'ended': registry.ended(index, m.clientId); break;
    case 'retain': retained.set(m.msg); break;
    case 'sub': { let f = journal.get(m.sub); if (!f) journal.set(m.sub, (f = new Set())); f.add(m.filter); break; }
    case 'unsub': { const f = journal.get(m.sub); if (f) { f.delete(m.filter); if (f.size === 0) journal.delete(m.sub); } break; }
    case 'retained?': {
      const now = Date.now();
      const page = m.cursor === 0 ? cursors.first(index, m.filter, now) : cursors.next(index, m.cursor, now);
      port.postMessage({ t: 'retained', req: m.req, cursor: page.cursor, msgs: page.msgs } satisfies FromCoordinator);
      break;
    }
    case 'retained-close': cursors.close(index, m.cursor); break;
    case 'move': {
      const target = ports[m.to];
      if (target) target.postMessage({ t: 'conn', fd: m.fd, bytes: m.bytes } satisfies FromCoordinator);
      else native.closeFd(m.fd);
      break;
    }
  }
}

/** Applies a worker's store requests from its ring; each is answered on its port. */
function drainStore(index: number): void {
  const inbox = inboxes[index];
  const port = ports[index];
  if (!inbox || !port) return;
  inbox.drain((req, ops, decodeError) => {
    const answer = (results: PersistResult[], error: string | null) => {
      if (error) process.stderr.write(`fleetmq: store: ${error}\n`);
      port.postMessage({ t: 'stored', req, results, error } satisfies FromCoordinator);
    };
    if (!ops) { answer([], decodeError); return; }
    persistence!.apply(ops, answer);
  });
}

function drainAllStores(): void {
  for (let i = 0; i < workers; i++) drainStore(i);
}

/** Sleeps on the doorbell every worker's store ring rings. */
function parkStores(): void {
  bell.park(() => inboxes.some((b) => b !== null && !b.isEmpty()), () => { drainAllStores(); parkStores(); });
}

function attach(index: number, port: MessagePort, storeRing: SharedArrayBuffer): void {
  ports[index]?.close();
  ports[index] = port;
  inboxes[index] = new StoreInbox(storeRing);
  port.on('message', (msg: ToCoordinator) => onWorkerMessage(index, port, msg));
  for (const session of toAdopt[index].splice(0)) {
    registry.own(session.clientId, index);
    port.postMessage({ t: 'adopt', session } satisfies FromCoordinator);
  }
  port.postMessage({ t: 'adopt-done' } satisfies FromCoordinator);
}

/**
 * A worker died: take what it posted before dying, then remove its subscriptions from the
 * shared trie before a replacement reuses its subscriber ids (the main thread waits for 'purged').
 */
function workerDied(index: number): void {
  const port = ports[index];
  if (port) {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) onWorkerMessage(index, port, m.message as ToCoordinator);
    drainStore(index);
    port.close();
    ports[index] = null;
    inboxes[index] = null;
  }
  registry.workerDied(index);
  cursors.workerDied(index);
  let removed = 0;
  for (const [sub, filters] of journal) {
    if (subscriberWorker(sub) !== index) continue;
    for (const f of filters) if (topicIndex.unsubscribe(trieId, f, sub)) removed++;
    journal.delete(sub);
  }
  parentPort!.postMessage({ t: 'purged', index, removed });
}

async function start(): Promise<void> {
  persistence = await Persistence.open(config, new StoreIds(storeIds));
  const { sessions, retained: kept } = await persistence.load((line) => parentPort!.postMessage({ t: 'log', line }));
  for (const m of kept) retained.set(m);
  sessions.forEach((s, i) => toAdopt[i % workers].push(s));
}

parentPort!.on('message', (m: { t: 'attach'; index: number; port: MessagePort; storeRing: SharedArrayBuffer } | { t: 'worker-died'; index: number } | { t: 'close' }) => {
  if (m.t === 'attach') attach(m.index, m.port, m.storeRing);
  else if (m.t === 'worker-died') workerDied(m.index);
  else if (m.t === 'close') {
    // Store operations workers posted before they exited land before the store closes.
    ports.forEach((port, index) => {
      if (!port) return;
      for (let r = receiveMessageOnPort(port); r; r = receiveMessageOnPort(port)) onWorkerMessage(index, port, r.message as ToCoordinator);
      drainStore(index);
    });
    void (persistence?.close() ?? Promise.resolve()).then(() => parentPort!.postMessage({ t: 'closed' }), () => parentPort!.postMessage({ t: 'closed' }));
  }
});

start().then(
  () => { parkStores(); parentPort!.postMessage({ t: 'loaded' }); },
  (err: Error) => parentPort!.postMessage({ t: 'failed', message: err.message }),
);
