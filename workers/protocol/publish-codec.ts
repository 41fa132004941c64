// The PUBLISH fast path (workers/README.md, "The path of a PUBLISH"): parse only what routing needs straight from the
// frame bytes, and encode outbound PUBLISHes by hand. Every other packet uses mqtt-packet;
// test/protocol checks this codec against it.
import { PROP } from './constants';
import { readVarint, varintSize, writeVarint } from './varint';
import { goodString, validTopicName } from './validate';

/** Result of parsing one inbound PUBLISH; reused per worker (no per-message allocation). */
export class PublishFrame {
  qos = 0;
  dup = false;
  retain = false;
  topicStart = 0;
  topicEnd = 0;
  packetId = 0;
  /** v5: properties span, and what the fast path pulled out of it. */
  propsStart = 0;
  propsEnd = 0;
  topicAlias = 0;
  expiryInterval = -1;
  /** True when the props contain something besides alias / expiry that must be forwarded. */
  forwardProps = false;
  payloadStart = 0;
  end = 0;
}

/** Why a PUBLISH was rejected; the caller maps it to a reason code or a close. */
export const enum PubError {
  NONE = 0,
  MALFORMED = 1,
  PROTOCOL = 2,
}

const vi = { len: 0 };

/**
 * Parses the PUBLISH whose variable header starts at `pos` and ends at `end`, with fixed
 * header byte `first`. Returns PubError.NONE and fills `f`.
 */
export function parsePublish(first: number, buf: Buffer, pos: number, end: number, v5: boolean, f: PublishFrame): PubError {
  f.qos = (first >> 1) & 3;
  f.dup = (first & 8) !== 0;
  f.retain = (first & 1) !== 0;
  if (f.qos === 3) return PubError.MALFORMED; // [MQTT-3.3.1-4]
  if (f.qos === 0 && f.dup) return PubError.MALFORMED; // [MQTT-3.3.1-2]
  if (pos + 2 > end) return PubError.MALFORMED;
  const tlen = (buf[pos] << 8) | buf[pos + 1];
  f.topicStart = pos + 2;
  f.topicEnd = f.topicStart + tlen;
  pos = f.topicEnd;
  if (pos > end) return PubError.MALFORMED;
  f.packetId = 0;
  if (f.qos > 0) {
    if (pos + 2 > end) return PubError.MALFORMED;
    f.packetId = (buf[pos] << 8) | buf[pos + 1];
    if (f.packetId === 0) return PubError.PROTOCOL; // [MQTT-2.2.1-3]
    pos += 2;
  }
  f.topicAlias = 0;
  f.expiryInterval = -1;
  f.forwardProps = false;
  f.propsStart = f.propsEnd = pos;
  if (v5) {
    const plen = readVarint(buf, pos, end, vi);
    if (plen < 0) return PubError.MALFORMED;
    f.propsStart = pos + vi.len;
    f.propsEnd = f.propsStart + plen;
    if (f.propsEnd > end) return PubError.MALFORMED;
    const err = scanProps(buf, f);
    if (err !== PubError.NONE) return err;
    pos = f.propsEnd;
  }
  f.payloadStart = pos;
  f.end = end;
  return PubError.NONE;
}

function scanProps(buf: Buffer, f: PublishFrame): PubError {
  let p = f.propsStart;
  const end = f.propsEnd;
  let seen = 0;
  while (p < end) {
    const id = buf[p++];
    // One bit per property id for the at-most-once rule; Topic Alias (0x23) borrows bit 0,
    // which no property uses.
    const bit = id === PROP.USER_PROPERTY ? 0 : id === PROP.TOPIC_ALIAS ? 1 : id < 32 ? 1 << id : 0;
    if (bit !== 0 && (seen & bit) !== 0) return PubError.PROTOCOL; // each property at most once [MQTT-2.2.2-2]
    seen |= bit;
    switch (id) {
      case PROP.PAYLOAD_FORMAT:
        if (p + 1 > end || buf[p] > 1) return PubError.PROTOCOL;
        p += 1; f.forwardProps = true; break;
      case PROP.MESSAGE_EXPIRY:
        if (p + 4 > end) return PubError.MALFORMED;
        f.expiryInterval = buf.readUInt32BE(p); p += 4; break;
      case PROP.TOPIC_ALIAS:
        if (p + 2 > end) return PubError.MALFORMED;
        f.topicAlias = (buf[p] << 8) | buf[p + 1]; p += 2;
        if (f.topicAlias === 0) return PubError.PROTOCOL;
        break;
      case PROP.CONTENT_TYPE:
      case PROP.RESPONSE_TOPIC:
      case PROP.CORRELATION_DATA: {
        if (p + 2 > end) return PubError.MALFORMED;
        const s = p + 2;
        p = s + ((buf[p] << 8) | buf[p + 1]);
        if (p > end) return PubError.MALFORMED;
        // Strings are checked like topics; a Response Topic is a topic name [MQTT-3.3.2-14].
        if (id === PROP.CONTENT_TYPE && !goodString(buf, s, p)) return PubError.MALFORMED;
        if (id === PROP.RESPONSE_TOPIC && !validTopicName(buf, s, p)) return PubError.PROTOCOL;
        f.forwardProps = true;
        break;
      }
      case PROP.USER_PROPERTY: {
        for (let k = 0; k < 2; k++) {
          if (p + 2 > end) return PubError.MALFORMED;
          const s = p + 2;
          p = s + ((buf[p] << 8) | buf[p + 1]);
          if (p > end || !goodString(buf, s, p)) return PubError.MALFORMED;
        }
        f.forwardProps = true;
        break;
      }
      default:
        // Subscription Identifier from a client is a protocol error [MQTT-3.3.4-6]; anything
        // else is not a PUBLISH property.
        return PubError.PROTOCOL;
    }
    if (p > end) return PubError.MALFORMED;
  }
  return PubError.NONE;
}

