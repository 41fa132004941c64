// RocksDB Store: one instance per data directory per process (RocksDB locks the path), owned by
// one thread. Commits are applied to the in-memory index at once and written by a group
// commit: everything committed while the previous write was running (or in the same tick)
// goes out as one atomic db.batch, so the per-call cost (~40 µs) is paid once per group.
import { promises as fs } from 'node:fs';
import { StoreBatch } from './batch';
import * as codec from './codec';
import { copySession } from './copy';
import { corruptStore, fromRocksError, newerFormat, StoreError, unknownFormat } from './errors';
import { prepareDataDir } from './data-dir';
import { RocksLoader } from './rocks-load';
import { RocksSink } from './rocks-sink';
import { RawOp, RocksDb } from './rocksdb';
import { StoreIndex } from './state';
import type { CommitOptions, LoadOptions, LoadSummary, LoadVisitor, Store } from './store';
import type { StoredMessage, StoredSession } from './types';

export interface RocksStoreOptions {
  /** RocksDB block cache, bytes (default 8 MiB). */
  cacheSize?: number;
  /** Memtable size, bytes (default 16 MiB): larger means fewer, bigger flushes. */
  writeBufferSize?: number;
}

interface Waiter { resolve(): void; reject(err: unknown): void }

/** Counters for metrics: commits per write is the group-commit factor. */
export interface RocksStoreStats {
  commits: number;
  writes: number;
  ops: number;
  syncWrites: number;
  /** Puts cancelled by a delete before they were written (write-behind). */
  cancelled: number;
}

const ROCKS_FILE = /^(\d+\.(sst|log)|MANIFEST-\d+|OPTIONS-\d+|IDENTITY|LOCK|LOG(\.old\..*)?)$/;

/**
 * Without CURRENT, RocksDB would create a fresh database in the directory and later delete the
 * old files as obsolete: a silent wipe. Refuse instead.
 */
async function checkDirectory(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StoreError('IO', dir, `cannot read data directory ${dir}: ${(err as Error).message}`, err);
  }
  if (names.length === 0 || names.includes('CURRENT')) return;
  if (names.some((n) => ROCKS_FILE.test(n))) throw corruptStore(dir, 'RocksDB files present but CURRENT is missing');
  throw unknownFormat(dir);
}

export class RocksStore implements Store {
  readonly durable = true;
  private readonly index = new StoreIndex();
  private readonly sink = new RocksSink();
  private waiters: Waiter[] = [];
  private pendingSync = false;
  private scheduled = false;
  private writing = false;
  private failed: StoreError | null = null;
  private loaded = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private readonly counters = { commits: 0, writes: 0, ops: 0, syncWrites: 0 };

  private constructor(private readonly db: RocksDb) {}

  get location(): string { return this.db.location; }

  stats(): RocksStoreStats { return { ...this.counters, cancelled: this.sink.stats.cancelled }; }

