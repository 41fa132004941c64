// In-memory Store for `--durability none`: the same index and apply step as the RocksDB store,
// with the physical effects landing in maps. Values are copied in and out so callers see the
// same value semantics as with RocksDB (a reused or released payload buffer is harmless).
import { StoreBatch } from './batch';
import { StoreError } from './errors';
import { copyMessage, copySession, copySub } from './copy';
import { StoreIndex, StoreSink } from './state';
import type { CommitOptions, LoadOptions, LoadSummary, LoadVisitor, Store } from './store';
import type {
  InflightEntry, NewMessage, QueueEntry, RetainedStamp, StoredMessage, StoredSession, StoredSubscription,
} from './types';

function inner<K, V>(outer: Map<string, Map<K, V>>, clientId: string): Map<K, V> {
  let m = outer.get(clientId);
  if (!m) { m = new Map(); outer.set(clientId, m); }
  return m;
}

class MemorySink implements StoreSink {
  readonly sessions = new Map<string, StoredSession>();
  readonly subs = new Map<string, Map<string, StoredSubscription>>();
  readonly messages = new Map<bigint, StoredMessage>();
  readonly queues = new Map<string, Map<bigint, QueueEntry>>();
  readonly inflight = new Map<string, Map<number, InflightEntry>>();
  readonly inbound = new Map<string, Set<number>>();
  readonly retained = new Map<string, NewMessage>();

  putSession(s: StoredSession): void { this.sessions.set(s.clientId, copySession(s)); }
  delSession(clientId: string): void { this.sessions.delete(clientId); }
  putSub(s: StoredSubscription): void { inner(this.subs, s.clientId).set(s.filter, copySub(s)); }
  delSub(clientId: string, filter: string): void { this.subs.get(clientId)?.delete(filter); }
  putMessage(m: StoredMessage): void { this.messages.set(m.id, copyMessage(m)); }
  delMessage(id: bigint): void { this.messages.delete(id); }

  putQueue(clientId: string, e: QueueEntry): void {
    inner(this.queues, clientId).set(e.seq, { ...e, subscriptionIdentifiers: [...e.subscriptionIdentifiers] });
  }

  delQueue(clientId: string, seq: bigint): void { this.queues.get(clientId)?.delete(seq); }

  putInflight(clientId: string, e: InflightEntry): void {
    inner(this.inflight, clientId).set(e.packetId, { ...e, subscriptionIdentifiers: [...e.subscriptionIdentifiers] });
  }

  delInflight(clientId: string, packetId: number): void { this.inflight.get(clientId)?.delete(packetId); }

  putInbound(clientId: string, packetId: number): void {
    let set = this.inbound.get(clientId);
    if (!set) { set = new Set(); this.inbound.set(clientId, set); }
    set.add(packetId);
  }

  delInbound(clientId: string, packetId: number): void { this.inbound.get(clientId)?.delete(packetId); }
  putRetained(m: NewMessage): void { this.retained.set(m.topic, copyMessage(m)); }
  delRetained(topic: string): void { this.retained.delete(topic); }
  readonly stamps = new Map<string, RetainedStamp>();
  putRetainedStamp(topic: string, s: RetainedStamp): void { this.stamps.set(topic, { ...s }); }
  delRetainedStamp(topic: string): void { this.stamps.delete(topic); }
}

export class MemoryStore implements Store {
  readonly durable = false;
  private readonly index = new StoreIndex();
  private readonly data = new MemorySink();
  private loaded = false;
  private closed = false;

  /** Emits the current contents; may be called again (there is nothing to restart from). */
  async loadAll(v: LoadVisitor, opts: LoadOptions = {}): Promise<LoadSummary> {
    this.checkOpen();
    const d = this.data;
    const sum: LoadSummary = {
      sessions: 0, subscriptions: 0, retained: 0, messages: 0, queued: 0, inflight: 0, inbound: 0,
      orphanMessagesDeleted: 0, danglingRefsDropped: 0,
    };
    for (const s of d.sessions.values()) { sum.sessions++; v.session?.(copySession(s)); }
    for (const subs of d.subs.values()) for (const s of subs.values()) { sum.subscriptions++; v.subscription?.(copySub(s)); }
    for (const m of d.retained.values()) { sum.retained++; v.retained?.(copyMessage(m)); }
    for (const [topic, s] of d.stamps) v.retainedStamp?.(topic, { ...s });
    for (const m of d.messages.values()) { sum.messages++; v.message?.(copyMessage(m)); }
    for (const [c, q] of d.queues) for (const e of q.values()) { sum.queued++; v.queued?.(c, { ...e }); }
    for (const [c, f] of d.inflight) {
      for (const id of [...f.keys()].sort((a, b) => a - b)) { sum.inflight++; v.inflight?.(c, { ...f.get(id)! }); }
    }
    for (const [c, set] of d.inbound) for (const p of [...set].sort((a, b) => a - b)) { sum.inbound++; v.inboundQos2?.(c, p); }
    opts.onProgress?.({ phase: 'inbound', records: sum.inbound, phaseDone: true });
    this.loaded = true;
    return sum;
  }

  batch(): StoreBatch { return new StoreBatch(this.index); }

  async commit(batch: StoreBatch, _opts?: CommitOptions): Promise<void> {
    this.checkOpen();
    if (!this.loaded) throw new Error('MemoryStore: loadAll() must run before the first commit');
    this.index.checkReferences(batch.ops);
    batch.seal();
    this.index.apply(batch.ops, this.data);
  }

  async getMessage(id: bigint): Promise<StoredMessage | undefined> {
    const m = this.data.messages.get(id);
    return m && copyMessage(m);
  }

  getSession(clientId: string): StoredSession | undefined {
    const s = this.data.sessions.get(clientId);
    return s && copySession(s);
  }

  expiredSessions(now: number): StoredSession[] { return this.index.expiredSessions(now).map(copySession); }
  queueLength(clientId: string): number { return this.index.queueLength(clientId); }
  async compact(): Promise<void> {}
  async close(): Promise<void> { this.closed = true; }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('CLOSED', ':memory:', 'memory store used after close()');
  }
}
