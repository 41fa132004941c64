// CONNECT → CONNACK (§3.1, §3.2): version check, client id, keep-alive cap, will, then a
// claim on the client id through the coordinator (takeover happens there), then CONNACK.
import * as crypto from 'node:crypto';
import type { IConnectPacket, IConnackPacket } from 'mqtt-packet';
import { Connection, ConnState } from '../net/connection';
import { parseFrame, encode } from '../protocol/control-codec';
import { RC, V3, SERVER_TOPIC_ALIAS_MAX } from '../protocol/constants';
import { validTopicName, hasRepeatedProperty } from '../protocol/validate';
import { checkConnect } from '../protocol/connect-check';
import { Message, NO_ORIGIN } from '../protocol/message';
import { encodeProps } from '../protocol/properties';
import { NEVER_EXPIRES } from '../session/session';
import type { Will } from '../session/will';
import type { HandlerDeps } from './deps';
import { C_CLUSTER_REFUSED, C_BANNED_REFUSED } from '../../src/shared/counters';
import type { Grant } from '../../src/auth/messages';
import { applyGrantAcl, armExpiry } from '../auth/token-expiry';
import { ClientAcl } from '../auth/client-acl';
import { tlog } from '../../src/log/thread';
import { ClaimRefused } from '../session/lifecycle';

/** Reads protocol name and level from the raw frame, before trusting mqtt-packet with it. */
function peekVersion(buf: Buffer, start: number, end: number): { name: string; level: number } | null {
  if (end - start < 3) return null;
  const nlen = (buf[start] << 8) | buf[start + 1];
  if (start + 2 + nlen + 1 > end) return null;
  return { name: buf.toString('latin1', start + 2, start + 2 + nlen), level: buf[start + 2 + nlen] };
}

export function handleConnect(d: HandlerDeps, c: Connection, first: number, buf: Buffer, frameStart: number, start: number, end: number): void {
  const peek = peekVersion(buf, start, end);
  if (!peek || (first & 0x0f) !== 0) { c.close(); return; }
  const known = (peek.name === 'MQTT' && (peek.level === 4 || peek.level === 5)) || (peek.name === 'MQIsdp' && peek.level === 3);
  if (!known) {
    // Unsupported level: CONNACK 0x01 (v3) / 0x84 (v5), then close [MQTT-3.1.2-2].
    if (peek.name === 'MQTT' || peek.name === 'MQIsdp') {
      c.version = peek.level === 5 ? 5 : 4;
      sendConnack(c, false, peek.level >= 5 ? RC.UNSUPPORTED_PROTOCOL_VERSION : V3.BAD_PROTOCOL, {});
    }
    c.close();
    return;
  }
  c.version = peek.level;
  c.connectFrame = Buffer.from(buf.subarray(frameStart, end));
  const parsed = parseFrame(buf.subarray(frameStart, end), peek.level);
  if (parsed instanceof Error || parsed.cmd !== 'connect' || checkConnect(buf, start, end, peek.level) !== null) {
    if (c.v5) sendConnack(c, false, RC.MALFORMED_PACKET, {});
    c.close();
    return;
  }
  admit(d, c, parsed);
}

