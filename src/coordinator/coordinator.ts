// The coordinator thread: what must be single per process (DESIGN.md §1) — the session
// registry and the retained index now; the store and the cluster attach here later.
import { parentPort, workerData, MessagePort } from 'node:worker_threads';
import type { ToCoordinator } from '../shared/messages';
import { Registry } from './registry';
import { RetainedStore } from './retained';

const ports: (MessagePort | null)[] = new Array((workerData as { workers: number }).workers).fill(null);
const registry = new Registry(ports);
const retained = new RetainedStore();

function onWorkerMessage(index: number, port: MessagePort, m: ToCoordinator): void {
  if (ports[index] !== port) return; // a message from a worker that has since been replaced
  switch (m.t) {
    case 'claim': registry.claim(index, m.req, m.clientId, m.clean); break;
    case 'released': registry.released(index, m.req, m.session); break;
    case 'ended': registry.ended(index, m.clientId); break;
    case 'retain': retained.set(m.msg); break;
    case 'retained?': {
      const now = Date.now();
      port.postMessage({ t: 'retained', req: m.req, msgs: m.filters.map((f) => retained.match(f, now)) });
      break;
    }
  }
}

parentPort!.on('message', (m: { t: 'attach'; index: number; port: MessagePort } | { t: 'worker-died'; index: number }) => {
  if (m.t === 'attach') {
    ports[m.index]?.close();
    ports[m.index] = m.port;
    const port = m.port;
    port.on('message', (msg: ToCoordinator) => onWorkerMessage(m.index, port, msg));
  } else if (m.t === 'worker-died') {
    registry.workerDied(m.index);
  }
});
