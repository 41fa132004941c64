// Retained updates from a worker to the coordinator, packed: every retained PUBLISH of one
// worker turn travels in one buffer (transferred, not copied) instead of one structured-clone
// postMessage each, whose fixed cost and per-message garbage on both threads capped setting
// retained messages far below the publish rate. Per message:
//
//   [topic len u16][topic][flags u8: qos | expiry<<2 | props<<3][expiryAt u48]?[props len u32 + props]?[payload len u32][payload]
//
// An empty payload clears the topic [MQTT-3.3.1-6].
import type { WireMessage } from './messages';

const F_EXPIRY = 4;
const F_PROPS = 8;
/** A batch is sent once it holds this many bytes, whatever the turn: the buffer stays bounded. */
export const RETAINED_BATCH_BYTES = 1 << 20;

export class RetainedBatchWriter {
  private buf = Buffer.allocUnsafeSlow(4096);
  private at = 0;
  count = 0;

  get bytes(): number { return this.at; }

  add(m: WireMessage): void {
    const topicLen = Buffer.byteLength(m.topic, 'utf8');
    const props = m.props !== null && m.props.byteLength > 0 ? m.props : null;
    const need = 2 + topicLen + 1 + (m.expiryAt !== 0 ? 6 : 0) + (props ? 4 + props.byteLength : 0) + 4 + m.payload.byteLength;
    this.reserve(need);
    const b = this.buf;
    let o = this.at;
    b.writeUInt16BE(topicLen, o); o += 2;
    o += b.write(m.topic, o, topicLen, 'utf8');
    b[o++] = (m.qos & 3) | (m.expiryAt !== 0 ? F_EXPIRY : 0) | (props ? F_PROPS : 0);
    if (m.expiryAt !== 0) { b.writeUIntBE(m.expiryAt, o, 6); o += 6; }
    if (props) { b.writeUInt32BE(props.byteLength, o); b.set(props, o + 4); o += 4 + props.byteLength; }
    b.writeUInt32BE(m.payload.byteLength, o); o += 4;
    b.set(m.payload, o); o += m.payload.byteLength;
    this.at = o;
    this.count++;
  }

  /** The packed batch, in a buffer of its own (to transfer); the writer is spent. */
  take(): Uint8Array {
    return new Uint8Array(this.buf.buffer, 0, this.at);
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.at + n) cap *= 2;
    const next = Buffer.allocUnsafeSlow(cap);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}

/** Calls `each` with every message of a packed batch, in order (payloads are views of `bytes`). */
export function readRetainedBatch(bytes: Uint8Array, each: (m: WireMessage) => void): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const view = (len: number): Uint8Array => {
    if (o + len > b.length) throw new RangeError('retained batch truncated');
    const v = new Uint8Array(b.buffer, b.byteOffset + o, len);
    o += len;
    return v;
  };
  while (o < b.length) {
    const topicLen = b.readUInt16BE(o); o += 2;
    if (o + topicLen + 1 > b.length) throw new RangeError('retained batch truncated');
    const topic = b.toString('utf8', o, o + topicLen); o += topicLen;
    const flags = b[o++];
    let expiryAt = 0;
    if ((flags & F_EXPIRY) !== 0) { expiryAt = b.readUIntBE(o, 6); o += 6; }
    const props = (flags & F_PROPS) !== 0 ? view(b.readUInt32BE((o += 4) - 4)) : null;
    const payload = view(b.readUInt32BE((o += 4) - 4));
    each({ topic, payload, qos: flags & 3, retain: true, props, expiryAt });
  }
}
