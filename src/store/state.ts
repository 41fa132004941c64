// The write index both stores keep in memory: which keys each client owns and how many
// references each message body has. It is what lets a commit delete a whole session, trim a
// queue or drop a message body in the same atomic write, without reading the database first.
// apply() turns logical batch ops into physical effects on a StoreSink.
import type { BatchOp, IdSource } from './batch';
import { NEVER_EXPIRES } from './types';
import type {
  InflightEntry, NewMessage, QueueEntry, RetainedStamp, StoredMessage, StoredSession, StoredSubscription,
} from './types';

/** Physical effects of a batch, in order. */
export interface StoreSink {
  putSession(s: StoredSession): void;
  delSession(clientId: string): void;
  putSub(s: StoredSubscription): void;
  delSub(clientId: string, filter: string): void;
  putMessage(m: StoredMessage): void;
  delMessage(id: bigint): void;
  putQueue(clientId: string, e: QueueEntry): void;
  delQueue(clientId: string, seq: bigint): void;
  putInflight(clientId: string, e: InflightEntry): void;
  delInflight(clientId: string, packetId: number): void;
  putInbound(clientId: string, packetId: number): void;
  delInbound(clientId: string, packetId: number): void;
  putRetained(m: NewMessage): void;
  delRetained(topic: string): void;
  putRetainedStamp(topic: string, s: RetainedStamp): void;
  delRetainedStamp(topic: string): void;
}

export class ClientIndex {
  readonly filters = new Set<string>();
  /** seq → messageId, in seq order (entries are only ever appended with a larger seq). */
  readonly queue = new Map<bigint, bigint>();
  readonly inflight = new Map<number, bigint | null>();
  readonly inbound = new Set<number>();

  isEmpty(): boolean {
    return this.filters.size === 0 && this.queue.size === 0 && this.inflight.size === 0 && this.inbound.size === 0;
  }
}

export class StoreIndex implements IdSource {
  readonly sessions = new Map<string, StoredSession>();
  readonly clients = new Map<string, ClientIndex>();
  readonly refs = new Map<bigint, number>();
  private messageId = 1n;
  private seq = 1n;

  nextMessageId(): bigint { return this.messageId++; }
  nextSeq(): bigint { return this.seq++; }

  /** Keeps the allocators above every id seen while loading. */
  sawMessageId(id: bigint): void { if (id >= this.messageId) this.messageId = id + 1n; }
  sawSeq(seq: bigint): void { if (seq >= this.seq) this.seq = seq + 1n; }

  /** The largest message id or sequence number the store holds (0 when empty). */
  highestId(): bigint { return (this.messageId > this.seq ? this.messageId : this.seq) - 1n; }

  client(clientId: string): ClientIndex {
    let c = this.clients.get(clientId);
    if (!c) { c = new ClientIndex(); this.clients.set(clientId, c); }
    return c;
  }

  ref(id: bigint): void { this.refs.set(id, (this.refs.get(id) ?? 0) + 1); }

  unref(id: bigint): void {
    const n = this.refs.get(id);
    if (n === undefined || n === 0) throw new Error(`store index: message ${id} released more often than referenced`);
    this.refs.set(id, n - 1);
  }

  expiredSessions(now: number): StoredSession[] {
    const out: StoredSession[] = [];
    for (const s of this.sessions.values()) {
      if (s.disconnectedAt === null || s.sessionExpiryInterval === NEVER_EXPIRES) continue;
      if (s.disconnectedAt + s.sessionExpiryInterval * 1000 <= now) out.push(s);
    }
    return out;
  }

  queueLength(clientId: string): number { return this.clients.get(clientId)?.queue.size ?? 0; }

  /**
   * Applies a batch to the index and emits its physical effects. Reference counts may touch
   * zero in the middle of a batch (dequeue then put in flight), so bodies are only written or
   * deleted once the whole batch has been applied. Callers run checkReferences first.
   */
  apply(ops: readonly BatchOp[], sink: StoreSink): void {
    const added = new Map<bigint, StoredMessage>();
    const touched = new Set<bigint>();
    const ref = (id: bigint) => { this.ref(id); touched.add(id); };
    const unref = (id: bigint) => { this.unref(id); touched.add(id); };
    for (const op of ops) {
      if (op.t === 'message') {
        // Workers that hold a message for their own sessions each store it under the id its
        // publisher took (workers/README.md, "Persistence and write-behind"): a body already referenced keeps its count and its record.
        if (this.refs.has(op.message.id) && !added.has(op.message.id)) continue;
        added.set(op.message.id, op.message);
        this.refs.set(op.message.id, 0);
        touched.add(op.message.id);
      } else {
        this.applyOne(op, sink, ref, unref);
      }
    }
    for (const id of touched) {
      const n = this.refs.get(id) ?? 0;
      const body = added.get(id);
      if (n === 0) {
        this.refs.delete(id);
        if (!body) sink.delMessage(id);
      } else if (body) {
        sink.putMessage(body);
      }
    }
  }

