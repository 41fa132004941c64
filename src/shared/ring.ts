// SPSC ring over a SharedArrayBuffer. One producer thread and one consumer thread per ring;
// the producer publishes its tail once per batch (`commit`), which src/README.md ("Measured") has as
// 2x the throughput of publishing per record.
import { HEADER_BYTES, I_HEAD, I_TAIL, I_SPILLED, WRAP, LEN_BYTES, BELL_BYTES, B_SLEEPING, B_DOORBELL } from './ring-layout';

export function createRingBuffer(capacity: number): SharedArrayBuffer {
  if (capacity & (capacity - 1)) throw new Error(`ring capacity must be a power of two, got ${capacity}`);
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

const align4 = (n: number) => (n + 3) & ~3;

class RingBase {
  protected readonly header: Int32Array;
  protected readonly data: Buffer;
  protected readonly view: DataView;
  protected readonly capacity: number;
  protected readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.capacity = sab.byteLength - HEADER_BYTES;
    this.mask = this.capacity - 1;
    this.data = Buffer.from(sab, HEADER_BYTES, this.capacity);
    this.view = new DataView(sab, HEADER_BYTES, this.capacity);
  }
}

export class RingProducer extends RingBase {
  private tail: number;
  private pending = false;
  /** Records that did not fit; retried, in order, before anything new (bounded by the caller). */
  private readonly overflow: Buffer[] = [];

  private readonly bell: Int32Array;

  constructor(sab: SharedArrayBuffer, bell: SharedArrayBuffer) {
    super(sab);
    this.bell = new Int32Array(bell);
    this.tail = Atomics.load(this.header, I_TAIL);
  }

  get overflowLength(): number { return this.overflow.length; }

  /**
   * Reserves `len` bytes and returns the data offset to write the record at, or -1 when the
   * ring is full. Call `finish()` after writing.
   */
  reserve(len: number): number {
    if (this.overflow.length > 0 && !this.retryOverflow()) return -1;
    return this.reserveRaw(len);
  }

  private reserveRaw(len: number): number {
    const need = align4(LEN_BYTES + len);
    const head = Atomics.load(this.header, I_HEAD);
    let pos = this.tail & this.mask;
    let extra = 0;
    if (pos + need > this.capacity) extra = this.capacity - pos; // skip to the start
    if (((this.tail - head) | 0) + extra + need > this.capacity) return -1;
    if (extra > 0) {
      if (extra >= LEN_BYTES) this.view.setUint32(pos, WRAP, true);
      this.tail = (this.tail + extra) | 0;
      pos = 0;
    }
    this.view.setUint32(pos, len, true);
    this.tail = (this.tail + need) | 0;
    this.pending = true;
    return pos + LEN_BYTES;
  }

  /** Writes a whole record, spilling to the overflow queue if the ring is full. */
  push(record: Buffer): boolean {
    const at = this.reserve(record.length);
    if (at < 0) {
      this.overflow.push(Buffer.from(record));
      Atomics.add(this.header, I_SPILLED, 1);
      return false;
    }
    record.copy(this.data, at);
    return true;
  }

  /** The writable data region (use with the offset returned by `reserve`). */
  get bytes(): Buffer { return this.data; }
  get dataView(): DataView { return this.view; }

  private retryOverflow(): boolean {
    while (this.overflow.length > 0) {
      const rec = this.overflow[0];
      const at = this.reserveRaw(rec.length);
      if (at < 0) return false;
      rec.copy(this.data, at);
      this.overflow.shift();
    }
    return true;
  }

  /** Publishes everything written since the last commit; rings the doorbell if the consumer sleeps. */
  commit(): void {
    if (this.overflow.length > 0) this.retryOverflow();
    if (!this.pending) return;
    this.pending = false;
    Atomics.store(this.header, I_TAIL, this.tail);
    if (Atomics.load(this.bell, B_SLEEPING) === 1) {
      Atomics.add(this.bell, B_DOORBELL, 1);
      Atomics.notify(this.bell, B_DOORBELL);
    }
  }
}

export type RecordHandler = (data: Buffer, view: DataView, offset: number, length: number) => void;

export class RingConsumer extends RingBase {
  private head: number;

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.head = Atomics.load(this.header, I_HEAD);
  }

  /** Calls `fn` for up to `max` records; returns how many it consumed. */
  drain(fn: RecordHandler, max = 1 << 30): number {
    const tail = Atomics.load(this.header, I_TAIL);
    let n = 0;
    while (this.head !== tail && n < max) {
      let pos = this.head & this.mask;
      const room = this.capacity - pos;
      if (room < LEN_BYTES || this.view.getUint32(pos, true) === WRAP) {
        this.head = (this.head + room) | 0;
        continue;
      }
      const len = this.view.getUint32(pos, true);
      fn(this.data, this.view, pos + LEN_BYTES, len);
      this.head = (this.head + align4(LEN_BYTES + len)) | 0;
      n++;
    }
    Atomics.store(this.header, I_HEAD, this.head);
    return n;
  }

  isEmpty(): boolean {
    return this.head === Atomics.load(this.header, I_TAIL);
  }

  get spilled(): number { return Atomics.load(this.header, I_SPILLED); }
}

export function createBell(): SharedArrayBuffer {
  return new SharedArrayBuffer(BELL_BYTES);
}

/**
 * The consumer side of a doorbell: parks with `Atomics.waitAsync` (never blocking the loop)
 * until a producer rings. waitAsync does not keep a worker's loop alive (src/README.md, "Measured"): the
 * owner keeps a ref'd handle (its parentPort listener).
 */
export class BellWaiter {
  private readonly bell: Int32Array;
  private parked = false;

  constructor(sab: SharedArrayBuffer) {
    this.bell = new Int32Array(sab);
  }

  /**
   * Parks unless `hasWork()` turns true after the sleeping flag is raised (the re-check closes
   * the race with a producer that committed just before the flag went up).
   */
  park(hasWork: () => boolean, onWake: () => void): void {
    if (this.parked) return;
    Atomics.store(this.bell, B_SLEEPING, 1);
    const seen = Atomics.load(this.bell, B_DOORBELL);
    if (hasWork()) {
      Atomics.store(this.bell, B_SLEEPING, 0);
      onWake();
      return;
    }
    this.parked = true;
    const res = Atomics.waitAsync(this.bell, B_DOORBELL, seen);
    const resume = () => {
      this.parked = false;
      Atomics.store(this.bell, B_SLEEPING, 0);
      onWake();
    };
    if (res.async) res.value.then(resume);
    else resume();
  }

  /** Wakes a parked waiter from its own side (e.g. local work arrived). */
  ring(): void {
    Atomics.add(this.bell, B_DOORBELL, 1);
    Atomics.notify(this.bell, B_DOORBELL);
  }
}