/**
 * The properties to forward: the client's, minus Topic Alias and Message Expiry (which the
 * broker rewrites per subscriber [MQTT-3.3.2-6]). A view when nothing needs removing.
 */
export function forwardedProps(buf: Buffer, f: PublishFrame): Buffer | null {
  if (!f.forwardProps) return null;
  if (f.topicAlias === 0 && f.expiryInterval < 0) return buf.subarray(f.propsStart, f.propsEnd);
  const out = Buffer.allocUnsafe(f.propsEnd - f.propsStart);
  let o = 0;
  let p = f.propsStart;
  while (p < f.propsEnd) {
    const start = p;
    const id = buf[p++];
    if (id === PROP.PAYLOAD_FORMAT) p += 1;
    else if (id === PROP.MESSAGE_EXPIRY) p += 4;
    else if (id === PROP.TOPIC_ALIAS) p += 2;
    else if (id === PROP.USER_PROPERTY) { p += 2 + ((buf[p] << 8) | buf[p + 1]); p += 2 + ((buf[p] << 8) | buf[p + 1]); }
    else p += 2 + ((buf[p] << 8) | buf[p + 1]);
    if (id !== PROP.TOPIC_ALIAS && id !== PROP.MESSAGE_EXPIRY) o += buf.copy(out, o, start, p);
  }
  return o === 0 ? null : out.subarray(0, o);
}

/** Per-subscriber parts of an outbound PUBLISH (MQTT 5 only). */
export interface OutboundExtras {
  subIds: number[] | null;
  /** 0 = no alias; otherwise the alias to send. */
  alias: number;
  /** With an alias already known to the client, the topic is sent empty [MQTT-3.3.2-12]. */
  omitTopic: boolean;
  /** Remaining Message Expiry Interval in seconds, or -1 [MQTT-3.3.2-6]. */
  expiry: number;
}

export const NO_EXTRAS: OutboundExtras = { subIds: null, alias: 0, omitTopic: false, expiry: -1 };

function subIdsSize(subIds: number[] | null): number {
  if (!subIds) return 0;
  let n = 0;
  for (const id of subIds) n += 1 + varintSize(id);
  return n;
}

/** Encodes a complete PUBLISH packet. */
export function encodePublish(
  topic: Buffer, payload: Buffer, props: Buffer | null, qos: number, retain: boolean, dup: boolean,
  packetId: number, v5: boolean, x: OutboundExtras,
): Buffer {
  const topicLen = x.omitTopic ? 0 : topic.length;
  let propsLen = 0;
  if (v5) {
    propsLen = (props ? props.length : 0) + subIdsSize(x.subIds) + (x.alias ? 3 : 0) + (x.expiry >= 0 ? 5 : 0);
  }
  const rl = 2 + topicLen + (qos > 0 ? 2 : 0) + (v5 ? varintSize(propsLen) + propsLen : 0) + payload.length;
  const buf = Buffer.allocUnsafe(1 + varintSize(rl) + rl);
  buf[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let p = writeVarint(buf, 1, rl);
  buf[p++] = topicLen >> 8;
  buf[p++] = topicLen & 0xff;
  if (topicLen) p += topic.copy(buf, p);
  if (qos > 0) { buf[p++] = packetId >> 8; buf[p++] = packetId & 0xff; }
  if (v5) {
    p = writeVarint(buf, p, propsLen);
    if (x.expiry >= 0) { buf[p++] = PROP.MESSAGE_EXPIRY; buf.writeUInt32BE(x.expiry, p); p += 4; }
    if (x.alias) { buf[p++] = PROP.TOPIC_ALIAS; buf[p++] = x.alias >> 8; buf[p++] = x.alias & 0xff; }
    if (x.subIds) for (const id of x.subIds) { buf[p++] = PROP.SUBSCRIPTION_ID; p = writeVarint(buf, p, id); }
    if (props) p += props.copy(buf, p);
  }
  payload.copy(buf, p);
  return buf;
}

/** PUBACK / PUBREC / PUBREL / PUBCOMP: 4 bytes when the reason is success (§3.4.2.1). */
export function encodeAck(type: number, packetId: number, reason: number, v5: boolean): Buffer {
  const withReason = v5 && reason !== 0;
  const b = Buffer.allocUnsafe(withReason ? 5 : 4);
  b[0] = (type << 4) | (type === 6 ? 2 : 0);
  b[1] = withReason ? 3 : 2;
  b[2] = packetId >> 8;
  b[3] = packetId & 0xff;
  if (withReason) b[4] = reason;
  return b;
}
