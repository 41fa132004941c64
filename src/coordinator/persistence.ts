// The coordinator's store (workers/README.md, "Persistence and write-behind"): opens RocksDB once for the process, restores what it
// holds at start, and group-commits the operations workers send. Workers name subscribers by
// their trie id; `bind` ops tell this side which client id each id belongs to.
import { HistogramWriter, H_STORE_COMMIT } from '../shared/histograms';
import { promises as fs } from 'node:fs';
import { RocksStore } from '../store/rocks-store';
import { withOpenTimeout } from '../store/data-dir';
import type { StoreBatch } from '../store/batch';
import type { StoredMessage, StoredSession, StoredSubscription, QueueEntry, InflightEntry, NewMessage, MessageProperties, RetainedStamp } from '../store/types';
import type { BrokerConfig } from '../config';
import type { PersistResult, RestoredSession, StoreOp, WireMessage, WireQueued, WireInflight } from '../shared/messages';
import { propsFromStore, propsToStore } from '../shared/props-codec';
import type { StoreIds } from '../shared/store-ids';

interface Loading {
  session: StoredSession;
  subs: StoredSubscription[];
  queue: WireQueued[];
  inflight: WireInflight[];
  inbound: number[];
}

export function toWire(m: NewMessage): WireMessage {
  return {
    topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain,
    props: propsFromStore(m.properties), expiryAt: m.properties.expiresAt ?? 0,
  };
}

export function fromWire(w: WireMessage, now: number): NewMessage {
  return {
    topic: w.topic, payload: Buffer.from(w.payload.buffer, w.payload.byteOffset, w.payload.byteLength),
    qos: w.qos as 0 | 1 | 2, retain: w.retain, properties: propsToStore(w.props, w.expiryAt), publishedAt: now,
  };
}

/** postMessage turns a Buffer into a plain Uint8Array; the store works with Buffers. */
const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

function reviveProps(p: MessageProperties): MessageProperties {
  return p.correlationData ? { ...p, correlationData: buf(p.correlationData) } : p;
}

function reviveMessage(m: NewMessage): NewMessage {
  return { ...m, payload: buf(m.payload), properties: reviveProps(m.properties) };
}

function reviveSession(s: StoredSession): StoredSession {
  return s.will ? { ...s, will: { ...s.will, payload: buf(s.will.payload), properties: reviveProps(s.will.properties) } } : s;
}

/** Subscription options byte as the trie carries it (src/shared/topic-index.ts). */
const optsOf = (s: StoredSubscription) => s.qos | (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0);

/**
 * FLEETMQ_TEST_HOOKS=1 with FLEETMQ_TEST_STORE_OPEN=hang: the store open never finishes, the
 * way it did for a --data-dir under /proc — a recursive mkdir spinning in this thread's
 * threadpool request, which also keeps process.exit() from finishing. For the startup timeout
 * and SIGTERM-during-startup tests (test/integration/1a-startup-errors.test.ts).
 */
function hangForTests(): Promise<RocksStore> | null {
  if (process.env.FLEETMQ_TEST_HOOKS !== '1' || process.env.FLEETMQ_TEST_STORE_OPEN !== 'hang') return null;
  const never = () => new Promise<RocksStore>(() => undefined);
  return fs.mkdir('/proc/fleetmq-test-hang/store', { recursive: true }).then(never, never);
}

/** One retained write of a cluster member (Persistence.writeRetained). */
export interface RetainedWrite {
  topic: string;
  msg?: WireMessage;
  stamp: RetainedStamp | null;
}

export class Persistence {
  private readonly subToClient = new Map<number, string>();
  /** Message bodies added by the request being applied (see 'inflight' below). */
  private readonly added = new Set<number>();
  /** Times each group commit (--metrics true): fleetmq_store_commit_duration_seconds. */
  private commitTimer: HistogramWriter | null = null;
  timeCommits(w: HistogramWriter): void { this.commitTimer = w; }

  private constructor(private readonly store: RocksStore | null, private readonly sync: boolean, private readonly ids: StoreIds) {}

