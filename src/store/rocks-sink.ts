// Turns the physical effects of applied batches into RocksDB put/del operations, keeping only
// the last operation per key until the group commit takes them. That is where write-behind
// pays off: a message queued for a session and delivered and acknowledged before the next
// write (its body, queue slot and in-flight entry put, then deleted) never reaches the disk.
import * as codec from './codec';
import type { RawOp } from './rocksdb';
import type { StoreSink } from './state';
import type { InflightEntry, NewMessage, QueueEntry, StoredMessage, StoredSession, StoredSubscription } from './types';

const EMPTY = Buffer.alloc(0);

/** Counters for metrics and the write-amplification figure. */
export interface SinkStats {
  /** Operations taken by writes. */
  written: number;
  /** Puts dropped with the delete that followed them before any write (neither reached disk). */
  cancelled: number;
}

export class RocksSink implements StoreSink {
  private pending = new Map<string, RawOp>();
  /**
   * In-flight keys (client, packet id) are reused, so a pending put followed by a delete may
   * still hide an older copy on disk: the delete is kept for keys written before. Bounded by
   * the in-flight windows of persistent sessions.
   */
  private readonly inflightOnDisk = new Set<string>();
  readonly stats: SinkStats = { written: 0, cancelled: 0 };

  get size(): number { return this.pending.size; }

  /** Hands over the collected operations and starts a new list. */
  take(): RawOp[] {
    const ops: RawOp[] = [];
    for (const [k, op] of this.pending) {
      ops.push(op);
      if (op.key[0] !== codec.T_INFLIGHT) continue;
      if (op.type === 'put') this.inflightOnDisk.add(k);
      else this.inflightOnDisk.delete(k);
    }
    this.pending = new Map();
    this.stats.written += ops.length;
    return ops;
  }

  private put(key: Buffer, value: Buffer): void {
    const k = key.toString('latin1');
    // Re-inserting keeps the order a key was first touched; keys in one batch are distinct anyway.
    this.pending.delete(k);
    this.pending.set(k, { type: 'put', key, value });
  }

  /**
   * Message ids and queue seqs are never reused, so a put still pending for one is the only
   * copy there is: the delete cancels it and writes nothing.
   */
  private del(key: Buffer, uniqueKey: boolean): void {
    const k = key.toString('latin1');
    const prior = this.pending.get(k);
    if (prior?.type === 'put') {
      this.pending.delete(k);
      this.stats.cancelled++;
      if (uniqueKey || (key[0] === codec.T_INFLIGHT && !this.inflightOnDisk.has(k))) return;
    }
    this.pending.set(k, { type: 'del', key });
  }

  putSession(s: StoredSession): void { this.put(codec.sessionKey(s.clientId), codec.encodeSession(s)); }
  delSession(clientId: string): void { this.del(codec.sessionKey(clientId), false); }
  putSub(s: StoredSubscription): void { this.put(codec.subscriptionKey(s.clientId, s.filter), codec.encodeSubscription(s)); }
  delSub(clientId: string, filter: string): void { this.del(codec.subscriptionKey(clientId, filter), false); }
  putMessage(m: StoredMessage): void { this.put(codec.messageKey(m.id), codec.encodeMessage(m)); }
  delMessage(id: bigint): void { this.del(codec.messageKey(id), true); }
  putQueue(clientId: string, e: QueueEntry): void { this.put(codec.queueKey(clientId, e.seq), codec.encodeQueueEntry(e)); }
  delQueue(clientId: string, seq: bigint): void { this.del(codec.queueKey(clientId, seq), true); }
  putInflight(clientId: string, e: InflightEntry): void { this.put(codec.inflightKey(clientId, e.packetId), codec.encodeInflight(e)); }
  delInflight(clientId: string, packetId: number): void { this.del(codec.inflightKey(clientId, packetId), false); }
  putInbound(clientId: string, packetId: number): void { this.put(codec.inboundKey(clientId, packetId), EMPTY); }
  delInbound(clientId: string, packetId: number): void { this.del(codec.inboundKey(clientId, packetId), false); }
  putRetained(m: NewMessage): void { this.put(codec.retainedKey(m.topic), codec.encodeMessage(m)); }
  delRetained(topic: string): void { this.del(codec.retainedKey(topic), false); }
}
