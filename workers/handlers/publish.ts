// Inbound PUBLISH (workers/README.md, "The path of a PUBLISH", steps 1-2 and 8): fast-path parse, admit (topic, alias,
// expiry, flow control), hand to the router, acknowledge.
import type { Connection } from '../net/connection';
import { Message } from '../protocol/message';
import { parsePublish, PublishFrame, PubError, forwardedProps, encodeAck } from '../protocol/publish-codec';
import { validTopicName } from '../protocol/validate';
import { PUBACK, PUBREC, RC, SERVER_TOPIC_ALIAS_MAX } from '../protocol/constants';
import { C_MSGS_RECEIVED, C_DROPPED_NOT_AUTHORISED, C_PAYLOAD_TOO_LARGE } from '../../src/shared/counters';
import { limitedLog } from '../../src/log/thread';
import type { HandlerDeps } from './deps';

const f = new PublishFrame();

export function handlePublish(d: HandlerDeps, c: Connection, first: number, buf: Buffer, start: number, end: number): void {
  const err = parsePublish(first, buf, start, end, c.v5, f);
  if (err !== PubError.NONE) { c.protocolClose(err === PubError.MALFORMED ? RC.MALFORMED_PACKET : RC.PROTOCOL_ERROR); return; }
  const topic = resolveTopic(c, buf);
  if (!topic) return;
  const s = c.session!;
  d.count(C_MSGS_RECEIVED, 1);
  if (f.qos === 2) {
    // Exactly once: a PUBLISH whose id awaits PUBREL is a resend, not a new message [MQTT-4.3.3-10].
    if (s.inboundQos2.has(f.packetId)) { c.write(encodeAck(PUBREC, f.packetId, 0, c.v5)); return; }
    if (s.inboundQos2.size >= d.config.receiveMaximum) { c.protocolClose(RC.RECEIVE_MAXIMUM_EXCEEDED); return; } // [MQTT-3.3.4-9]
  }
  // Without --acl-file: one field test. With it: the topic as a string (the last one again for a
  // repeat; kept on the message for delivery's checks) and, once seen, one Map lookup.
  let topicStr: string | null = null;
  let denied = false;
  // --max-payload-size: not routed, answered like a denied PUBLISH but with 0x97 Quota exceeded,
  // the PUBACK / PUBREC code for "an implementation or administrative imposed limit has been
  // exceeded" [MQTT5-3.4.2.1] (there is no "payload too large" ack code; 0x95 Packet too large
  // is DISCONNECT's, for --max-packet-size). MQTT 3.1.1 cannot say no: acknowledged and
  // dropped [MQTT-3.3.5-2]. QoS 0 is dropped. Counted either way.
  let refusal: number = RC.NOT_AUTHORIZED;
  const maxPayload = d.config.maxPayloadSize;
  if (maxPayload > 0 && f.end - f.payloadStart > maxPayload) {
    d.count(C_PAYLOAD_TOO_LARGE, 1);
    if (f.qos === 0) return;
    denied = true;
    refusal = RC.QUOTA_EXCEEDED;
  }
  if (!denied && c.acl !== null) {
    topicStr = c.acl.topicOf(topic);
    denied = !c.acl.mayWrite(topicStr);
    if (denied) {
      d.count(C_DROPPED_NOT_AUTHORISED, 1);
      limitedLog().warn('dropped-not-authorised', 'PUBLISH dropped: the ACL does not let this client write the topic', () => ({ clientId: c.clientId, username: c.username, address: c.address(), topic: topicStr }));
      if (f.qos === 0) return;
    }
  }
  if (!denied && d.testHook(c, topic)) return;
  const expiryAt = f.expiryInterval >= 0 ? Date.now() + f.expiryInterval * 1000 : 0;
  const payload = buf.subarray(f.payloadStart, f.end);
  const msg = new Message(topic, payload, f.qos, f.retain, c.v5 ? forwardedProps(buf, f) : null, expiryAt, s.subscriber);
  if (topicStr !== null) msg.knownTopic(topicStr);
  if (denied) {
    // Not routed, only acknowledged, through the router so the acknowledgement keeps the
    // client's order [MQTT-4.6.0-2] (routing/router.ts). MQTT 5 answers 0x87 Not authorized
    // and a QoS 2 flow ends there [MQTT5-4.3.3]; MQTT 3.1.1 has no way to say no: acknowledged
    // as usual and dropped [MQTT-3.3.5-2], a QoS 2 flow going on to PUBREL / PUBCOMP.
    msg.denied = true;
    msg.refusal = refusal;
    if (f.qos === 2 && !c.v5) s.inboundQos2.add(f.packetId);
    d.router.publish(msg, c, f.qos === 1 ? PUBACK : PUBREC, f.packetId);
    return;
  }
  if (f.qos === 2) s.inboundQos2.add(f.packetId);
  // The router acknowledges after routing (and, for persistent subscribers, after the store).
  d.router.publish(msg, c, f.qos === 1 ? PUBACK : f.qos === 2 ? PUBREC : 0, f.packetId);
}

/** The topic bytes, after validation and (v5) inbound Topic Alias resolution [MQTT-3.3.2-8..12]. */
function resolveTopic(c: Connection, buf: Buffer): Buffer | null {
  const tlen = f.topicEnd - f.topicStart;
  if (f.topicAlias !== 0) {
    if (f.topicAlias > SERVER_TOPIC_ALIAS_MAX) { c.protocolClose(RC.TOPIC_ALIAS_INVALID); return null; } // [MQTT-3.3.2-9]
    const aliases = (c.inAliases ??= new Map());
    if (tlen === 0) {
      const known = aliases.get(f.topicAlias);
      if (!known) { c.protocolClose(RC.PROTOCOL_ERROR); return null; }
      return known;
    }
    if (!validTopicName(buf, f.topicStart, f.topicEnd)) { c.protocolClose(RC.TOPIC_NAME_INVALID); return null; }
    const copy = Buffer.from(buf.subarray(f.topicStart, f.topicEnd));
    aliases.set(f.topicAlias, copy);
    return copy;
  }
  if (!validTopicName(buf, f.topicStart, f.topicEnd)) {
    c.protocolClose(c.v5 ? RC.TOPIC_NAME_INVALID : RC.MALFORMED_PACKET);
    return null;
  }
  return buf.subarray(f.topicStart, f.topicEnd);
}
