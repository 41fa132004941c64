// What routing hands around: a PUBLISH waiting to be matched, where the store put a message for
// each persistent subscriber, and the two interfaces between routing and persistence. Routing
// knows only that some deliveries must be durable before their acknowledgement; how that is
// done lives in workers/persist/ behind `Durability`.
import type { Message } from '../protocol/message';
import type { Connection } from '../net/connection';
import type { HeldPublish } from '../persist/held-publish';

/** A PUBLISH waiting to be matched, with the acknowledgement its publisher gets after routing. */
export interface Pending {
  msg: Message;
  conn: Connection | null;
  /** PUBACK / PUBREC packet type, or 0. */
  ack: number;
  pid: number;
  /** The retained update was already handed on with the message's store write. */
  retained?: boolean;
}

/**
 * Where the store put a message for each persistent subscriber; `held` while its store request
 * waits in this worker (write-behind: the HeldPublish is its own Stored).
 */
export interface Stored {
  readonly msgId: number;
  /** The subscriber's queue slot, 0 if the message is not stored for it. */
  seqOf(sub: number): number;
  readonly held: HeldPublish | null;
}

/** Ids the coordinator gave (store-first) or a peer's record carried. */
export class StoredIds implements Stored {
  readonly seqBySub = new Map<number, number>();
  readonly held = null;
  constructor(readonly msgId: number) {}
  seqOf(sub: number): number { return this.seqBySub.get(sub) ?? 0; }
}

/** Persistence as routing sees it (implemented by workers/persist/durable-routing.ts). */
export interface Durability {
  /**
   * Takes a matched PUBLISH whose deliveries or acknowledgement depend on the store (or that must
   * wait behind one of its connection's that does); it routes it through the RouteSink when it
   * may go. False: nothing to wait for, route it now. `out[from..]` are its `count` subscriber
   * triples, valid only during the call.
   */
  take(item: Pending, out: Uint32Array, from: number, count: number): boolean;
  /** A PUBLISH arriving while its connection waits for the store: queued in order (true), or not. */
  queueBehind(item: Pending): boolean;
  /** The batch is routed: connections that opened a store request take new PUBLISHes behind it. */
  endBatch(): void;
  /** A peer's record says its publisher took `msgId` and left this worker's sessions to this worker. */
  holdForPeer(msg: Message, msgId: number, t: Uint32Array, nSubs: number, settleTo: number): Stored | null;
  /** Worker `worker` settled its part of message `msgId`. */
  settle(worker: number, msgId: number, ok: boolean): void;
  /** Worker `worker` was replaced: what it held for this worker's publishers is lost. */
  peerReset(worker: number): void;
}

/** What persistence calls back into routing once a message may go. */
export interface RouteSink {
  /** Retain, deliver, fan out and acknowledge (or queue the acknowledgement in order). */
  complete(item: Pending, out: Uint32Array, from: number, count: number, stored: Stored | null): void;
  /** Deliver and fan out; `held`/`heldId`: other workers hold the message for their sessions. */
  route(msg: Message, out: Uint32Array, from: number, count: number, stored: Stored | null, held: number, heldId: number): void;
  /** A PUBLISH that waited behind its connection's store write, matched now in order. */
  publish(msg: Message, conn: Connection | null, ack: number, pid: number): void;
  /** Sends what the routed messages owe other workers, then matches what is batched. */
  afterStore(): void;
  /** The retained index and the store learn of a retained PUBLISH. */
  retain(msg: Message): void;
}
