// This worker's side of the payload slab (native/README.md): a message bound for other workers is
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
  /** [handle, byteOffset] per placed message, valid until the next `place`. */
  out = new Uint32Array(2 * 256);
  private released = new Uint32Array(1024);
  private releasedCount = 0;

  constructor(sab: SharedArrayBuffer, holders: SharedArrayBuffer, index: number) {
    this.bytes = Buffer.from(sab);
    this.holders = new Int32Array(holders);
    Atomics.store(this.holders, index, native.slabAttach(new Uint8Array(sab)));
  }

  /** The holder mask of msg i's target workers (targets[first[i]..] step 3), or null if one is not attached. */
  private mask(first: number[], targets: number[], i: number): boolean {
    const end = i + 1 < first.length ? first[i + 1] : targets.length;
    let lo = 0, hi = 0;
    for (let t = first[i]; t < end; t += 3) {
      const h = Atomics.load(this.holders, targets[t]);
      if (h < 0) return false;
      if (h < 32) lo |= 1 << h; else hi |= 1 << (h - 32);
    }
    this.req[3 * i + 1] = lo >>> 0;
    this.req[3 * i + 2] = hi >>> 0;
    return true;
  }

  /**
   * Allocates one slot per message (in order; stops at the first that cannot have one) and
   * writes each body into it. Returns how many got a slot; `out` holds their [handle, offset].
   */
  place(msgs: Message[], first: number[], targets: number[]): number {
    const n = msgs.length;
    if (this.req.length < 3 * n) { this.req = new Uint32Array(3 * n); this.out = new Uint32Array(2 * n); }
    let k = 0;
    for (; k < n; k++) {
      if (msgs[k].size > MAX_SIZE || !this.mask(first, targets, k)) break;
      this.req[3 * k] = Math.max(1, msgs[k].size);
    }
    const count = k === 0 ? 0 : native.slabAlloc(this.req, k, this.out);
    for (let i = 0; i < count; i++) {
      const msg = msgs[i];
      let p = this.out[2 * i + 1];
      p += msg.topic.copy(this.bytes, p);
      if (msg.props) p += msg.props.copy(this.bytes, p);
      msg.payload.copy(this.bytes, p);
    }
    return count;
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
