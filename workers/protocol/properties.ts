// Encodes the forwardable MQTT 5 message properties that mqtt-packet decoded (the will's),
// into the same byte form the PUBLISH fast path forwards.
import { PROP } from './constants';

function str(id: number, s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(3 + b.length);
  out[0] = id;
  out.writeUInt16BE(b.length, 1);
  b.copy(out, 3);
  return out;
}

function bin(id: number, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(3 + b.length);
  out[0] = id;
  out.writeUInt16BE(b.length, 1);
  b.copy(out, 3);
  return out;
}

export function encodeProps(p: Record<string, unknown>): Buffer | null {
  const parts: Buffer[] = [];
  if (typeof p.payloadFormatIndicator === 'boolean' || typeof p.payloadFormatIndicator === 'number') {
    parts.push(Buffer.from([PROP.PAYLOAD_FORMAT, p.payloadFormatIndicator ? 1 : 0]));
  }
  if (typeof p.contentType === 'string') parts.push(str(PROP.CONTENT_TYPE, p.contentType));
  if (typeof p.responseTopic === 'string') parts.push(str(PROP.RESPONSE_TOPIC, p.responseTopic));
  if (Buffer.isBuffer(p.correlationData)) parts.push(bin(PROP.CORRELATION_DATA, p.correlationData));
  const up = p.userProperties as Record<string, string | string[]> | undefined;
  if (up && typeof up === 'object') {
    for (const [k, v] of Object.entries(up)) {
      for (const one of Array.isArray(v) ? v : [v]) {
        const kb = Buffer.from(k, 'utf8');
        const vb = Buffer.from(String(one), 'utf8');
        const out = Buffer.allocUnsafe(5 + kb.length + vb.length);
        out[0] = PROP.USER_PROPERTY;
        out.writeUInt16BE(kb.length, 1);
        kb.copy(out, 3);
        out.writeUInt16BE(vb.length, 3 + kb.length);
        vb.copy(out, 5 + kb.length);
        parts.push(out);
      }
    }
  }
  return parts.length ? Buffer.concat(parts) : null;
}
