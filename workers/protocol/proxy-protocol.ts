// The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load balancer writes
// before the client's bytes: who the client really is. Parsed from the bytes read so far; the
// caller keeps reading until the result is not NEED_MORE, and never past PROXY_MAX_BYTES.
import * as net from 'node:net';

/** v1: at most 107 bytes with its CRLF. v2: 16 bytes, then the length it gives; TLVs beyond this are refused. */
export const PROXY_V1_MAX = 107;
export const PROXY_V2_MAX_BODY = 2048;
export const PROXY_MAX_BYTES = 16 + PROXY_V2_MAX_BODY;

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIG = Buffer.from('PROXY ', 'latin1');

export const NEED_MORE = 0;
export const BAD = -1;

export interface ProxySource {
  /** Bytes the header took (what follows is the client's). */
  consumed: number;
  /** The client's address and port; null for a LOCAL (v2) or UNKNOWN (v1) header: the connection's own peer stands. */
  address: string | null;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** NEED_MORE, BAD, or the source. */
export function parseProxyHeader(buf: Buffer): ProxySource | typeof NEED_MORE | typeof BAD {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return BAD;
}

function prefixOf(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

/** "PROXY TCP4 192.0.2.1 198.51.100.1 56324 1883\r\n", or "PROXY UNKNOWN ...\r\n". */
function parseV1(buf: Buffer): ProxySource | typeof NEED_MORE | typeof BAD {
  if (!prefixOf(buf, V1_SIG)) return BAD;
  const lf = buf.indexOf(0x0a);
  if (lf < 0) return buf.length >= PROXY_V1_MAX ? BAD : NEED_MORE;
  if (lf + 1 > PROXY_V1_MAX || lf < 1 || buf[lf - 1] !== 0x0d) return BAD;
  const parts = buf.toString('latin1', 0, lf - 1).split(' ');
  if (parts[1] === 'UNKNOWN') return { consumed: lf + 1, address: null, port: 0, family: 'IPv4' };
  if (parts.length !== 6) return BAD;
  const [, proto, src, dst, sport, dport] = parts;
  const fam = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (fam === 0 || net.isIP(src) !== fam || net.isIP(dst) !== fam || !validPort(sport) || !validPort(dport)) return BAD;
  return { consumed: lf + 1, address: src, port: Number(sport), family: fam === 4 ? 'IPv4' : 'IPv6' };
}

function validPort(s: string): boolean {
  return /^(0|[1-9]\d{0,4})$/.test(s) && Number(s) <= 65535;
}

function parseV2(buf: Buffer): ProxySource | typeof NEED_MORE | typeof BAD {
  if (!prefixOf(buf, V2_SIG)) return BAD;
  if (buf.length < 16) return NEED_MORE;
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return BAD;
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return BAD;
  const fam = buf[13];
  const len = buf.readUInt16BE(14);
  if (len > PROXY_V2_MAX_BODY) return BAD;
  if (buf.length < 16 + len) return NEED_MORE;
  const consumed = 16 + len;
  // LOCAL: the proxy's own connection (a health check); its addresses, if any, are ignored.
  if (cmd === 0) return { consumed, address: null, port: 0, family: 'IPv4' };
  if (fam === 0x11 || fam === 0x12) { // TCP or UDP over IPv4
    if (len < 12) return BAD;
    const a = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { consumed, address: a, port: buf.readUInt16BE(24), family: 'IPv4' };
  }
  if (fam === 0x21 || fam === 0x22) { // over IPv6
    if (len < 36) return BAD;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + 2 * i).toString(16));
    return { consumed, address: compactIPv6(groups), port: buf.readUInt16BE(48), family: 'IPv6' };
  }
  // UNSPEC or AF_UNIX: nothing usable; the connection's own peer stands.
  if (fam === 0x00 || fam === 0x31 || fam === 0x32) return { consumed, address: null, port: 0, family: 'IPv4' };
  return BAD;
}

/** RFC 5952 text: the longest run of two or more zero groups becomes "::". */
function compactIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