  /**
   * Opens the store, bounded by --store-open-timeout-ms: a StoreError 'TIMEOUT' then, and the
   * main thread exits (a hung open cannot be cancelled; src/cli.ts exits without waiting for it).
   */
  static async open(config: BrokerConfig, ids: StoreIds): Promise<Persistence> {
    if (config.durability === 'none') return new Persistence(null, false, ids);
    const opening = hangForTests() ?? RocksStore.open(config.dataDir, { writeBufferSize: config.storeMemtableMb << 20 });
    const store = config.storeOpenTimeoutMs > 0 ? await withOpenTimeout(opening, config.dataDir, config.storeOpenTimeoutMs) : await opening;
    return new Persistence(store, config.durability === 'fsync', ids);
  }

  get enabled(): boolean { return this.store !== null; }

  /**
   * Reads everything back; logs progress for large stores. Retained messages go to `retained`
   * as they are read (the index is built while the store is read, and 1M of them are never
   * all held as objects at once).
   */
  async load(log: (line: string) => void, retained: (m: WireMessage) => void,
    retainedStamp?: (topic: string, s: RetainedStamp) => void): Promise<{ sessions: RestoredSession[] }> {
    if (!this.store) return { sessions: [] };
    const started = Date.now();
    log('store: loading sessions, subscriptions, retained and queued messages (progress every 100000 records)');
    const byClient = new Map<string, Loading>();
    const messages = new Map<bigint, StoredMessage>();
    const of = (c: string) => byClient.get(c);
    const summary = await this.store.loadAll({
      session: (s) => { byClient.set(s.clientId, { session: s, subs: [], queue: [], inflight: [], inbound: [] }); },
      subscription: (s) => { of(s.clientId)?.subs.push(s); },
      retained: (m) => { retained(toWire(m)); },
      retainedStamp: (topic, s) => { retainedStamp?.(topic, s); },
      message: (m) => { messages.set(m.id, m); },
      queued: (c, e) => { this.addQueued(of(c), e, messages); },
      inflight: (c, e) => { this.addInflight(of(c), e, messages); },
      inboundQos2: (c, pid) => { of(c)?.inbound.push(pid); },
    }, {
      progressEvery: 100_000,
      onProgress: (p) => { if (p.records >= 100_000) log(`store: ${p.phase}: ${p.records} records${p.phaseDone ? ' (done)' : ''}`); },
    });
    this.ids.raiseTo(this.store.highestId());
    const now = Date.now();
    const sessions = [...byClient.values()].map((l) => this.restored(l, now));
    log(`store: restored ${summary.sessions} sessions, ${summary.subscriptions} subscriptions, ${summary.retained} retained, ` +
      `${summary.queued} queued and ${summary.inflight} in-flight messages in ${Date.now() - started} ms`);
    return { sessions };
  }

  private addQueued(l: Loading | undefined, e: QueueEntry, messages: Map<bigint, StoredMessage>): void {
    const m = messages.get(e.messageId);
    if (!l || !m) return;
    l.queue.push({ msg: { ...toWire(m), qos: e.qos, retain: e.retain }, subIds: e.subscriptionIdentifiers.length ? e.subscriptionIdentifiers : null, msgId: Number(e.messageId), seq: Number(e.seq) });
  }

  private addInflight(l: Loading | undefined, e: InflightEntry, messages: Map<bigint, StoredMessage>): void {
    if (!l) return;
    const m = e.messageId !== null ? messages.get(e.messageId) : undefined;
    if (e.state === 'publish' && !m) return;
    l.inflight.push({
      packetId: e.packetId, qos: e.qos, state: e.state,
      msg: m ? { ...toWire(m), qos: e.qos, retain: e.retain } : null,
      subIds: e.subscriptionIdentifiers.length ? e.subscriptionIdentifiers : null,
      msgId: e.messageId !== null ? Number(e.messageId) : 0,
    });
  }

  private restored(l: Loading, now: number): RestoredSession {
    const s = l.session;
    return {
      clientId: s.clientId,
      protocolVersion: s.protocolVersion,
      expiryInterval: s.sessionExpiryInterval,
      subscriptions: l.subs.map((x) => ({ filter: x.filter, opts: optsOf(x), subId: x.subscriptionIdentifier ?? 0, retainHandling: x.retainHandling })),
      inflight: l.inflight,
      queue: l.queue,
      inboundQos2: l.inbound,
      // A client connected when the broker stopped lost its connection then: count from now.
      disconnectedAt: s.disconnectedAt ?? now,
      will: s.will ? {
        msg: toWire({ topic: s.will.topic, payload: s.will.payload, qos: s.will.qos, retain: s.will.retain, properties: s.will.properties, publishedAt: now }),
        delay: s.will.delayInterval,
      } : null,
    };
  }

