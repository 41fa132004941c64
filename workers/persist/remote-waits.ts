// Publishes of this worker whose PUBACK waits for parts held by other workers (write-behind,
// workers/README.md, "Persistence and write-behind"), by holding worker and message id: a settle record from that worker ends one.
import type { AckWait } from './ack-wait';

/**
 * Bound on waiting parts per worker (each pins a connection's acknowledgement): beyond it the
 * router stores such messages first instead (nothing dropped; they only lose write-behind).
 */
export const MAX_REMOTE_WAITS = 65536;

export class RemoteWaits {
  private readonly byWorker: Map<number, AckWait>[];
  private size = 0;

  constructor(workers: number) {
    this.byWorker = Array.from({ length: workers }, () => new Map<number, AckWait>());
  }

  get full(): boolean { return this.size >= MAX_REMOTE_WAITS; }

  add(worker: number, msgId: number, a: AckWait): void {
    this.byWorker[worker].set(msgId, a);
    this.size++;
  }

  /** Worker `worker`'s part of message `msgId` is durable there (`ok`) or failed. */
  settle(worker: number, msgId: number, ok: boolean): void {
    const m = this.byWorker[worker];
    const a = m?.get(msgId);
    if (!a) return; // from a previous life of this worker (ids are never reused)
    m.delete(msgId);
    this.size--;
    a.part(ok);
  }

  /**
   * The worker died: what it held may not have been written, so those publishers get no PUBACK
   * (the connection closes; they resend after reconnecting).
   */
  failWorker(worker: number): void {
    const m = this.byWorker[worker];
    if (!m || m.size === 0) return;
    const waiting = [...m.values()];
    this.size -= m.size;
    m.clear();
    for (const a of waiting) a.part(false);
  }
}
