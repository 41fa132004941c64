// Typed, promise-returning access to the `rocksdb` package (leveldown API, no typings shipped).
// Only what the store uses.
//
// Loaded on first use, not when this module is: the addon registers itself the old N-API way and
// so loads in one thread per process only (src/broker.ts). A coordinator with --durability none
// must not load it, or no later broker in the same process could have a store.
let factory: RocksFactory | null = null;
// eslint-disable-next-line @typescript-eslint/no-var-requires
const rocksdb = (): RocksFactory => (factory ??= require('rocksdb') as RocksFactory);

export type RawOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

type Cb<T = void> = (err: Error | null | undefined, value?: T) => void;

interface RawIterator {
  next(cb: (err: Error | null | undefined, key?: Buffer, value?: Buffer) => void): void;
  end(cb: Cb): void;
}

interface RawDb {
  open(opts: object, cb: Cb): void;
  close(cb: Cb): void;
  batch(ops: RawOp[], opts: { sync: boolean }, cb: Cb): void;
  get(key: Buffer, opts: { asBuffer: boolean }, cb: Cb<Buffer>): void;
  put(key: Buffer, value: Buffer, opts: { sync: boolean }, cb: Cb): void;
  iterator(opts: object): RawIterator;
  compactRange(start: Buffer, end: Buffer, cb: Cb): void;
  approximateSize(start: Buffer, end: Buffer, cb: Cb<number>): void;
}

interface RocksFactory {
  (location: string): RawDb;
  destroy(location: string, cb: Cb): void;
  repair(location: string, cb: Cb): void;
}

function call<T = void>(fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

export function isNotFound(err: unknown): boolean {
  return err instanceof Error && /NotFound/i.test(err.message);
}

export class RocksDb {
  private readonly db: RawDb;

  constructor(readonly location: string) { this.db = rocksdb()(location); }

  open(opts: object): Promise<void> { return call((cb) => this.db.open(opts, cb)); }
  close(): Promise<void> { return call((cb) => this.db.close(cb)); }
  batch(ops: RawOp[], sync: boolean, cb: Cb): void { this.db.batch(ops, { sync }, cb); }
  put(key: Buffer, value: Buffer, sync: boolean): Promise<void> { return call((cb) => this.db.put(key, value, { sync }, cb)); }
  compactRange(start: Buffer, end: Buffer): Promise<void> { return call((cb) => this.db.compactRange(start, end, cb)); }

  /** undefined when the key is absent. */
  async get(key: Buffer): Promise<Buffer | undefined> {
    try {
      return await call<Buffer>((cb) => this.db.get(key, { asBuffer: true }, cb));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Visits [gte, lt) in key order. Callback-driven rather than one promise per entry: restart
   * time over millions of records is a benchmark figure.
   */
  scan(gte: Buffer, lt: Buffer, visit: (key: Buffer, value: Buffer) => void, values = true): Promise<void> {
    const it = this.db.iterator({ gte, lt, keys: true, values, keyAsBuffer: true, valueAsBuffer: true });
    return new Promise((resolve, reject) => {
      const finish = (err?: unknown) => it.end((endErr) => {
        const e = err ?? endErr;
        if (e) reject(e); else resolve();
      });
      const step = (): void => it.next((err, key, value) => {
        if (err) { finish(err); return; }
        if (key === undefined) { finish(); return; }
        try { visit(key, value ?? Buffer.alloc(0)); } catch (e) { finish(e); return; }
        step();
      });
      step();
    });
  }

  static destroy(location: string): Promise<void> { return call((cb) => rocksdb().destroy(location, cb)); }
  static repair(location: string): Promise<void> { return call((cb) => rocksdb().repair(location, cb)); }
}