  /**
   * A cluster member's own retained writes (src/cluster/retained-sync.ts): a message taken from
   * a peer (`msg`; empty payload = delete), and the stamp or tombstone kept beside it (`stamp`;
   * null = delete it). `done` runs once durable, with the error if the write failed.
   */
  writeRetained(writes: readonly RetainedWrite[], done: (error: string | null) => void = () => undefined): void {
    if (!this.store || writes.length === 0) { done(null); return; }
    const b = this.store.batch();
    const now = Date.now();
    for (const w of writes) {
      if (w.msg) {
        if (w.msg.payload.byteLength === 0) b.deleteRetained(w.topic);
        else b.putRetained(fromWire(w.msg, now));
      }
      if (w.stamp) b.putRetainedStamp(w.topic, w.stamp);
      else b.deleteRetainedStamp(w.topic);
    }
    this.store.commit(b, { sync: this.sync }).then(() => done(null), (err: Error) => done(err.message));
  }

  /** Group-commits one worker request; `done` runs once it is durable (per --durability). */
  apply(ops: StoreOp[], done: (results: PersistResult[], error: string | null) => void): void {
    if (!this.store) { done([], null); return; }
    const batch = this.store.batch();
    const results: PersistResult[] = [];
    this.added.clear();
    try {
      for (const op of ops) this.applyOp(batch, op, results);
    } catch (err) {
      done([], (err as Error).message);
      return;
    } finally {
      this.ids.endTurn();
    }
    if (batch.size === 0) { done(results, null); return; }
    const timer = this.commitTimer;
    const t0 = timer ? performance.now() : 0;
    this.store.commit(batch, { sync: this.sync }).then(() => {
      timer?.observe(H_STORE_COMMIT, (performance.now() - t0) / 1000);
      done(results, null);
    }, (err: Error) => done([], err.message));
  }

  private applyOp(b: StoreBatch, op: StoreOp, results: PersistResult[]): void {
    switch (op.o) {
      case 'session': b.putSession(reviveSession(op.session)); break;
      case 'delSession': b.deleteSession(op.clientId); break;
      case 'sub': b.putSubscription(op.sub); break;
      case 'unsub': b.deleteSubscription(op.clientId, op.filter); break;
      case 'dequeue': b.dequeue(op.clientId, BigInt(op.seq)); break;
      case 'inflight': {
        // A message routed before it was stored, to a session the coordinator had not bound
        // yet, was not stored for it: its delivery stays in memory only.
        const id = op.entry.messageId;
        if (id !== null && !this.added.has(Number(id)) && !this.store!.hasMessage(id)) break;
        b.putInflight(op.clientId, op.entry);
        break;
      }
      case 'delInflight': b.deleteInflight(op.clientId, op.packetId); break;
      case 'inbound': b.addInboundQos2(op.clientId, op.packetId); break;
      case 'delInbound': b.deleteInboundQos2(op.clientId, op.packetId); break;
      case 'retain':
        if (op.msg.payload.byteLength === 0) b.deleteRetained(op.msg.topic);
        else b.putRetained(fromWire(op.msg, Date.now()));
        break;
      case 'bind': this.subToClient.set(op.sub, op.clientId); break;
      case 'unbind': this.subToClient.delete(op.sub); break;
      case 'publish': {
        const id = b.addMessage(reviveMessage(op.msg), BigInt(op.id ?? this.ids.next()));
        this.added.add(Number(id));
        const seqs = op.targets.map((t) => {
          const clientId = this.subToClient.get(t.sub);
          if (!clientId) return 0;
          if (t.pid !== undefined) {
            b.putInflight(clientId, { packetId: t.pid, messageId: id, qos: t.qos as 1 | 2, state: 'publish', dup: false, retain: t.retain, subscriptionIdentifiers: t.subIds });
            return 0;
          }
          const seq = BigInt(t.seq ?? this.ids.next());
          return Number(b.enqueue(clientId, { messageId: id, qos: t.qos as 0 | 1 | 2, retain: t.retain, subscriptionIdentifiers: t.subIds }, seq));
        });
        // Answered only where the worker waits for the ids (a publish it stores before routing).
        if (op.id === undefined) results.push({ msgId: Number(id), seqs });
        break;
      }
    }
  }

  async close(): Promise<void> {
    await this.store?.close();
  }
}
