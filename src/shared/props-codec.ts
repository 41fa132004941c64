// MQTT 5 message properties between their wire form (what the PUBLISH fast path forwards, no
// alias / subscription ids / expiry) and the store's structured form. Only on the persistence
// path: live delivery never decodes properties.
import type { MessageProperties } from '../store/types';

const PAYLOAD_FORMAT = 0x01, CONTENT_TYPE = 0x03, RESPONSE_TOPIC = 0x08, CORRELATION_DATA = 0x09, USER_PROPERTY = 0x26;

export function propsToStore(raw: Uint8Array | null, expiryAt: number): MessageProperties {
  const out: MessageProperties = {};
  if (expiryAt) out.expiresAt = expiryAt;
  if (!raw) return out;
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let p = 0;
  const str = () => { const n = b.readUInt16BE(p); const s = b.toString('utf8', p + 2, p + 2 + n); p += 2 + n; return s; };
  while (p < b.length) {
    const id = b[p++];
    if (id === PAYLOAD_FORMAT) out.payloadFormatIndicator = b[p++] ? 1 : 0;
    else if (id === CONTENT_TYPE) out.contentType = str();
    else if (id === RESPONSE_TOPIC) out.responseTopic = str();
    else if (id === CORRELATION_DATA) { const n = b.readUInt16BE(p); out.correlationData = Buffer.from(new Uint8Array(b.subarray(p + 2, p + 2 + n)).buffer) /* own buffer: posted to the coordinator */; p += 2 + n; }
    else if (id === USER_PROPERTY) { const k = str(); const v = str(); (out.userProperties ??= []).push([k, v]); }
    else break; // nothing else is ever forwarded
  }
  return out;
}

function strProp(id: number, s: string): Buffer {
  const v = Buffer.from(s, 'utf8');
  const o = Buffer.allocUnsafe(3 + v.length);
  o[0] = id; o.writeUInt16BE(v.length, 1); v.copy(o, 3);
  return o;
}

export function propsFromStore(p: MessageProperties): Buffer | null {
  const parts: Buffer[] = [];
  if (p.payloadFormatIndicator !== undefined) parts.push(Buffer.from([PAYLOAD_FORMAT, p.payloadFormatIndicator]));
  if (p.contentType !== undefined) parts.push(strProp(CONTENT_TYPE, p.contentType));
  if (p.responseTopic !== undefined) parts.push(strProp(RESPONSE_TOPIC, p.responseTopic));
  if (p.correlationData !== undefined) {
    const o = Buffer.allocUnsafe(3 + p.correlationData.length);
    o[0] = CORRELATION_DATA; o.writeUInt16BE(p.correlationData.length, 1); p.correlationData.copy(o, 3);
    parts.push(o);
  }
  for (const [k, v] of p.userProperties ?? []) {
    const kb = strProp(USER_PROPERTY, k);
    const vb = strProp(0, v).subarray(1);
    parts.push(kb, vb);
  }
  return parts.length ? Buffer.concat(parts) : null;
}
