// Turns the physical effects of applied batches into RocksDB put/del operations, keeping only
// the last operation per key until the group commit takes them. That is where write-behind
// pays off: a message queued for a session and delivered and acknowledged before the next
// write (its body, queue slot and in-flight entry put, then deleted) never reaches the disk.
import * as codec from './codec';
import type { RawOp } from './rocksdb';
import type { StoreSink } from './state';
import type { InflightEntry, NewMessage, QueueEntry, RetainedStamp, StoredMessage, StoredSession, StoredSubscription } from './types';

const EMPTY = Buffer.alloc(0);

/** Counters for metrics and the write-amplification figure. */
export interface SinkStats {
  /** Operations taken by writes. */
  written: number;
  /** Puts dropped with the delete that followed them before any write (neither reached disk). */
  cancelled: number;
}

export class RocksSink implements StoreSink {
  /**
   * Pending ops by key. Message bodies and queue slots, the bulk of the traffic, are keyed by
   * their id (message ids and queue seqs are never reused, so a put still pending is the only
   * copy there is and a delete cancels it); everything else by the key's bytes.
   */
  private messages = new Map<number, RawOp>();
  private queue = new Map<number, RawOp>();
  private other = new Map<string, RawOp>();
  /**
   * In-flight keys (client, packet id) are reused, so a pending put followed by a delete may
   * still hide an older copy on disk: the delete is kept for keys written before. Bounded by
   * the in-flight windows of persistent sessions.
   */
  private readonly inflightOnDisk = new Set<string>();
  readonly stats: SinkStats = { written: 0, cancelled: 0 };

  get size(): number { return this.messages.size + this.queue.size + this.other.size; }

  /** Hands over the collected operations and starts a new list. */
  take(): RawOp[] {
    const ops: RawOp[] = [];
    for (const op of this.messages.values()) ops.push(op);
    for (const op of this.queue.values()) ops.push(op);
    for (const [k, op] of this.other) {
      ops.push(op);
      if (op.key[0] !== codec.T_INFLIGHT) continue;
      if (op.type === 'put') this.inflightOnDisk.add(k);
      else this.inflightOnDisk.delete(k);
    }
    this.messages = new Map();
    this.queue = new Map();
    this.other = new Map();
    this.stats.written += ops.length;
    return ops;
  }

  private putUnique(map: Map<number, RawOp>, id: number, key: Buffer, value: Buffer): void {
    map.set(id, { type: 'put', key, value });
  }

  private delUnique(map: Map<number, RawOp>, id: number, key: () => Buffer): void {
    if (map.get(id)?.type === 'put') {
      map.delete(id);
      this.stats.cancelled++;
      return;
    }
    map.set(id, { type: 'del', key: key() });
  }

  private put(key: Buffer, value: Buffer): void {
    const k = key.toString('latin1');
    // Re-inserting keeps the order a key was first touched; keys in one batch are distinct anyway.
    this.other.delete(k);
    this.other.set(k, { type: 'put', key, value });
  }

  private del(key: Buffer): void {
    const k = key.toString('latin1');
    if (this.other.get(k)?.type === 'put') {
      this.other.delete(k);
      this.stats.cancelled++;
      if (key[0] === codec.T_INFLIGHT && !this.inflightOnDisk.has(k)) return;
    }
    this.other.set(k, { type: 'del', key });
  }

  putSession(s: StoredSession): void { this.put(codec.sessionKey(s.clientId), codec.encodeSession(s)); }
  delSession(clientId: string): void { this.del(codec.sessionKey(clientId)); }
  putSub(s: StoredSubscription): void { this.put(codec.subscriptionKey(s.clientId, s.filter), codec.encodeSubscription(s)); }
  delSub(clientId: string, filter: string): void { this.del(codec.subscriptionKey(clientId, filter)); }
  putMessage(m: StoredMessage): void { this.putUnique(this.messages, Number(m.id), codec.messageKey(m.id), codec.encodeMessage(m)); }
  delMessage(id: bigint): void { this.delUnique(this.messages, Number(id), () => codec.messageKey(id)); }
  putQueue(clientId: string, e: QueueEntry): void { this.putUnique(this.queue, Number(e.seq), codec.queueKey(clientId, e.seq), codec.encodeQueueEntry(e)); }
  delQueue(clientId: string, seq: bigint): void { this.delUnique(this.queue, Number(seq), () => codec.queueKey(clientId, seq)); }
  putInflight(clientId: string, e: InflightEntry): void { this.put(codec.inflightKey(clientId, e.packetId), codec.encodeInflight(e)); }
  delInflight(clientId: string, packetId: number): void { this.del(codec.inflightKey(clientId, packetId)); }
  putInbound(clientId: string, packetId: number): void { this.put(codec.inboundKey(clientId, packetId), EMPTY); }
  delInbound(clientId: string, packetId: number): void { this.del(codec.inboundKey(clientId, packetId)); }
  putRetained(m: NewMessage): void { this.put(codec.retainedKey(m.topic), codec.encodeMessage(m)); }
  delRetained(topic: string): void { this.del(codec.retainedKey(topic)); }
  putRetainedStamp(topic: string, s: RetainedStamp): void { this.put(codec.retainedStampKey(topic), codec.encodeRetainedStamp(s)); }
  delRetainedStamp(topic: string): void { this.del(codec.retainedStampKey(topic)); }
}