  /** Fails before any change if an entry names a message that neither exists nor is added. */
  checkReferences(ops: readonly BatchOp[]): void {
    const added = new Set<bigint>();
    for (const op of ops) {
      let id: bigint | null = null;
      if (op.t === 'message') added.add(op.message.id);
      else if (op.t === 'enqueue') id = op.entry.messageId;
      else if (op.t === 'inflight') id = op.entry.messageId;
      if (id !== null && !added.has(id) && !this.refs.has(id)) {
        throw new Error(`store batch references unknown message ${id} (${op.t})`);
      }
    }
  }

  private applyOne(op: BatchOp, sink: StoreSink, ref: (id: bigint) => void, unref: (id: bigint) => void): void {
    switch (op.t) {
      case 'session':
        this.sessions.set(op.session.clientId, op.session);
        sink.putSession(op.session);
        return;
      case 'delSession':
        this.deleteSession(op.clientId, sink, unref);
        return;
      case 'sub':
        this.client(op.sub.clientId).filters.add(op.sub.filter);
        sink.putSub(op.sub);
        return;
      case 'unsub':
        if (this.clients.get(op.clientId)?.filters.delete(op.filter)) sink.delSub(op.clientId, op.filter);
        return;
      case 'enqueue':
        this.client(op.clientId).queue.set(op.entry.seq, op.entry.messageId);
        ref(op.entry.messageId);
        sink.putQueue(op.clientId, op.entry);
        return;
      case 'dequeue':
        this.dequeue(op.clientId, op.seq, sink, unref);
        return;
      case 'dropOldest':
        this.dropOldest(op.clientId, op.count, sink, unref);
        return;
      case 'inflight':
        this.putInflight(op.clientId, op.entry, sink, ref, unref);
        return;
      case 'delInflight':
        this.deleteInflight(op.clientId, op.packetId, sink, unref);
        return;
      case 'inbound':
        this.client(op.clientId).inbound.add(op.packetId);
        sink.putInbound(op.clientId, op.packetId);
        return;
      case 'delInbound':
        if (this.clients.get(op.clientId)?.inbound.delete(op.packetId)) sink.delInbound(op.clientId, op.packetId);
        return;
      case 'retain':
        sink.putRetained(op.message);
        return;
      case 'delRetain':
        sink.delRetained(op.topic);
        return;
      case 'retainStamp':
        sink.putRetainedStamp(op.topic, op.stamp);
        return;
      case 'delRetainStamp':
        sink.delRetainedStamp(op.topic);
        return;
      case 'message':
        return; // handled by apply()
    }
  }

  private dequeue(clientId: string, seq: bigint, sink: StoreSink, unref: (id: bigint) => void): void {
    const c = this.clients.get(clientId);
    const id = c?.queue.get(seq);
    if (c === undefined || id === undefined) return;
    c.queue.delete(seq);
    unref(id);
    sink.delQueue(clientId, seq);
  }

  private dropOldest(clientId: string, count: number, sink: StoreSink, unref: (id: bigint) => void): void {
    const c = this.clients.get(clientId);
    if (!c) return;
    const seqs: bigint[] = [];
    for (const seq of c.queue.keys()) {
      if (seqs.length >= count) break;
      seqs.push(seq);
    }
    for (const seq of seqs) this.dequeue(clientId, seq, sink, unref);
  }

  private putInflight(clientId: string, e: InflightEntry, sink: StoreSink,
    ref: (id: bigint) => void, unref: (id: bigint) => void): void {
    const c = this.client(clientId);
    if (e.messageId !== null) ref(e.messageId);
    const old = c.inflight.get(e.packetId);
    if (old !== undefined && old !== null) unref(old);
    c.inflight.set(e.packetId, e.messageId);
    sink.putInflight(clientId, e);
  }

  private deleteInflight(clientId: string, packetId: number, sink: StoreSink, unref: (id: bigint) => void): void {
    const c = this.clients.get(clientId);
    if (!c || !c.inflight.has(packetId)) return;
    const old = c.inflight.get(packetId);
    c.inflight.delete(packetId);
    if (old !== undefined && old !== null) unref(old);
    sink.delInflight(clientId, packetId);
  }

  private deleteSession(clientId: string, sink: StoreSink, unref: (id: bigint) => void): void {
    if (this.sessions.delete(clientId)) sink.delSession(clientId);
    const c = this.clients.get(clientId);
    if (!c) return;
    for (const filter of c.filters) sink.delSub(clientId, filter);
    for (const [seq, id] of c.queue) { unref(id); sink.delQueue(clientId, seq); }
    for (const [packetId, id] of c.inflight) { if (id !== null) unref(id); sink.delInflight(clientId, packetId); }
    for (const packetId of c.inbound) sink.delInbound(clientId, packetId);
    this.clients.delete(clientId);
  }
}
