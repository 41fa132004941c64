// Entry point of the coordinator thread: runs the Coordinator (coordinator.ts) with what the
// main thread handed over, and relays between it and the main thread.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Coordinator, type CoordinatorOptions } from './coordinator';
import { startHeartbeat, coordinatorSlot } from '../shared/heartbeats';
import type { AdminAsk, AdminReply, CoordinatorAnswer, CoordinatorQuery, PeerAskReply } from '../shared/admin-messages';
import { installLogger } from '../log/thread';
import { ThreadLog, type LogWiring } from '../log/thread-log';

// Before anything logs: this thread's records go to the main thread's writer.
installLogger(new ThreadLog((workerData as { log: LogWiring }).log));

type FromMain =
  | { t: 'attach'; index: number; port: MessagePort; storeRing: SharedArrayBuffer }
  | { t: 'worker-died'; index: number }
  | AdminAsk<CoordinatorQuery>
  | PeerAskReply
  | { t: 'close' };

const coordinator = new Coordinator(workerData as CoordinatorOptions, (m) => parentPort!.postMessage(m));
// For /livez and /metrics on the main thread (src/shared/heartbeats.ts); beats while the store loads too.
const { heartbeats, workers } = workerData as { heartbeats: SharedArrayBuffer; workers: number };
startHeartbeat(heartbeats, coordinatorSlot(workers));

parentPort!.on('message', (m: FromMain) => {
  if (m.t === 'attach') coordinator.attach(m.index, m.port, m.storeRing);
  else if (m.t === 'worker-died') coordinator.workerDied(m.index);
  else if (m.t === 'admin') {
    const reply = (r: Omit<AdminReply<CoordinatorAnswer>, 't' | 'id'>) => parentPort!.postMessage({ t: 'admin-reply', id: m.id, ...r });
    coordinator.admin(m.q).then((a) => reply({ a }), (err: Error) => reply({ error: err.message }));
  }
  else if (m.t === 'admin-peer-reply') coordinator.adminPeerReply(m);
  else if (m.t === 'close') {
    const closed = () => parentPort!.postMessage({ t: 'closed' });
    coordinator.close().then(closed, closed);
  }
});

coordinator.start().then(
  () => parentPort!.postMessage({ t: 'loaded' }),
  (err: Error) => parentPort!.postMessage({ t: 'failed', message: err.message }),
);
