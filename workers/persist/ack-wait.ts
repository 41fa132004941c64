// A publisher's PUBACK that waits for its message to be durable (or to need no durability) in
// every worker holding a part of it (workers/README.md, "Persistence and write-behind"): this worker's held request
// (held-publish.ts) and one part per other worker whose persistent sessions got the message.
// One failed part settles it as failed: no PUBACK, the publisher resends after reconnecting.
import type { Connection } from '../net/connection';

export class AckWait {
  /** The connection owed the acknowledgement (null: nobody, e.g. a will, or a remote origin). */
  conn: Connection | null = null;
  ackType = 0;
  ackPid = 0;
  /** 0 pending, 1 every part durable or with nothing to write, 2 some part failed. */
  settled = 0;
  /** Called once when settled (one bound function per router, not one closure per message). */
  notify: ((a: AckWait) => void) | null = null;

  constructor(private parts: number) {}

  /** More parts to wait for (other workers holding the message for their sessions). */
  expect(n: number): void { this.parts += n; }

  /** One part is durable (`ok`) or failed. */
  part(ok: boolean): void {
    if (this.settled !== 0) return;
    if (ok && --this.parts > 0) return;
    this.settled = ok ? 1 : 2;
    this.notify?.(this);
  }
}
