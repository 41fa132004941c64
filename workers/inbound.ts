// What reaches this worker through shared memory: accepted fds (with their listener's index,
// src/shared/listeners.ts) from the main thread and
// records from the other workers. Drained in bounded batches so sockets get their turn under
// load; when all are empty the worker parks on its doorbell (src/shared/ring.ts).
import { RingConsumer, BellWaiter } from '../src/shared/ring';
import type { PeerLinks } from './routing/peers';

/** Records drained per ring per turn, so sockets get their turn under load. */
const DRAIN_MAX = 2048;

export class Inbound {
  private readonly accept: RingConsumer;
  private readonly bell: BellWaiter;
  private stopped = false;

  constructor(acceptRing: SharedArrayBuffer, bell: SharedArrayBuffer, private readonly peers: PeerLinks,
    private readonly adopt: (fd: number, listener: number) => void, private readonly ringDirty: () => void) {
    this.accept = new RingConsumer(acceptRing);
    this.bell = new BellWaiter(bell);
  }

  stop(): void { this.stopped = true; }

  pump(): void {
    if (this.stopped) return;
    let n = this.accept.drain((_d, view, off) => this.adopt(view.getInt32(off, true), view.getInt32(off + 4, true)), DRAIN_MAX);
    n += this.peers.drain(DRAIN_MAX);
    // Records that spilled from a full ring are retried at commit, once per turn.
    if (this.peers.hasOverflow()) this.ringDirty();
    if (n > 0 || this.peers.hasInbound()) {
      setImmediate(() => this.pump());
      return;
    }
    this.bell.park(() => !this.accept.isEmpty() || this.peers.hasInbound(), () => this.pump());
  }
}
