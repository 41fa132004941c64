// Payload slab layout: one SharedArrayBuffer created once by the main thread, attached by every
// thread (native.slabAttach). JS and C++ both touch it, so every offset lives here and is
// mirrored once in native/slab.h (test/native/slab.test.ts checks the mirror).
//
// Words are Int32 (4 bytes). A zero-filled buffer + a header is a valid empty slab.
//
//  word 0 ┌──────────────────────────────────────────────────────────────┐
//         │ MAGIC │ VERSION │ CLASS_COUNT │ SLOT_COUNT │ HOLDERS_LO/HI │ … │ header (16 words)
//  16     ├──────────────────────────────────────────────────────────────┤
//         │ class c (8 words each, MAX_CLASSES):                         │
//         │   SIZE │ COUNT │ FIRST_SLOT │ BITMAP_WORD │ DATA_OFFSET │ HINT │
//  80     ├──────────────────────────────────────────────────────────────┤
//         │ slot s (4 words each, SLOT_COUNT):                           │
//         │   STATE = gen(12) << 16 | refs(16) │ HOLDERS_LO │ HOLDERS_HI │ LENGTH │
//         ├──────────────────────────────────────────────────────────────┤
//         │ per class: in-use bitmap, 1 bit per slot (1 = allocated)     │
//         ├── 64-byte aligned ───────────────────────────────────────────┤
//         │ per class: COUNT × SIZE payload bytes (DATA_OFFSET is bytes) │
//         └──────────────────────────────────────────────────────────────┘
//
// A handle is a uint32: slot index in bits 0..19, generation in bits 20..31 (never 0, so a
// handle of 0 means "no slot"). Each thread that holds payloads registers as a holder
// (0..63); a slot records which holders still hold it and how many (refs). The last release
// clears the bitmap bit. A handle whose generation differs from the slot's is stale and is
// refused without touching the slot.

export const SLAB_MAGIC = 0x46514d53; // 'SMQF' little-endian
export const SLAB_VERSION = 1;

export const HDR_MAGIC = 0;
export const HDR_VERSION = 1;
export const HDR_CLASS_COUNT = 2;
export const HDR_SLOT_COUNT = 3;
export const HDR_HOLDERS_LO = 4; // registered holders, bit per holder (maintained by native)
export const HDR_HOLDERS_HI = 5;
export const HDR_TOTAL_BYTES = 6;
export const HEADER_WORDS = 16;

export const MAX_CLASSES = 8;
export const CLASS_TABLE_WORD = HEADER_WORDS;
export const CLASS_WORDS = 8;
export const CLS_SIZE = 0;
export const CLS_COUNT = 1;
export const CLS_FIRST_SLOT = 2;
export const CLS_BITMAP_WORD = 3;
export const CLS_DATA_OFFSET = 4;
export const CLS_HINT = 5; // next bitmap word to try (a shared hint, races are harmless)

export const SLOTS_WORD = CLASS_TABLE_WORD + MAX_CLASSES * CLASS_WORDS;
export const SLOT_WORDS = 4;
export const SLOT_STATE = 0;
export const SLOT_HOLDERS_LO = 1;
export const SLOT_HOLDERS_HI = 2;
export const SLOT_LENGTH = 3;

export const STATE_REFS_MASK = 0xffff;
export const STATE_GEN_SHIFT = 16;
export const GEN_MASK = 0xfff;
export const HANDLE_SLOT_BITS = 20;
export const HANDLE_SLOT_MASK = (1 << HANDLE_SLOT_BITS) - 1;
export const MAX_SLOTS = 1 << HANDLE_SLOT_BITS;
export const MAX_HOLDERS = 64;
export const DATA_ALIGN = 64;

export interface SlabClass {
  size: number;
  count: number;
}

export const DEFAULT_CLASSES: readonly SlabClass[] = [
  { size: 256, count: 16384 },
  { size: 1024, count: 8192 },
  { size: 4096, count: 2048 },
  { size: 16384, count: 512 },
  { size: 65536, count: 128 },
];

export function handleSlot(handle: number): number {
  return handle & HANDLE_SLOT_MASK;
}

export function handleGeneration(handle: number): number {
  return handle >>> HANDLE_SLOT_BITS;
}

