// This worker's side of the payload slab (DESIGN.md §3): a message bound for other workers is
// copied once into one slot held by all of them, with ONE native call per batch to allocate and
// one per ring drain to release. Handles, not payload bytes, cross the rings.
import { native } from '../../src/native';
import { DEFAULT_CLASSES } from '../../src/slab-layout';
import type { Message } from '../protocol/message';

const MAX_SIZE = DEFAULT_CLASSES[DEFAULT_CLASSES.length - 1].size;

export class SlabLink {
  readonly bytes: Buffer;
  private readonly holders: Int32Array;
  private req = new Uint32Array(3 * 256);
  private out = new Uint32Array(2 * 256);
  private released = new Uint32Array(1024);
  private releasedCount = 0;

  constructor(sab: SharedArrayBuffer, holders: SharedArrayBuffer, index: number) {
    this.bytes = Buffer.from(sab);
    this.holders = new Int32Array(holders);
    Atomics.store(this.holders, index, native.slabAttach(new Uint8Array(sab)));
  }

  /** The holder mask of these target workers, or null if one of them is not attached. */
  private mask(targets: number[]): [number, number] | null {
    let lo = 0, hi = 0;
    for (const w of targets) {
      const h = Atomics.load(this.holders, w);
      if (h < 0) return null;
      if (h < 32) lo |= 1 << h; else hi |= 1 << (h - 32);
    }
    return [lo >>> 0, hi >>> 0];
  }

  /**
   * Allocates one slot per message (in order; stops at the first that cannot have one) and
   * writes each body into it. Returns how many got a slot; `out` holds [handle, offset] pairs.
   */
  place(msgs: Message[], targets: number[][]): { count: number; out: Uint32Array } {
    const n = msgs.length;
    if (this.req.length < 3 * n) { this.req = new Uint32Array(3 * n); this.out = new Uint32Array(2 * n); }
    let k = 0;
    for (; k < n; k++) {
      const m = this.mask(targets[k]);
      if (!m || msgs[k].size > MAX_SIZE) break;
      this.req[3 * k] = Math.max(1, msgs[k].size);
      this.req[3 * k + 1] = m[0];
      this.req[3 * k + 2] = m[1];
    }
    const count = k === 0 ? 0 : native.slabAlloc(this.req, k, this.out);
    for (let i = 0; i < count; i++) {
      const msg = msgs[i];
      let p = this.out[2 * i + 1];
      p += msg.topic.copy(this.bytes, p);
      if (msg.props) p += msg.props.copy(this.bytes, p);
      msg.payload.copy(this.bytes, p);
    }
    return { count, out: this.out };
  }

  /** Our reference to a slot whose bytes we have copied out; released in one call per drain. */
  release(handle: number): void {
    if (this.releasedCount === this.released.length) this.flushReleases();
    this.released[this.releasedCount++] = handle;
  }

  flushReleases(): void {
    if (this.releasedCount === 0) return;
    native.slabRelease(this.released, this.releasedCount);
    this.releasedCount = 0;
  }
}