function admit(d: HandlerDeps, c: Connection, p: IConnectPacket): void {
  // Fencing during the checks or the claim below needs no second look: the coordinator posts
  // 'cluster-fenced' on the port its 'granted' comes on, so either the grant comes first (the
  // CONNACK goes, then the drop) or the drop does (this connection is closed, the claim ends there).
  if (refusedWhileFenced(d, c)) return;
  const v5 = c.v5;
  const props = p.properties ?? {};
  if (v5 && (hasRepeatedProperty(props) || hasRepeatedProperty(p.will?.properties) || !onlyWillProperties(p.will?.properties) ||
    props.receiveMaximum === 0 || props.maximumPacketSize === 0)) {
    reject(c, RC.PROTOCOL_ERROR, V3.SERVER_UNAVAILABLE); // §3.1.2.11: 0 is not a valid Receive Maximum / Maximum Packet Size
    return;
  }
  if (props.authenticationMethod) { reject(c, RC.BAD_AUTHENTICATION_METHOD, V3.SERVER_UNAVAILABLE); return; }
  let clientId = p.clientId ?? '';
  let assigned = '';
  if (clientId === '') {
    // v3.1.1: an empty id needs Clean Session [MQTT-3.1.3-8]; v5 assigns one [MQTT-3.1.3-6].
    if (!v5 && (!p.clean || c.version === 3)) { reject(c, RC.CLIENT_IDENTIFIER_NOT_VALID, V3.IDENTIFIER_REJECTED); return; }
    clientId = assigned = `fleetmq-${crypto.randomBytes(9).toString('base64url')}`;
  }
  const will = p.will ? buildWill(c, p) : null;
  if (will === undefined) return;
  let keepalive = p.keepalive ?? 0;
  const max = d.config.maxKeepalive;
  let serverKeepAlive = -1;
  if (max < 65535 && (keepalive === 0 || keepalive > max)) {
    if (v5) { keepalive = max; serverKeepAlive = max; }
    else if (keepalive > max) { reject(c, 0, V3.IDENTIFIER_REJECTED); return; }
  }
  c.clientId = clientId;
  c.keepaliveMs = keepalive * 1000;
  c.will = will;
  // Authorization by client id and username, decided before any PUBLISH or SUBSCRIBE of this connection.
  if (d.acl !== null) c.acl = d.acl.forClient(clientId, p.username ?? null);
  if (will) will.writer = { clientId, username: p.username ?? null };
  if (v5) {
    c.clientReceiveMax = props.receiveMaximum ?? 65535;
    c.clientMaxPacket = props.maximumPacketSize ?? 0;
    c.clientAliasMax = props.topicAliasMaximum ?? 0;
  }
  const expiry = v5 ? (props.sessionExpiryInterval ?? 0) : (p.clean ? 0 : NEVER_EXPIRES);
  c.state = ConnState.CONNECTING;
  c.socket.pause();
  // --use-identity-as-username: the client certificate's CN is the username, whatever CONNECT
  // says, and no password is asked (as Mosquitto's use_identity_as_username; auth/auth-gate.ts).
  if (c.identity !== null) { p.username = c.identity; p.password = undefined; }
  c.username = shownUsername(d, p);
  // The banned list (admin/admin.ts): Map lookups plus a short prefix / CIDR list, before any
  // password is hashed. v5 0x8A "banned" [MQTT5-3.2.2.2]; v3 has no such code: 5 "not authorised".
  if (d.banned.match(clientId, c.username, c.socket.remoteAddress) !== null) {
    d.count(C_BANNED_REFUSED, 1);
    reject(c, RC.BANNED, V3.NOT_AUTHORIZED);
    return;
  }
  // Credentials are checked before the client id is claimed: a refused client takes over nothing.
  const gate = d.auth.gate(c, p);
  if (!gate) { claim(d, c, p, clientId, expiry, assigned, serverKeepAlive); return; }
  gate.then((r) => {
    if (c.state === ConnState.CLOSED) return;
    if (r === null) { claim(d, c, p, clientId, expiry, assigned, serverKeepAlive); return; }
    if ('v5' in r) { reject(c, r.v5, r.v3); return; }
    if (granted(d, c, p, r.grant)) claim(d, c, p, clientId, expiry, assigned, serverKeepAlive, r.grant.expiresAt);
  }, () => c.close());
}

/**
 * An allow that came with a grant (HTTP callout or JWT): superuser or the client's own rules
 * decide its ACL from now on. A will on a topic those rules do not let the client write is
 * refused with the CONNECT, 0x87 / 5, as Mosquitto does, rather than dropped when it fires.
 */
function granted(d: HandlerDeps, c: Connection, p: IConnectPacket, grant: Grant): boolean {
  applyGrantAcl(c, grant, p.username ?? null, d.config.aclCacheEntries, d.count);
  if (c.will && c.acl instanceof ClientAcl && !c.acl.mayWrite(c.will.msg.topicString)) {
    reject(c, RC.NOT_AUTHORIZED, V3.NOT_AUTHORIZED);
    return false;
  }
  return true;
}

function claim(d: HandlerDeps, c: Connection, p: IConnectPacket, clientId: string, expiry: number, assigned: string, serverKeepAlive: number, expiresAt = 0): void {
  const v5 = c.v5;
  const props = p.properties ?? {};
  d.sessions.claim(c, clientId, !!p.clean, expiry, (present, err) => {
    if (err !== null) {
      // The cluster could not say who owns the id: "server busy", so the client tries again.
      if (err instanceof ClaimRefused && c.state !== ConnState.CLOSED) reject(c, RC.SERVER_BUSY, V3.SERVER_UNAVAILABLE);
      else { tlog().error('claim failed', { clientId, error: err.message }); c.close(); }
      return;
    }
    if (present === null || c.state === ConnState.CLOSED) return; // moved to the session's worker, or gone
    const ack: IConnackPacket['properties'] = {};
    if (v5) {
      ack.receiveMaximum = d.config.receiveMaximum;
      ack.maximumPacketSize = d.config.maxPacketSize;
      ack.topicAliasMaximum = SERVER_TOPIC_ALIAS_MAX;
      if (assigned) ack.assignedClientIdentifier = assigned;
      if (serverKeepAlive >= 0) ack.serverKeepAlive = serverKeepAlive;
      if (props.requestResponseInformation) ack.responseInformation = `fleetmq/response/${clientId}`;
    }
    c.state = ConnState.CONNECTED;
    c.connectedAt = Date.now();
    tlog().info('client connected', () => ({
      clientId, username: c.username, address: c.address(), transport: c.kind,
      protocol: c.version === 5 ? 'mqtt5' : c.version === 4 ? 'mqtt3.1.1' : 'mqtt3.1', cleanStart: !!p.clean, keepalive: c.keepaliveMs / 1000, sessionPresent: present,
    }));
    sendConnack(c, present, 0, ack);
    if (expiresAt > 0) armExpiry(c, expiresAt, d.count);
    d.sessions.online(c);
    c.resume();
  });
}