/** Creates the slab once (main thread); pass the buffer to every worker and attach it there. */
export function createSlabBuffer(classes: readonly SlabClass[] = DEFAULT_CLASSES): SharedArrayBuffer {
  if (classes.length === 0 || classes.length > MAX_CLASSES) throw new RangeError(`1..${MAX_CLASSES} size classes`);
  let slots = 0;
  for (let c = 1; c < classes.length; c++) {
    if (classes[c]!.size <= classes[c - 1]!.size) throw new RangeError('class sizes must increase');
  }
  for (const c of classes) {
    if (c.count <= 0 || c.size <= 0 || c.size % 8 !== 0) throw new RangeError('class size must be a positive multiple of 8');
    slots += c.count;
  }
  if (slots > MAX_SLOTS) throw new RangeError(`at most ${MAX_SLOTS} slots`);
  let word = SLOTS_WORD + slots * SLOT_WORDS;
  const bitmapWords = classes.map((c) => {
    const at = word;
    word += Math.ceil(c.count / 32);
    return at;
  });
  let bytes = Math.ceil((word * 4) / DATA_ALIGN) * DATA_ALIGN;
  const dataOffsets = classes.map((c) => {
    const at = bytes;
    bytes += c.size * c.count;
    return at;
  });
  const sab = new SharedArrayBuffer(bytes);
  const w = new Int32Array(sab);
  w[HDR_MAGIC] = SLAB_MAGIC;
  w[HDR_VERSION] = SLAB_VERSION;
  w[HDR_CLASS_COUNT] = classes.length;
  w[HDR_SLOT_COUNT] = slots;
  w[HDR_TOTAL_BYTES] = bytes;
  let first = 0;
  classes.forEach((c, i) => {
    const at = CLASS_TABLE_WORD + i * CLASS_WORDS;
    w[at + CLS_SIZE] = c.size;
    w[at + CLS_COUNT] = c.count;
    w[at + CLS_FIRST_SLOT] = first;
    w[at + CLS_BITMAP_WORD] = bitmapWords[i]!;
    w[at + CLS_DATA_OFFSET] = dataOffsets[i]!;
    first += c.count;
  });
  return sab;
}

/** Byte offset of a slot's payload inside the slab buffer. */
export function slotDataOffset(words: Int32Array, slot: number): number {
  const classes = words[HDR_CLASS_COUNT]!;
  for (let c = 0; c < classes; c++) {
    const at = CLASS_TABLE_WORD + c * CLASS_WORDS;
    const first = words[at + CLS_FIRST_SLOT]!;
    if (slot < first + words[at + CLS_COUNT]!) return words[at + CLS_DATA_OFFSET]! + (slot - first) * words[at + CLS_SIZE]!;
  }
  return -1;
}

/**
 * Releases `holder`'s reference with Atomics only (no native call), exactly as native
 * slabRelease does. Returns false for a stale handle or one this holder does not hold.
 * The native env cleanup hook only knows about holdings, not who released them, so mixing
 * this with slabRelease is fine.
 */
export function releaseWithAtomics(words: Int32Array, handle: number, holder: number): boolean {
  const slot = handleSlot(handle);
  if (slot >= words[HDR_SLOT_COUNT]!) return false;
  const base = SLOTS_WORD + slot * SLOT_WORDS;
  const state = Atomics.load(words, base + SLOT_STATE);
  if (((state >>> STATE_GEN_SHIFT) & GEN_MASK) !== handleGeneration(handle) || (state & STATE_REFS_MASK) === 0) return false;
  const bit = 1 << (holder & 31);
  const old = Atomics.and(words, base + (holder < 32 ? SLOT_HOLDERS_LO : SLOT_HOLDERS_HI), ~bit);
  if ((old & bit) === 0) return false;
  const prev = Atomics.sub(words, base + SLOT_STATE, 1);
  if ((prev & STATE_REFS_MASK) === 1) freeSlot(words, slot);
  return true;
}

function freeSlot(words: Int32Array, slot: number): void {
  const classes = words[HDR_CLASS_COUNT]!;
  for (let c = 0; c < classes; c++) {
    const at = CLASS_TABLE_WORD + c * CLASS_WORDS;
    const first = words[at + CLS_FIRST_SLOT]!;
    if (slot < first + words[at + CLS_COUNT]!) {
      const i = slot - first;
      Atomics.and(words, words[at + CLS_BITMAP_WORD]! + (i >>> 5), ~(1 << (i & 31)));
      return;
    }
  }
}
