// MQTT Variable Byte Integer (§1.5.5): at most 4 bytes, so at most 268,435,455.

/** Decodes at `pos`; returns value, or -1 if incomplete before `end`, or -2 if malformed. */
export function readVarint(buf: Uint8Array, pos: number, end: number, out: { len: number }): number {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) return -1;
    const b = buf[pos + i];
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) { out.len = i + 1; return value; }
    mult *= 128;
  }
  return -2;
}

export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}
