// Write-behind for QoS 1 messages to persistent sessions of this worker (workers/README.md, "Persistence and write-behind").
//
// The message is routed at once and its store request is held here for --commit-linger-ms.
// A delivery that is acknowledged (or dropped) meanwhile leaves the request; a message whose
// every delivery is over before the request is posted is never written, and its publisher's
// PUBACK goes out at once: nothing is left that a crash could lose. Otherwise the PUBACK waits
// for the commit as before. Under load most deliveries complete within the window, which is
// what makes `process` durability cheap (bench/README.md, qos1-persistent).
//
// Each worker holds a message for its own sessions only, so every store operation of a session
// comes from the one worker that owns it, in that worker's order. A publisher on another worker
// takes the message id and waits for each holding worker's part (ack-wait.ts).
import type { Message } from '../protocol/message';
import { AckWait } from './ack-wait';
import type { NewMessage } from '../../src/store/types';
import type { PersistTarget } from '../../src/shared/messages';
import { propsToStore } from '../../src/shared/props-codec';

interface HeldTarget extends PersistTarget {
  /** The delivery went in flight under this packet id while held: stored as in flight, not queued. */
  pid?: number;
  done?: boolean;
}

/**
 * Its own AckWait: the local part is this request (settled by the commit, or by every delivery
 * ending); parts held by other workers are added by the router.
 */
export class HeldPublish extends AckWait {
  /**
   * Held for a publisher on another worker: settling sends it this message's part (-1: none
   * wants it). The message id names the part there (router.ts, KIND_SETTLE).
   */
  settleTo = -1;
  /** Handed to the coordinator: from now on deliveries use ordinary store operations. */
  posted = false;
  /** Every delivery ended while held: nothing to write. */
  dead = false;
  /**
   * A delivery was queued (session offline, congested or its window full): no acknowledgement
   * is coming soon, so waiting the linger would only delay the PUBACK. Posted on the next flush.
   */
  forced = false;
  private live: number;

  /**
   * Both dropped once every delivery ended: a dead request waits in the persister's queue until
   * a flush passes it (the linger), and pinning its message that long kept it from dying young.
   */
  msg: Message | null;
  private targets: HeldTarget[];

  constructor(msg: Message, readonly id: number, targets: HeldTarget[], readonly at: number,
    /** The worker's turn count when held (persister.ts: the linger counts turns too). */
    readonly turn: number,
    /** Its position in the persister's queue, for good. */
    readonly pos: number,
    private readonly onForce: (h: HeldPublish) => void) {
    super(1);
    this.msg = msg;
    this.targets = targets;
    this.live = targets.length;
  }

  private target(sub: number): HeldTarget | undefined {
    for (let i = 0; i < this.targets.length; i++) if (this.targets[i].sub === sub) return this.targets[i];
    return undefined;
  }

  /** The delivery to `sub` went in flight as `pid` before the request was posted. */
  inflight(sub: number, pid: number): void {
    const t = this.target(sub);
    if (t) t.pid = pid;
  }

  force(): void {
    if (this.forced || this.posted) return;
    this.forced = true;
    this.onForce(this);
  }

  /** The delivery to `sub` ended (acknowledged, dropped or expired) before the request was posted. */
  done(sub: number): void {
    const t = this.target(sub);
    if (!t || t.done) return;
    t.done = true;
    if (--this.live > 0) return;
    this.dead = true;
    this.msg = null;
    this.targets = NO_TARGETS;
    this.settle(true);
  }

  /** `ok`: the message needs no more durability (written, or nothing to write). */
  settle(ok: boolean): void {
    if (this.localSettled) return;
    this.localSettled = true;
    this.part(ok);
  }

  private localSettled = false;

  // As a Stored (router.ts): where each persistent subscriber's slot is.
  get msgId(): number { return this.id; }
  get held(): HeldPublish { return this; }

  seqOf(sub: number): number {
    const t = this.target(sub);
    return t ? t.seq ?? 0 : 0;
  }

  /** The targets still to store, as the coordinator's 'publish' op wants them. */
  liveTargets(): PersistTarget[] {
    return this.targets.filter((t) => !t.done);
  }
}

const NO_TARGETS: HeldTarget[] = [];

export function toStoreMessage(m: Message): NewMessage {
  return {
    // No copy: the request is encoded into the store ring (store-wire.ts) before the turn ends.
    topic: m.topicString, payload: m.payload, qos: m.qos as 0 | 1 | 2, retain: m.retain,
    properties: propsToStore(m.props, m.expiryAt), publishedAt: Date.now(),
  };
}
