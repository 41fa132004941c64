// One outbound delivery (queued, then in flight) and how a PUBLISH is encoded for the
// connection it goes to: the v5 extras (subscription ids, topic alias, remaining expiry), the
// client's Maximum Packet Size, and the shared QoS 0 encoding (encode once, write many).
import type { Connection } from '../net/connection';
import type { Message } from '../protocol/message';
import type { HeldPublish } from '../persist/held-publish';
import { encodePublish, NO_EXTRAS, OutboundExtras } from '../protocol/publish-codec';
import { OUTBOUND_ALIAS_CAP } from '../protocol/constants';
import { C_DROPPED_TOO_LARGE, C_MSGS_SENT, C_WITHHELD_NOT_AUTHORISED } from '../../src/shared/counters';
import { limitedLog } from '../../src/log/thread';

/**
 * One delivery to a session: queued (QoS 0 too, while it waits behind a retained feed), then, for
 * QoS 1/2, in flight. A class with a fixed shape,
 * mutated in place from queued to in flight (an object spread per message showed up as the
 * largest self time on the QoS 1 path).
 */
export class Outgoing {
  state: 'queued' | 'publish' | 'pubrel' = 'queued';
  /** The store has an in-flight entry for this packet id. */
  stored = false;
  /** Its first send carries DUP: the client may have had it on another node (a cross-node handover). */
  dup = false;
  constructor(
    public msg: Message | null,
    readonly qos: number,
    readonly retain: boolean,
    readonly subIds: number[] | null,
    /** Store message id and queue slot when this delivery is persisted (0 = not stored). */
    readonly msgId: number,
    readonly seq: number,
    /** The store request while it is held in this worker (write-behind), else null. */
    readonly held: HeldPublish | null,
  ) {}

  /** Still only in this worker's held request: store changes go to it, not to the coordinator. */
  get inHeld(): boolean { return this.held !== null && !this.held.posted; }
}

/**
 * Encodes and writes one PUBLISH; false if it exceeds the client's Maximum Packet Size or the
 * ACL does not let this client read its topic. Every PUBLISH to a client passes here (live,
 * queued, retained, resent), so here is where the ACL is checked, against the identity of the
 * connection that gets it; without --acl-file it costs one field test.
 */
export function writePublish(env: { count(counter: number, n: number): void }, c: Connection, msg: Message, qos: number, retain: boolean, pid: number, dup: boolean, subIds: number[] | null): boolean {
  if (c.acl !== null && !c.acl.mayReceive(msg)) { env.count(C_WITHHELD_NOT_AUTHORISED, 1); return false; }
  const v5 = c.v5;
  let buf: Buffer;
  let newAlias = '';
  if (qos === 0 && !subIds && c.clientAliasMax === 0 && msg.expiryAt === 0) {
    buf = cachedQos0(msg, v5, retain);
  } else {
    const x: OutboundExtras = v5 ? { subIds, alias: 0, omitTopic: false, expiry: -1 } : NO_EXTRAS;
    if (v5) {
      if (msg.expiryAt !== 0) x.expiry = Math.max(0, Math.ceil((msg.expiryAt - Date.now()) / 1000));
      if (c.clientAliasMax > 0) newAlias = pickAlias(c, msg, x);
    }
    buf = encodePublish(msg.topic, msg.payload, v5 ? msg.props : null, qos, retain, dup, pid, v5, x);
  }
  if (c.clientMaxPacket !== 0 && buf.length > c.clientMaxPacket) {
    // Never send more than the client allows [MQTT-3.1.2-24]; the message is discarded.
    if (newAlias) c.outAliases!.delete(newAlias);
    env.count(C_DROPPED_TOO_LARGE, 1);
    limitedLog().warn('dropped-too-large', 'message dropped: larger than the client\'s Maximum Packet Size', () => ({ clientId: c.clientId, address: c.address(), bytes: buf.length, max: c.clientMaxPacket }));
    return false;
  }
  c.write(buf);
  env.count(C_MSGS_SENT, 1);
  return true;
}

/** Outbound topic alias: reuse a known one (empty topic), or assign while under the cap. */
function pickAlias(c: Connection, msg: Message, x: OutboundExtras): string {
  const aliases = (c.outAliases ??= new Map());
  const topic = msg.topicString;
  const known = aliases.get(topic);
  if (known) { x.alias = known; x.omitTopic = true; return ''; }
  if (aliases.size >= Math.min(c.clientAliasMax, OUTBOUND_ALIAS_CAP)) return '';
  x.alias = aliases.size + 1;
  aliases.set(topic, x.alias);
  return topic;
}

function cachedQos0(msg: Message, v5: boolean, retain: boolean): Buffer {
  if (v5) {
    if (retain) return (msg.enc5r ??= encodePublish(msg.topic, msg.payload, msg.props, 0, true, false, 0, true, NO_EXTRAS));
    return (msg.enc5 ??= encodePublish(msg.topic, msg.payload, msg.props, 0, false, false, 0, true, NO_EXTRAS));
  }
  if (retain) return (msg.enc3r ??= encodePublish(msg.topic, msg.payload, null, 0, true, false, 0, false, NO_EXTRAS));
  return (msg.enc3 ??= encodePublish(msg.topic, msg.payload, null, 0, false, false, 0, false, NO_EXTRAS));
}