/**
 * A fenced node is no cluster member and serves nobody until it rejoins (src/cluster/README.md):
 * "server busy", v5 0x89 [MQTT5-3.2.2.2] / v3 3 "server unavailable" [MQTT-3.2.2.3], so the
 * client tries again, here or on another node. One shared-memory read per CONNECT.
 */
/**
 * The username logs, the admin API and the banned list see. With --jwt-from username the
 * username is the token: a credential, never shown (as the main thread's refusal log does).
 */
function shownUsername(d: HandlerDeps, p: IConnectPacket): string | null {
  if (p.username === undefined) return null;
  return d.config.jwtFrom === 'username' ? '(a token)' : p.username;
}

function refusedWhileFenced(d: HandlerDeps, c: Connection): boolean {
  if (!d.cluster.refusing) return false;
  d.count(C_CLUSTER_REFUSED, 1);
  reject(c, RC.SERVER_BUSY, V3.SERVER_UNAVAILABLE);
  return true;
}

const WILL_PROPERTIES = new Set(['willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType',
  'responseTopic', 'correlationData', 'userProperties']);

/** Only Will Properties may stand in the will's property list (§3.1.3.2). */
function onlyWillProperties(props: object | undefined): boolean {
  return !props || Object.keys(props).every((k) => WILL_PROPERTIES.has(k));
}

function reject(c: Connection, v5Reason: number, v3Code: number): void {
  sendConnack(c, false, c.v5 ? v5Reason : v3Code, {});
  c.close();
}

/** v3.1 / v3.1.1 CONNACK "accepted", without and with Session Present: four fixed bytes [MQTT-3.2.2]. */
const CONNACK_V3_ACCEPTED = [Buffer.from([0x20, 2, 0, 0]), Buffer.from([0x20, 2, 1, 0])];
/**
 * v5 "success" CONNACKs that carry only the broker's limits, by those limits and Session Present:
 * every CONNACK of a connect storm is one of these, encoded once. At most CONNACK_CACHE_MAX
 * (the limits change only on SIGHUP); past it the cache starts over.
 */
const connackCache = new Map<string, Buffer>();
const CONNACK_CACHE_MAX = 16;

function sendConnack(c: Connection, sessionPresent: boolean, code: number, properties: IConnackPacket['properties']): void {
  if (code === 0 && !c.v5) { c.write(CONNACK_V3_ACCEPTED[sessionPresent ? 1 : 0]); return; }
  if (code === 0 && properties && onlyLimits(properties)) {
    const key = `${sessionPresent ? 1 : 0}/${properties.receiveMaximum}/${properties.maximumPacketSize}/${properties.topicAliasMaximum}`;
    let bytes = connackCache.get(key);
    if (bytes === undefined) {
      if (connackCache.size >= CONNACK_CACHE_MAX) connackCache.clear();
      bytes = encode({ cmd: 'connack', sessionPresent, returnCode: 0, reasonCode: 0, properties }, 5);
      connackCache.set(key, bytes);
    }
    c.write(bytes);
    return;
  }
  const packet: IConnackPacket = { cmd: 'connack', sessionPresent, returnCode: code };
  if (c.v5) { packet.reasonCode = code; if (properties && Object.keys(properties).length) packet.properties = properties; }
  c.write(encode(packet, c.version));
}

function onlyLimits(p: NonNullable<IConnackPacket['properties']>): boolean {
  for (const k in p) if (k !== 'receiveMaximum' && k !== 'maximumPacketSize' && k !== 'topicAliasMaximum') return false;
  return true;
}

/** The will from CONNECT; undefined (after rejecting) if its topic is invalid [MQTT-3.1.3-11]. */
function buildWill(c: Connection, p: IConnectPacket): Will | null | undefined {
  const w = p.will!;
  const topic = Buffer.from(w.topic, 'utf8');
  if (!validTopicName(topic, 0, topic.length)) { reject(c, RC.TOPIC_NAME_INVALID, V3.IDENTIFIER_REJECTED); return undefined; }
  const wp = (w.properties ?? {}) as Record<string, unknown>;
  const payload = Buffer.isBuffer(w.payload) ? w.payload : Buffer.from(w.payload ?? '');
  const props = c.v5 ? encodeProps(wp) : null;
  const msg = new Message(topic, Buffer.from(payload), w.qos ?? 0, !!w.retain, props, 0, NO_ORIGIN);
  return {
    msg,
    delay: typeof wp.willDelayInterval === 'number' ? wp.willDelayInterval : 0,
    expiry: typeof wp.messageExpiryInterval === 'number' ? wp.messageExpiryInterval : -1,
  };
}
