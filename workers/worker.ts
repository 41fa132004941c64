// Entry point of a serving worker thread (DESIGN.md §1).
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerWiring, PeerReset } from '../src/shared/wiring';
import { Hub } from './hub';
import { startSysTopics } from './sys/sys-topics';

const wiring = workerData as WorkerWiring;
const hub = new Hub(wiring);

// The parentPort listener is the ref'd handle that keeps this loop alive while the doorbell
// wait (Atomics.waitAsync) is the only pending work (DESIGN.md §7).
parentPort!.on('message', (m: PeerReset | { t: 'shutdown' } | { t: 'go' }) => {
  if (m.t === 'peer-reset') hub.router.resetPeer(m.index, m.inbound, m.outbound, wiring.bells[m.index]);
  else if (m.t === 'shutdown') hub.shutdown(() => process.exit(0));
  else if (m.t === 'go') hub.go();
});

setInterval(() => hub.sweep(), 500).unref();
if (wiring.index === 0) startSysTopics(hub);
hub.pump();
// Ready once the coordinator has handed over this worker's restored sessions.
hub.onAdoptDone = () => parentPort!.postMessage({ t: 'ready' });
