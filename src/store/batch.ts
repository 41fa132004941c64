// A StoreBatch records logical mutations; nothing happens until Store.commit applies it. Keeping
// it as plain data lets both stores share one apply step (state.ts) and lets the RocksDB store
// merge many batches into one write.
import type {
  InflightEntry, NewMessage, NewQueueEntry, QueueEntry, RetainedStamp, StoredMessage, StoredSession, StoredSubscription,
} from './types';

export type BatchOp =
  | { t: 'session'; session: StoredSession }
  | { t: 'delSession'; clientId: string }
  | { t: 'sub'; sub: StoredSubscription }
  | { t: 'unsub'; clientId: string; filter: string }
  | { t: 'message'; message: StoredMessage }
  | { t: 'enqueue'; clientId: string; entry: QueueEntry }
  | { t: 'dequeue'; clientId: string; seq: bigint }
  | { t: 'dropOldest'; clientId: string; count: number }
  | { t: 'inflight'; clientId: string; entry: InflightEntry }
  | { t: 'delInflight'; clientId: string; packetId: number }
  | { t: 'inbound'; clientId: string; packetId: number }
  | { t: 'delInbound'; clientId: string; packetId: number }
  | { t: 'retain'; message: NewMessage }
  | { t: 'delRetain'; topic: string }
  | { t: 'retainStamp'; topic: string; stamp: RetainedStamp }
  | { t: 'delRetainStamp'; topic: string };

/** Hands out message ids and queue sequence numbers; owned by the store, restored on load. */
export interface IdSource {
  nextMessageId(): bigint;
  nextSeq(): bigint;
}

export class StoreBatch {
  private readonly list: BatchOp[] = [];
  private sealed = false;

  constructor(private readonly ids: IdSource) {}

  get size(): number { return this.list.length; }

  get ops(): readonly BatchOp[] { return this.list; }

  /**
   * Called by Store.commit. Applying a batch twice would recount its references (and reset
   * the counts of the bodies it adds), so a batch is single-use.
   */
  seal(): void {
    if (this.sealed) throw new Error('StoreBatch committed twice: build a new batch per commit');
    this.sealed = true;
  }

  private push(op: BatchOp): void {
    if (this.sealed) throw new Error('StoreBatch changed after commit');
    this.list.push(op);
  }

  putSession(session: StoredSession): this { this.push({ t: 'session', session }); return this; }

  /** Removes the session with its subscriptions, queue, in-flight and inbound state. */
  deleteSession(clientId: string): this { this.push({ t: 'delSession', clientId }); return this; }

  putSubscription(sub: StoredSubscription): this { this.push({ t: 'sub', sub }); return this; }

  deleteSubscription(clientId: string, filter: string): this {
    this.push({ t: 'unsub', clientId, filter });
    return this;
  }

  /**
   * Stores a message body once. It is written only if a queue or in-flight entry references
   * it when the batch is applied, and deleted when the last reference goes.
   */
  addMessage(message: NewMessage, id: bigint = this.ids.nextMessageId()): bigint {
    this.push({ t: 'message', message: { ...message, id } });
    return id;
  }

  /**
   * Appends to a session's offline queue; returns the slot's sequence number. Ids the caller
   * brings (`id`, `seq` above) come from an allocator it owns and must never repeat.
   */
  enqueue(clientId: string, entry: NewQueueEntry, seq: bigint = this.ids.nextSeq()): bigint {
    this.push({ t: 'enqueue', clientId, entry: { ...entry, seq } });
    return seq;
  }

  /** Removes one queue slot (delivered, or moved in flight); absent slots are ignored. */
  dequeue(clientId: string, seq: bigint): this { this.push({ t: 'dequeue', clientId, seq }); return this; }

  /** Drops the `count` oldest queue slots: the caller enforces its length/byte bounds. */
  dropOldest(clientId: string, count: number): this {
    this.push({ t: 'dropOldest', clientId, count });
    return this;
  }

  /** Inserts or replaces the in-flight entry for `entry.packetId`. */
  putInflight(clientId: string, entry: InflightEntry): this {
    this.push({ t: 'inflight', clientId, entry });
    return this;
  }

  deleteInflight(clientId: string, packetId: number): this {
    this.push({ t: 'delInflight', clientId, packetId });
    return this;
  }

  /** Records an inbound QoS 2 packet id acknowledged with PUBREC, awaiting PUBREL. */
  addInboundQos2(clientId: string, packetId: number): this {
    this.push({ t: 'inbound', clientId, packetId });
    return this;
  }

  deleteInboundQos2(clientId: string, packetId: number): this {
    this.push({ t: 'delInbound', clientId, packetId });
    return this;
  }

  /** Sets the retained message of `message.topic`; an empty payload should use deleteRetained. */
  putRetained(message: NewMessage): this { this.push({ t: 'retain', message }); return this; }

  deleteRetained(topic: string): this { this.push({ t: 'delRetain', topic }); return this; }

  /** A cluster member's stamp (or tombstone) of a retained topic; kept apart from the message. */
  putRetainedStamp(topic: string, stamp: RetainedStamp): this { this.push({ t: 'retainStamp', topic, stamp }); return this; }

  deleteRetainedStamp(topic: string): this { this.push({ t: 'delRetainStamp', topic }); return this; }
}
