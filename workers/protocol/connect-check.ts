// Raw checks on a CONNECT that mqtt-packet lets through: its strings are decoded with
// replacement characters (hiding ill-formed UTF-8 and accepting U+0000), and it does not
// reject Will QoS 3 or (3.1.1) a password without a user name.
import { readVarint } from './varint';
import { goodString } from './validate';

const vi = { len: 0 };

/** Returns null if fine, else what is wrong (the connection is then closed). */
export function checkConnect(buf: Buffer, start: number, end: number, level: number): string | null {
  let p = start + 2 + ((buf[start] << 8) | buf[start + 1]) + 1;
  if (p + 3 > end) return 'truncated';
  const flags = buf[p];
  p += 3;
  const will = (flags & 0x04) !== 0;
  if (((flags >> 3) & 3) === 3) return 'will QoS 3'; // [MQTT-3.1.2-14]
  const user = (flags & 0x80) !== 0;
  const pass = (flags & 0x40) !== 0;
  if (level < 5 && pass && !user) return 'password without user name'; // [MQTT-3.1.2-22]
  if (level === 5) { const n = readVarint(buf, p, end, vi); if (n < 0) return 'bad properties'; p += vi.len + n; }
  const str = (): boolean => {
    if (p + 2 > end) return false;
    const len = (buf[p] << 8) | buf[p + 1];
    if (p + 2 + len > end) return false;
    const ok = goodString(buf, p + 2, p + 2 + len);
    p += 2 + len;
    return ok;
  };
  if (!str()) return 'client identifier is not valid UTF-8';
  if (will) {
    if (level === 5) { const n = readVarint(buf, p, end, vi); if (n < 0) return 'bad will properties'; p += vi.len + n; }
    if (!str()) return 'will topic is not valid UTF-8';
    if (p + 2 > end) return 'truncated will payload';
    p += 2 + ((buf[p] << 8) | buf[p + 1]);
  }
  if (user && !str()) return 'user name is not valid UTF-8';
  return null;
}
