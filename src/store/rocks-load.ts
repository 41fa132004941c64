// Restart: reads the whole RocksDB store in a fixed order, rebuilds the write index, emits every
// record to the visitor, and collects what must be cleaned up (message bodies nothing
// references, references to bodies that are missing). Any key or value that does not decode
// is reported as a corrupt store, never skipped.
import * as codec from './codec';
import { corruptStore, fromRocksError } from './errors';
import type { RawOp, RocksDb } from './rocksdb';
import type { StoreIndex } from './state';
import type { LoadOptions, LoadPhase, LoadSummary, LoadVisitor } from './store';

function typeRange(type: number): [Buffer, Buffer] {
  return [Buffer.from([type]), Buffer.from([type + 1])];
}

export class RocksLoader {
  readonly cleanup: RawOp[] = [];
  readonly summary: LoadSummary = {
    sessions: 0, subscriptions: 0, retained: 0, messages: 0, queued: 0, inflight: 0, inbound: 0,
    orphanMessagesDeleted: 0, danglingRefsDropped: 0,
  };
  /** Referenced message ids whose body is missing. */
  private readonly dangling = new Set<bigint>();

  constructor(private readonly db: RocksDb, private readonly index: StoreIndex,
    private readonly v: LoadVisitor, private readonly opts: LoadOptions) {}

  async run(): Promise<LoadSummary> {
    await this.phase('index', codec.T_QUEUE, (k, val) => this.indexQueue(k, val));
    await this.phase('index', codec.T_INFLIGHT, (k, val) => this.indexInflight(k, val));
    await this.phase('sessions', codec.T_SESSION, (k, val) => this.session(k, val));
    await this.phase('subscriptions', codec.T_SUB, (k, val) => this.subscription(k, val));
    await this.phase('retained', codec.T_RETAINED, (k, val) => this.retained(k, val));
    await this.phase('retained-stamps', codec.T_RETAINED_STAMP, (k, val) => this.v.retainedStamp?.(k.toString('utf8', 1), codec.decodeRetainedStamp(val)));
    const seen = new Set<bigint>();
    await this.phase('messages', codec.T_MESSAGE, (k, val) => this.message(k, val, seen));
    this.dropDangling(seen);
    await this.phase('queues', codec.T_QUEUE, (k, val) => this.queued(k, val));
    await this.phase('inflight', codec.T_INFLIGHT, (k, val) => this.inflight(k, val));
    await this.phase('inbound', codec.T_INBOUND, (k) => this.inbound(k));
    return this.summary;
  }

  private async phase(phase: LoadPhase, type: number, visit: (k: Buffer, v: Buffer) => void): Promise<void> {
    const every = this.opts.progressEvery ?? 10000;
    let records = 0;
    const [gte, lt] = typeRange(type);
    let ours: unknown; // a decode failure or the visitor's own error: not a RocksDB read error
    const decode = (k: Buffer, val: Buffer) => {
      try {
        visit(k, val);
      } catch (err) {
        ours = err instanceof codec.DecodeError
          ? corruptStore(this.db.location, `${phase} record with key ${k.toString('hex')} does not decode`, err)
          : err;
        throw ours;
      }
      if (++records % every === 0) this.opts.onProgress?.({ phase, records, phaseDone: false });
    };
    try {
      await this.db.scan(gte, lt, decode);
    } catch (err) {
      throw err === ours ? err : fromRocksError(this.db.location, `reading ${phase}`, err);
    }
    this.opts.onProgress?.({ phase, records, phaseDone: true });
  }

  private indexQueue(k: Buffer, val: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const seq = codec.parseSeq(rest);
    const e = codec.decodeQueueEntry(val);
    this.index.client(clientId).queue.set(seq, e.messageId);
    this.index.ref(e.messageId);
    this.index.sawSeq(seq);
  }

  private indexInflight(k: Buffer, val: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const e = codec.decodeInflight(codec.parsePacketId(rest), val);
    this.index.client(clientId).inflight.set(e.packetId, e.messageId);
    if (e.messageId !== null) this.index.ref(e.messageId);
  }

  private session(k: Buffer, val: Buffer): void {
    const { clientId } = codec.parseClientKey(k);
    const s = codec.decodeSession(clientId, val);
    this.index.sessions.set(clientId, s);
    this.summary.sessions++;
    this.v.session?.(s);
  }

  private subscription(k: Buffer, val: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const filter = rest.toString('utf8');
    const s = codec.decodeSubscription(clientId, filter, val);
    this.index.client(clientId).filters.add(filter);
    this.summary.subscriptions++;
    this.v.subscription?.(s);
  }

  private retained(k: Buffer, val: Buffer): void {
    const m = codec.decodeMessage(val);
    if (m.topic !== k.toString('utf8', 1)) throw new codec.DecodeError('retained topic differs from its key');
    this.summary.retained++;
    this.v.retained?.(m);
  }

  private message(k: Buffer, val: Buffer, seen: Set<bigint>): void {
    const id = codec.parseMessageId(k);
    this.index.sawMessageId(id);
    if (!this.index.refs.has(id)) {
      // A body without references: left by a crash-free bug or a future format; never needed.
      this.cleanup.push({ type: 'del', key: k });
      this.summary.orphanMessagesDeleted++;
      return;
    }
    const m = codec.decodeMessage(val);
    seen.add(id);
    this.summary.messages++;
    this.v.message?.({ ...m, id });
  }

  /** References to bodies that are gone cannot be delivered: drop them, count them. */
  private dropDangling(seen: Set<bigint>): void {
    if (seen.size === this.index.refs.size) return;
    for (const id of this.index.refs.keys()) if (!seen.has(id)) this.dangling.add(id);
    for (const id of this.dangling) this.index.refs.delete(id);
    for (const [clientId, c] of this.index.clients) {
      for (const [seq, id] of c.queue) {
        if (this.dangling.has(id)) { c.queue.delete(seq); this.drop(codec.queueKey(clientId, seq)); }
      }
      for (const [packetId, id] of c.inflight) {
        if (id !== null && this.dangling.has(id)) { c.inflight.delete(packetId); this.drop(codec.inflightKey(clientId, packetId)); }
      }
    }
  }

  private drop(key: Buffer): void {
    this.cleanup.push({ type: 'del', key });
    this.summary.danglingRefsDropped++;
  }

  private queued(k: Buffer, val: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const e = codec.decodeQueueEntry(val);
    if (this.dangling.has(e.messageId)) return;
    this.summary.queued++;
    this.v.queued?.(clientId, { ...e, seq: codec.parseSeq(rest) });
  }

  private inflight(k: Buffer, val: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const e = codec.decodeInflight(codec.parsePacketId(rest), val);
    if (e.messageId !== null && this.dangling.has(e.messageId)) return;
    this.summary.inflight++;
    this.v.inflight?.(clientId, e);
  }

  private inbound(k: Buffer): void {
    const { clientId, rest } = codec.parseClientKey(k);
    const packetId = codec.parsePacketId(rest);
    this.index.client(clientId).inbound.add(packetId);
    this.summary.inbound++;
    this.v.inboundQos2?.(clientId, packetId);
  }
}
