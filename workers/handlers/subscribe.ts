// SUBSCRIBE → SUBACK (§3.8, §3.9), then retained messages per Retain Handling.
import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import type { Connection } from '../net/connection';
import { encode } from '../protocol/control-codec';
import { RC } from '../protocol/constants';
import { validTopicFilter, parseSharedFilter, rawFiltersWellFormed, hasRepeatedProperty } from '../protocol/validate';
import { OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED } from '../../src/shared/topic-index';
import { readVarint } from '../protocol/varint';
import type { HandlerDeps } from './deps';
import { C_SUBSCRIPTION_QUOTA } from '../../src/shared/counters';

const vi = { len: 0 };

/** Start of the SUBSCRIBE / UNSUBSCRIBE payload (after packet id and v5 properties). */
function payloadStart(c: Connection, buf: Buffer, start: number, end: number): number {
  let p = start + 2;
  if (c.v5) {
    const n = readVarint(buf, p, end, vi);
    if (n < 0) return -1;
    p += vi.len + n;
  }
  return p;
}

export function handleSubscribe(d: HandlerDeps, c: Connection, p: ISubscribePacket, buf: Buffer, start: number, end: number): void {
  const ps = payloadStart(c, buf, start, end);
  if (ps < 0 || !rawFiltersWellFormed(buf, ps, end, true)) { c.protocolClose(RC.MALFORMED_PACKET); return; }
  // No filter [MQTT-3.8.3-3], packet id 0 [MQTT-2.3.1-1], a repeated or zero Subscription Identifier (§3.8.2.1.2).
  const sid = p.properties?.subscriptionIdentifier as unknown;
  if (p.subscriptions.length === 0 || !p.messageId || hasRepeatedProperty(p.properties) || sid === 0) { c.protocolClose(RC.PROTOCOL_ERROR); return; }
  const s = c.session!;
  const subId = (p.properties?.subscriptionIdentifier as number | undefined) ?? 0;
  const granted: number[] = [];
  const retainedFor: { filter: string; qos: number }[] = [];
  for (const sub of p.subscriptions) {
    const shared = parseSharedFilter(sub.topic);
    if (shared === 'invalid' || (!shared && !validTopicFilter(sub.topic))) {
      granted.push(c.v5 ? RC.TOPIC_FILTER_INVALID : 0x80);
      continue;
    }
    if (shared && sub.nl) { c.protocolClose(RC.PROTOCOL_ERROR); return; } // [MQTT-3.8.3-4]
    // A filter the ACL lets this client read nothing of: 0x87 Not authorized [MQTT5-3.9.3], 0x80
    // Failure on 3.1.1 (§3.9.3); the other filters of the SUBSCRIBE are decided on their own.
    if (c.acl !== null && !c.acl.maySubscribe(shared ? shared.filter : sub.topic)) {
      granted.push(c.v5 ? RC.NOT_AUTHORIZED : 0x80);
      continue;
    }
    // --max-subscriptions: a filter that would be one more than the session may hold is refused,
    // 0x97 Quota exceeded [MQTT5-3.9.3] / 0x80 Failure (§3.9.3); one it holds already is replaced.
    const max = d.config.maxSubscriptions;
    if (max > 0 && s.subs.size >= max && !s.subs.has(sub.topic)) {
      d.count(C_SUBSCRIPTION_QUOTA, 1);
      granted.push(c.v5 ? RC.QUOTA_EXCEEDED : 0x80);
      continue;
    }
    const qos = Math.min(sub.qos, 2);
    const opts = qos | (sub.nl ? OPT_NO_LOCAL : 0) | (sub.rap ? OPT_RETAIN_AS_PUBLISHED : 0);
    const rh = sub.rh ?? 0;
    const isNew = d.subscriptions.subscribe(s, sub.topic, opts, subId, rh);
    c.acl?.subscribed(sub.topic); // whether its deliveries need the ACL check (auth/acl-gate.ts)
    granted.push(qos);
    // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-? / §4.8.2].
    if (!shared && (rh === 0 || (rh === 1 && isNew))) retainedFor.push({ filter: sub.topic, qos });
  }
  const suback = encode({ cmd: 'suback', messageId: p.messageId!, granted }, c.version);
  if (retainedFor.length > 0) s.holdLive(); // live messages wait from now on, not from the SUBACK
  d.store.barrier(() => {
    c.write(suback);
    if (retainedFor.length > 0) s.feedRetained(retainedFor, subId);
  });
}

export function handleUnsubscribe(d: HandlerDeps, c: Connection, p: IUnsubscribePacket, buf: Buffer, start: number, end: number): void {
  const ps = payloadStart(c, buf, start, end);
  if (ps < 0 || !rawFiltersWellFormed(buf, ps, end, false)) { c.protocolClose(RC.MALFORMED_PACKET); return; }
  if (p.unsubscriptions.length === 0 || !p.messageId || hasRepeatedProperty(p.properties)) { c.protocolClose(RC.PROTOCOL_ERROR); return; } // [MQTT-3.10.3-2, MQTT-2.3.1-1]
  const s = c.session!;
  const codes: number[] = [];
  for (const filter of p.unsubscriptions) {
    const removed = d.subscriptions.unsubscribe(s, filter);
    if (removed) c.acl?.unsubscribed(filter);
    codes.push(removed ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
  }
  const unsuback = encode({ cmd: 'unsuback', messageId: p.messageId!, granted: c.v5 ? codes : [] }, c.version);
  d.store.barrier(() => c.write(unsuback));
}
