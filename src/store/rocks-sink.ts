// Turns the physical effects of applied batches into RocksDB put/del operations.
import * as codec from './codec';
import type { RawOp } from './rocksdb';
import type { StoreSink } from './state';
import type { InflightEntry, NewMessage, QueueEntry, StoredMessage, StoredSession, StoredSubscription } from './types';

const EMPTY = Buffer.alloc(0);

export class RocksSink implements StoreSink {
  ops: RawOp[] = [];

  /** Hands over the collected operations and starts a new list. */
  take(): RawOp[] {
    const ops = this.ops;
    this.ops = [];
    return ops;
  }

  private put(key: Buffer, value: Buffer): void { this.ops.push({ type: 'put', key, value }); }
  private del(key: Buffer): void { this.ops.push({ type: 'del', key }); }

  putSession(s: StoredSession): void { this.put(codec.sessionKey(s.clientId), codec.encodeSession(s)); }
  delSession(clientId: string): void { this.del(codec.sessionKey(clientId)); }
  putSub(s: StoredSubscription): void { this.put(codec.subscriptionKey(s.clientId, s.filter), codec.encodeSubscription(s)); }
  delSub(clientId: string, filter: string): void { this.del(codec.subscriptionKey(clientId, filter)); }
  putMessage(m: StoredMessage): void { this.put(codec.messageKey(m.id), codec.encodeMessage(m)); }
  delMessage(id: bigint): void { this.del(codec.messageKey(id)); }
  putQueue(clientId: string, e: QueueEntry): void { this.put(codec.queueKey(clientId, e.seq), codec.encodeQueueEntry(e)); }
  delQueue(clientId: string, seq: bigint): void { this.del(codec.queueKey(clientId, seq)); }
  putInflight(clientId: string, e: InflightEntry): void { this.put(codec.inflightKey(clientId, e.packetId), codec.encodeInflight(e)); }
  delInflight(clientId: string, packetId: number): void { this.del(codec.inflightKey(clientId, packetId)); }
  putInbound(clientId: string, packetId: number): void { this.put(codec.inboundKey(clientId, packetId), EMPTY); }
  delInbound(clientId: string, packetId: number): void { this.del(codec.inboundKey(clientId, packetId)); }
  putRetained(m: NewMessage): void { this.put(codec.retainedKey(m.topic), codec.encodeMessage(m)); }
  delRetained(topic: string): void { this.del(codec.retainedKey(topic)); }
}