  /** Opens or creates the store at `dir`; StoreError if it is corrupt, locked or newer. */
  static async open(dir: string, opts: RocksStoreOptions = {}): Promise<RocksStore> {
    // Checked and created first, level by level (a recursive mkdir never returns under /proc).
    const location = await prepareDataDir(dir);
    await checkDirectory(location);
    await RocksStore.verifyReadOnly(location);
    const db = new RocksDb(location);
    try {
      await db.open({
        createIfMissing: true, errorIfExists: false, compression: true,
        cacheSize: opts.cacheSize ?? 8 << 20, writeBufferSize: opts.writeBufferSize ?? 16 << 20,
      });
    } catch (err) {
      throw fromRocksError(location, 'open', err);
    }
    try {
      await RocksStore.checkFormat(db);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
    return new RocksStore(db);
  }

  /**
   * A read-write open replays the WAL into new files before a damaged SST is ever read, so a
   * corrupt store would be changed on the way to being refused. An existing store is first
   * opened read-only and read through once (block checksums are verified on read): a damaged
   * one is refused with its files untouched.
   */
  private static async verifyReadOnly(location: string): Promise<void> {
    let names: string[] = [];
    try { names = await fs.readdir(location); } catch { return; }
    if (!names.includes('CURRENT')) return;
    const db = new RocksDb(location);
    try {
      await db.open({ createIfMissing: false, errorIfExists: false, readOnly: true });
    } catch (err) {
      throw fromRocksError(location, 'open', err);
    }
    try {
      await db.scan(Buffer.from([0]), Buffer.from([0xff, 0xff]), () => undefined, true);
    } catch (err) {
      throw fromRocksError(location, 'reading', err);
    } finally {
      await db.close().catch(() => undefined);
    }
  }

  private static async checkFormat(db: RocksDb): Promise<void> {
    let raw: Buffer | undefined;
    try {
      raw = await db.get(codec.versionKey());
    } catch (err) {
      throw fromRocksError(db.location, 'reading the format version', err);
    }
    if (raw === undefined) {
      if (!(await RocksStore.isEmpty(db))) throw unknownFormat(db.location);
      await db.put(codec.versionKey(), codec.encodeVersion(codec.FORMAT_VERSION), true);
      return;
    }
    let version: number;
    try {
      version = codec.decodeVersion(raw);
    } catch (err) {
      throw corruptStore(db.location, 'format version key does not decode', err);
    }
    if (version > codec.FORMAT_VERSION) throw newerFormat(db.location, version, codec.FORMAT_VERSION);
    if (version < 1) throw corruptStore(db.location, `format version ${version}`);
  }

  private static async isEmpty(db: RocksDb): Promise<boolean> {
    let empty = true;
    try {
      await db.scan(Buffer.from([0]), Buffer.from([0xff, 0xff]), () => { empty = false; }, false);
    } catch (err) {
      throw fromRocksError(db.location, 'reading', err);
    }
    return empty;
  }

  async loadAll(visitor: LoadVisitor, opts: LoadOptions = {}): Promise<LoadSummary> {
    this.checkUsable();
    if (this.loaded) throw new Error('RocksStore: loadAll() runs once per open');
    const loader = new RocksLoader(this.db, this.index, visitor, opts);
    const summary = await loader.run();
    if (loader.cleanup.length > 0) await this.write(loader.cleanup, true);
    this.loaded = true;
    return summary;
  }

  batch(): StoreBatch { return new StoreBatch(this.index); }

  commit(batch: StoreBatch, opts: CommitOptions = {}): Promise<void> {
    try {
      this.checkUsable();
      if (!this.loaded) throw new Error('RocksStore: loadAll() must run before the first commit');
      this.index.checkReferences(batch.ops);
      batch.seal();
    } catch (err) {
      return Promise.reject(err);
    }
    try {
      this.index.apply(batch.ops, this.sink);
    } catch (err) {
      // The index may be half-updated and no longer matches the disk: stop writing.
      this.fail(err);
      return Promise.reject(this.failed);
    }
    if (opts.sync) this.pendingSync = true;
    this.counters.commits++;
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  async getMessage(id: bigint): Promise<StoredMessage | undefined> {
    this.checkUsable();
    let raw: Buffer | undefined;
    try {
      raw = await this.db.get(codec.messageKey(id));
    } catch (err) {
      throw fromRocksError(this.location, `reading message ${id}`, err);
    }
    if (raw === undefined) return undefined;
    try {
      return { ...codec.decodeMessage(raw), id };
    } catch (err) {
      throw corruptStore(this.location, `message ${id} does not decode`, err);
    }
  }

  getSession(clientId: string): StoredSession | undefined {
    const s = this.index.sessions.get(clientId);
    return s && copySession(s);
  }

  /** A body referenced by a queue or in-flight entry (committed, or applied and being written). */
  hasMessage(id: bigint): boolean { return this.index.refs.has(id); }

  /** Ids from an outside allocator (src/shared/store-ids.ts) must start above this. */
  highestId(): bigint { return this.index.highestId(); }

  expiredSessions(now: number): StoredSession[] { return this.index.expiredSessions(now).map(copySession); }
  queueLength(clientId: string): number { return this.index.queueLength(clientId); }

  async compact(): Promise<void> {
    this.checkUsable();
    await this.whenIdle();
    await this.db.compactRange(Buffer.from([0]), Buffer.from([0xff]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.whenIdle();
    this.closed = true;
    await this.db.close();
  }

  // ------------------------------------------------------------ group commit

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    queueMicrotask(() => { this.scheduled = false; this.flush(); });
  }

  private flush(): void {
    if (this.waiters.length === 0) { this.notifyIdle(); return; }
    const ops = this.sink.take();
    const waiters = this.waiters;
    const sync = this.pendingSync;
    this.waiters = [];
    this.pendingSync = false;
    if (ops.length === 0) {
      // Everything cancelled out: nothing to make durable, and every earlier write has landed.
      for (const w of waiters) w.resolve();
      this.notifyIdle();
      return;
    }
    this.writing = true;
    this.counters.writes++;
    this.counters.ops += ops.length;
    if (sync) this.counters.syncWrites++;
    this.db.batch(ops, sync, (err) => {
      this.writing = false;
      if (err) {
        this.fail(err);
        for (const w of waiters) w.reject(this.failed);
        for (const w of this.waiters) w.reject(this.failed);
        this.waiters = [];
      } else {
        for (const w of waiters) w.resolve();
      }
      this.flush();
    });
  }

  private write(ops: RawOp[], sync: boolean): Promise<void> {
    return new Promise((resolve, reject) => this.db.batch(ops, sync, (err) => (err ? reject(err) : resolve())));
  }

  private whenIdle(): Promise<void> {
    if (!this.writing && !this.scheduled && this.waiters.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private notifyIdle(): void {
    const idle = this.idle;
    this.idle = [];
    for (const f of idle) f();
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    const msg = err instanceof Error ? err.message : String(err);
    this.failed = new StoreError('WRITE_FAILED', this.location,
      `store at ${this.location}: a write failed (${msg}); restart fleetmq, which reloads from disk`, err);
  }

  private checkUsable(): void {
    if (this.closed) throw new StoreError('CLOSED', this.location, `store at ${this.location} used after close()`);
    if (this.failed) throw this.failed;
  }
}
