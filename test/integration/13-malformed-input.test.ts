// 13: malformed input (never a crash). Thousands of
// random and mutated packets, from a seeded PRNG, over many raw connections (20 at a time).
// Throughout and at the end:
// - the broker stays up: the process is alive and printed no crash line;
// - every bad connection ends closed within a bounded time, no hang:
//   * "definite" cases are complete frames that break a MUST of the spec (first packet not
//     CONNECT, second CONNECT, reserved types and flags, QoS 3, 5-byte remaining length,
//     declared length over the maximum packet size, wildcards / NUL / ill-formed UTF-8 in
//     topics, empty SUBSCRIBE, ...): the broker must close these by itself;
//   * "mutated" cases (bit flips, truncation, bogus lengths, random types and bytes) may
//     happen to be valid or incomplete: the test half-closes its side after writing and the
//     broker must then close the connection;
// - the broker's open-file count returns to where it was (no leaked sockets);
// - well-behaved `mqtt` clients on other connections (one per worker) keep publishing and
//   receiving every message throughout and at the end, and are never disconnected.
// Run with 1 and 3 workers. The seed is printed in every failure; rerun with
// FLEETMQ_FUZZ_SEED=<seed> to reproduce.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { mapLimit, waitUntil, delay, within } from '../helpers/wait';
import { Rng } from '../helpers/rng';
import { fdCount, crashLines } from '../helpers/proc';
import { launchBroker } from '../helpers/broker';
import { connectClient, end } from '../helpers/clients';

const CASES = 4000;
const CONCURRENCY = 20;
const CLOSE_WITHIN_MS = 10000;
const MAX_PACKET = 65536;
const BASE_SEED = process.env.FLEETMQ_FUZZ_SEED ? Number(process.env.FLEETMQ_FUZZ_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;

type V = 4 | 5;
interface Case { label: string; parts: Buffer[]; definite: boolean }
interface Made { label: string; parts: Buffer[]; v?: V }

// ---------------------------------------------------------------------------------------------
// Encoding helpers (raw bytes, so malformed fields can be produced on purpose)

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const str = (s: string | Buffer) => { const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s; return Buffer.concat([u16(b.length), b]); };
const frame = (h: number, body: Buffer) => Buffer.concat([Buffer.from([h]), varint(body.length), body]);
const gen = (p: object, v: V) => mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: v });

function publishFrame(v: V, topic: string | Buffer, payload: Buffer, qos: number, id: number, props: Buffer = Buffer.alloc(0), flags = 0): Buffer {
  const parts: Buffer[] = [str(topic)];
  if (qos > 0) parts.push(u16(id));
  if (v === 5) parts.push(varint(props.length), props);
  parts.push(payload);
  return frame(0x30 | (qos << 1) | flags, Buffer.concat(parts));
}

function subscribeFrame(v: V, id: number, filters: Array<{ topic: string | Buffer; opts: number }>, header = 0x82): Buffer {
  const parts: Buffer[] = [u16(id)];
  if (v === 5) parts.push(Buffer.from([0]));
  for (const f of filters) parts.push(str(f.topic), Buffer.from([f.opts]));
  return frame(header, Buffer.concat(parts));
}

interface ConnectSpec { v: V; clientId: string; flags?: number; keepalive?: number; level?: number; name?: string; props?: Buffer; tail?: Buffer[] }
function connectFrame(c: ConnectSpec): Buffer {
  const parts: Buffer[] = [str(c.name ?? 'MQTT'), Buffer.from([c.level ?? c.v, c.flags ?? 0x02]), u16(c.keepalive ?? 30)];
  if (c.v === 5) { const p = c.props ?? Buffer.alloc(0); parts.push(varint(p.length), p); }
  parts.push(str(c.clientId), ...(c.tail ?? []));
  return frame(0x10, Buffer.concat(parts));
}

const TOPICS = ['fz/a', 'fz/b/c', 'fz/d/e/f', '$SYS/fz', 'fz/é/ü', 'fz'];
const FILTERS = ['fz/#', 'fz/+/c', '#', '+/+', 'fz/a', '$SYS/#', '$share/g/fz/#'];
const BAD_UTF8 = [[0x80], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xfe, 0xfe]];

// ---------------------------------------------------------------------------------------------
// Case generation: all from the seeded PRNG, generated up front, so a seed names a run.

function validConnect(r: Rng, v: V, id: string): Buffer {
  const p: Record<string, unknown> = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId: id, clean: true, keepalive: 30 };
  if (r.chance(0.3)) p.will = { topic: r.pick(TOPICS), payload: r.bytes(r.int(20)), qos: r.int(3), retain: false };
  if (r.chance(0.3)) { p.username = 'u'; p.password = r.bytes(4); }
  if (v === 5 && r.chance(0.4)) p.properties = { sessionExpiryInterval: r.int(10), receiveMaximum: r.range(1, 100), topicAliasMaximum: r.int(5), userProperties: { k: 'v' } };
  return gen(p, v);
}

function validPacket(r: Rng, v: V): Buffer {
  const id = r.range(1, 65535);
  switch (r.int(10)) {
    case 0: case 1: return gen({ cmd: 'publish', topic: r.pick(TOPICS), payload: r.bytes(r.int(60)), qos: 0, dup: false, retain: false }, v);
    case 2: return gen({ cmd: 'publish', topic: r.pick(TOPICS), payload: r.bytes(r.int(60)), qos: r.range(1, 2), messageId: id, dup: false, retain: r.chance(0.1) }, v);
    case 3: return gen({ cmd: 'publish', topic: r.pick(TOPICS), payload: r.bytes(10), qos: 1, messageId: id, dup: false, retain: false, ...(v === 5 ? { properties: { messageExpiryInterval: 60, contentType: 'x', userProperties: { a: 'b' }, correlationData: r.bytes(4) } } : {}) }, v);
    case 4: return gen({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: r.pick(FILTERS), qos: r.int(3) }] }, v);
    case 5: return gen({ cmd: 'unsubscribe', messageId: id, unsubscriptions: [r.pick(FILTERS)] }, v);
    case 6: return gen({ cmd: 'pingreq' }, v);
    case 7: return gen({ cmd: r.pick(['puback', 'pubrec', 'pubcomp']), messageId: id }, v);
    case 8: return gen({ cmd: 'pubrel', messageId: id }, v);
    default: return gen({ cmd: 'publish', topic: r.pick(TOPICS), payload: r.bytes(r.int(300)), qos: 0, dup: false, retain: false }, v);
  }
}

function validStream(r: Rng, v: V, id: string): Buffer {
  const parts = [validConnect(r, v, id)];
  const n = r.range(1, 4);
  for (let i = 0; i < n; i++) parts.push(validPacket(r, v));
  if (r.chance(0.2)) parts.push(gen({ cmd: 'disconnect' }, v));
  return Buffer.concat(parts);
}

/** Offsets of the frames in a well-formed stream. */
function frameOffsets(b: Buffer): number[] {
  const offs: number[] = [];
  let off = 0;
  while (off < b.length) {
    offs.push(off);
    let len = 0; let mul = 1; let i = off + 1;
    for (;;) { const x = b[i++]; len += (x & 0x7f) * mul; mul *= 128; if (!(x & 0x80)) break; }
    off = i + len;
  }
  return offs;
}

/** Builders of complete frames that break a MUST of the spec: the broker must close on its own. */
const DEFINITE: Array<(r: Rng, v: V, id: string) => Made> = [
  (r, v) => ({ label: 'first packet not CONNECT', parts: [validPacket(r, v)] }),
  (r, v, id) => ({ label: 'second CONNECT', parts: [validConnect(r, v, id), validPacket(r, v), validConnect(r, v, id)] }),
  (r, v, id) => ({ label: 'reserved packet type 0', parts: [validConnect(r, v, id), Buffer.from([0x00 | r.int(16), 0x00])] }),
  (r, v, id) => ({ label: v === 4 ? 'reserved packet type 15 (v3.1.1)' : 'AUTH without an authentication method', parts: [validConnect(r, v, id), v === 4 ? Buffer.from([0xf0, 0x00]) : gen({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } }, 5)] }),
  (r, v, id) => {
    const [name, valid, reservedOk] = r.pick([['SUBSCRIBE', gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fz/a', qos: 0 }] }, v), 2],
      ['UNSUBSCRIBE', gen({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['fz/a'] }, v), 2],
      ['PUBREL', gen({ cmd: 'pubrel', messageId: 1 }, v), 2], ['PINGREQ', gen({ cmd: 'pingreq' }, v), 0],
      ['PUBACK', gen({ cmd: 'puback', messageId: 1 }, v), 0], ['DISCONNECT', gen({ cmd: 'disconnect' }, v), 0]] as const);
    const b = Buffer.from(valid);
    let flags = r.int(16); if (flags === reservedOk) flags ^= 1;
    b[0] = (b[0] & 0xf0) | flags;
    return { label: `${name} with reserved flags ${flags.toString(2)}`, parts: [validConnect(r, v, id), b] };
  },
  (r, v, id) => { const b = Buffer.from(validConnect(r, v, id)); b[0] = 0x10 | r.range(1, 15); return { label: 'CONNECT with reserved header flags', parts: [b] }; },
  (r, v, id) => ({ label: 'PUBLISH QoS 3', parts: [validConnect(r, v, id), publishFrame(v, 'fz/a', r.bytes(5), 3, r.range(1, 9))] }),
  (r, v, id) => ({ label: '5-byte remaining length', parts: r.chance(0.5) ? [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00])] : [validConnect(r, v, id), Buffer.concat([Buffer.from([r.pick([0x30, 0x82, 0xc0, 0x32]), 0x80 | r.int(128), 0x80 | r.int(128), 0x80 | r.int(128), 0x80 | r.int(128), r.int(128)]), r.bytes(10)])] }),
  (r, v, id) => ({ label: 'declared length over --max-packet-size', parts: r.chance(0.3) ? [Buffer.concat([Buffer.from([0x10]), varint(r.range(MAX_PACKET * 2, 268435455)), r.bytes(20)])] : [validConnect(r, v, id), Buffer.concat([Buffer.from([0x30]), varint(r.range(MAX_PACKET * 2, 268435455)), r.bytes(r.int(100))])] }),
  (r, v, id) => ({ label: 'complete PUBLISH over --max-packet-size', parts: [validConnect(r, v, id), publishFrame(v, 'fz/big', Buffer.alloc(MAX_PACKET + r.range(1, 5000), 0x61), 0, 0)] }),
  (r, v, id) => ({ label: 'wildcard in PUBLISH topic', parts: [validConnect(r, v, id), publishFrame(v, r.pick(['fz/+', '#', 'fz/#', '+', 'fz/b+', 'x/#/y', '+/+']), r.bytes(5), r.int(3), r.range(1, 9))] }),
  (r, v, id) => ({ label: 'NUL in PUBLISH topic', parts: [validConnect(r, v, id), publishFrame(v, r.pick(['fz/\u0000', '\u0000', 'a\u0000b']), r.bytes(5), r.int(2), 7)] }),
  (r, v, id) => ({ label: 'ill-formed UTF-8 in PUBLISH topic', parts: [validConnect(r, v, id), publishFrame(v, Buffer.concat([Buffer.from('fz/'), Buffer.from(r.pick(BAD_UTF8))]), r.bytes(5), r.int(2), 7)] }),
  (r, v, id) => ({ label: 'ill-formed UTF-8 or NUL in SUBSCRIBE filter', parts: [validConnect(r, v, id), subscribeFrame(v, 3, [{ topic: r.chance(0.5) ? Buffer.concat([Buffer.from('fz/'), Buffer.from(r.pick(BAD_UTF8))]) : 'fz/\u0000/#', opts: 0 }])] }),
  (r, v, id) => ({ label: 'ill-formed UTF-8 in CONNECT client id', parts: [rawConnectWithIdBytes(v, Buffer.concat([Buffer.from(id), Buffer.from(r.pick(BAD_UTF8))]))] }),
  (r, v, id) => ({ label: 'SUBSCRIBE without topic filters', parts: [validConnect(r, v, id), subscribeFrame(v, r.range(1, 99), [])] }),
  (r, v, id) => ({ label: 'UNSUBSCRIBE without topic filters', parts: [validConnect(r, v, id), frame(0xa2, Buffer.concat([u16(r.range(1, 99)), v === 5 ? Buffer.from([0]) : Buffer.alloc(0)]))] }),
  (r, v, id) => ({ label: 'SUBSCRIBE with QoS 3 / reserved option bits', parts: [validConnect(r, v, id), subscribeFrame(v, 5, [{ topic: 'fz/a', opts: r.chance(0.5) ? 0x03 : v === 4 ? (r.range(1, 63) << 2) | r.int(3) : (r.range(1, 3) << 6) | r.int(3) }])] }),
  (r, v, id) => ({ label: 'SUBSCRIBE with packet id 0', parts: [validConnect(r, v, id), subscribeFrame(v, 0, [{ topic: 'fz/a', opts: 0 }])] }),
  (r, v, id) => ({ label: 'PUBLISH QoS>0 with packet id 0', parts: [validConnect(r, v, id), publishFrame(v, 'fz/a', r.bytes(4), r.range(1, 2), 0)] }),
  (r, v, id) => ({ label: 'CONNECT reserved flag bit set', parts: [connectFrame({ v, clientId: id, flags: 0x03 })] }),
  (r, v, id) => ({ label: 'CONNECT unsupported protocol level', parts: [connectFrame({ v, clientId: id, level: r.pick([0, 1, 2, 6, 7, 255]) })] }),
  (r, v, id) => {
    const b = Buffer.from(connectFrame({ v, clientId: id }));
    const at = 2 + 10 + (v === 5 ? 1 : 0); // client id length field
    b.writeUInt16BE(r.range(b.length, 65535), at);
    return { label: 'CONNECT client id length past the end', parts: [b] };
  },
  (r, v, id) => ({ label: 'CONNECT will QoS 3', parts: [connectFrame({ v, clientId: id, flags: 0x02 | 0x04 | 0x18, tail: [...(v === 5 ? [Buffer.from([0])] : []), str('fz/will'), str('w')] })] }),
  (r, v, id) => ({ label: 'CONNECT will QoS set without will flag', parts: [connectFrame({ v, clientId: id, flags: 0x02 | (r.range(1, 2) << 3) })] }),
  (r, _v, id) => ({ label: 'CONNECT password without user name', v: 4, parts: [connectFrame({ v: 4, clientId: id, flags: 0x42, tail: [str('pw')] })] }),
  (r, _v) => ({ label: 'empty client id without clean session', v: 4, parts: [connectFrame({ v: 4, clientId: '', flags: 0x00 })] }),
  (r, _v, id) => ({ label: 'CONNECT unknown property', v: 5, parts: [connectFrame({ v: 5, clientId: id, props: Buffer.from([r.pick([0x00, 0x04, 0x7f, 0xff]), 0x00]) })] }),
  (r, _v, id) => ({ label: 'CONNECT Receive Maximum 0', v: 5, parts: [connectFrame({ v: 5, clientId: id, props: Buffer.from([0x21, 0x00, 0x00]) })] }),
  (r, _v, id) => ({ label: 'CONNECT duplicate Session Expiry Interval', v: 5, parts: [connectFrame({ v: 5, clientId: id, props: Buffer.from([0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]) })] }),
  (r, _v, id) => ({ label: 'PUBLISH topic alias 0', v: 5, parts: [validConnect(r, 5, id), publishFrame(5, 'fz/a', r.bytes(3), 0, 0, Buffer.from([0x23, 0x00, 0x00]))] }),
  (r, v, id) => ({ label: 'PUBLISH with empty topic (and no alias)', parts: [validConnect(r, v, id), publishFrame(v, '', r.bytes(3), 0, 0)] }),
  (r, v, id) => ({ label: 'server-only packet from a client', parts: [validConnect(r, v, id), r.pick([Buffer.from([0x20, 0x02, 0x00, 0x00]), Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]), Buffer.from([0xb0, 0x02, 0x00, 0x01]), Buffer.from([0xd0, 0x00])])] }),
  (r, v, id) => ({ label: 'PUBLISH topic length past the end', parts: [validConnect(r, v, id), frame(0x30, Buffer.concat([u16(r.range(10, 65535)), Buffer.from('fz/a')]))] }),
  (r, v, id) => ({ label: 'PUBLISH QoS 1 too short for a packet id', parts: [validConnect(r, v, id), frame(0x32, Buffer.concat([str('a'), Buffer.from([0x01])]))] }),
];

function rawConnectWithIdBytes(v: V, idBytes: Buffer): Buffer {
  const parts: Buffer[] = [str('MQTT'), Buffer.from([v, 0x02]), u16(30)];
  if (v === 5) parts.push(Buffer.from([0]));
  parts.push(str(idBytes));
  return frame(0x10, Buffer.concat(parts));
}

/** Mutations of valid streams: may be valid, invalid or incomplete; the test half-closes after writing. */
const MUTATED: Array<(r: Rng, v: V, id: string) => Made> = [
  (r, v, id) => { const b = Buffer.from(validStream(r, v, id)); const n = r.range(1, 8); for (let i = 0; i < n; i++) { const k = r.int(b.length); b[k] ^= 1 << r.int(8); } return { label: `${n} bit flip(s)`, parts: [b] }; },
  (r, v, id) => { const b = validStream(r, v, id); return { label: 'truncated', parts: [b.subarray(0, r.int(b.length))] }; },
  (r) => ({ label: 'random bytes', parts: [r.bytes(r.range(1, 300))] }),
  (r, v, id) => ({ label: 'random bytes after CONNECT', parts: [validConnect(r, v, id), r.bytes(r.range(1, 300))] }),
  (r, v, id) => { const b = Buffer.from(validStream(r, v, id)); const offs = frameOffsets(b); const o = r.pick(offs); b[o] = (r.int(16) << 4) | (b[o] & 0x0f); return { label: 'random packet type', parts: [b] }; },
  (r, v, id) => { const b = Buffer.from(validStream(r, v, id)); const offs = frameOffsets(b); const o = r.pick(offs); b[o] = (b[o] & 0xf0) | r.int(16); return { label: 'random header flags', parts: [b] }; },
  (r, v, id) => {
    // Replace one frame's remaining length by a random (possibly huge, possibly non-minimal) varint.
    const b = validStream(r, v, id); const offs = frameOffsets(b); const k = r.int(offs.length); const o = offs[k];
    let i = o + 1; while (b[i] & 0x80) i++;
    const bogus = r.chance(0.3) ? Buffer.from([0x80 | r.int(128), 0x80 | r.int(128), 0x80, r.int(128)]) : varint(r.chance(0.5) ? r.int(200) : r.int(268435456));
    return { label: 'bogus remaining length', parts: [Buffer.concat([b.subarray(0, o + 1), bogus, b.subarray(i + 1)])] };
  },
  (r, v, id) => { const b = validStream(r, v, id); const at = r.int(b.length); return { label: 'bytes inserted', parts: [Buffer.concat([b.subarray(0, at), r.bytes(r.range(1, 8)), b.subarray(at)])] }; },
  (r, v, id) => { const b = validStream(r, v, id); const at = r.int(b.length); return { label: 'bytes deleted', parts: [Buffer.concat([b.subarray(0, at), b.subarray(at + r.range(1, 8))])] }; },
  (r, v, id) => { const b = validStream(r, v, id); const offs = frameOffsets(b); const o = r.pick(offs); return { label: 'frame repeated', parts: [b, b.subarray(o)] }; },
  (r, v, id) => ({ label: 'CONNECT with a wrong protocol name', parts: [connectFrame({ v, clientId: id, name: r.pick(['MQTX', 'MQIsdp', '', 'mqtt', 'MQTTMQTT']) }), validPacket(r, v)] }),
  (r, v, id) => ({ label: 'SUBSCRIBE with a misplaced wildcard', parts: [validConnect(r, v, id), subscribeFrame(v, 9, [{ topic: r.pick(['fz/#/a', 'fz+', 'fz/a#', '#/x', '']), opts: 0 }])] }),
  (r, v, id) => ({ label: 'valid stream', parts: [validStream(r, v, id)] }),
];

function makeCases(seed: number): Case[] {
  const r = new Rng(seed);
  const cases: Case[] = [];
  for (let i = 0; i < CASES; i++) {
    const v: V = r.chance(0.5) ? 5 : 4;
    const id = `fz-${seed.toString(36)}-${i}`;
    const definite = r.chance(0.5);
    const made = definite ? r.pick(DEFINITE)(r, v, id) : r.pick(MUTATED)(r, v, id);
    // Split the bytes at random points so framing across reads is exercised too.
    const all = Buffer.concat(made.parts.filter((p) => p.length > 0));
    const parts: Buffer[] = [];
    let off = 0;
    const pieces = r.range(1, 3);
    for (let k = 1; k < pieces && off < all.length; k++) { const cut = off + r.int(all.length - off); parts.push(all.subarray(off, cut)); off = cut; }
    parts.push(all.subarray(off));
    cases.push({ label: `v${(made.v ?? v) === 4 ? '3.1.1' : '5'} ${made.label}`, parts: parts.filter((p) => p.length > 0), definite });
  }
  return cases;
}

/** Runs one case on its own connection; resolves to a failure description or null. */
function runCase(port: number, c: Case, index: number, seed: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let finished = false;
    const describe = (why: string) => `case ${index} (${c.label}, ${c.definite ? 'must be closed by the broker' : 'half-closed by the test'}): ${why}; bytes ${Buffer.concat(c.parts).subarray(0, 48).toString('hex')}; seed ${seed}`;
    const timer = setTimeout(() => {
      if (finished) return;
      finished = true;
      s.destroy();
      resolve(describe(`connection still open ${CLOSE_WITHIN_MS} ms after the ${c.definite ? 'bad packet' : 'half-close'}`));
    }, CLOSE_WITHIN_MS);
    s.on('data', () => { /* CONNACK, DISCONNECT, deliveries: read and ignore */ });
    s.on('error', () => { /* EPIPE / ECONNRESET once the broker closed: 'close' follows */ });
    s.on('close', () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(null);
    });
    s.on('connect', async () => {
      for (const p of c.parts) {
        if (s.destroyed) return;
        s.write(p);
        await new Promise((r) => setImmediate(r));
      }
      if (!c.definite && !s.destroyed) s.end();
    });
  });
}

/** Good clients: each publishes one QoS 1 message per round; every one must receive all. */
class GoodClients {
  readonly events: string[] = [];
  rounds = 0;
  private received: Array<Set<string>> = [];
  constructor(readonly clients: mqtt.MqttClient[], readonly topic: string) {
    clients.forEach((c, i) => {
      this.received.push(new Set());
      c.on('message', (_t, payload) => this.received[i].add(payload.toString()));
      for (const ev of ['close', 'offline', 'error', 'disconnect'] as const) {
        c.on(ev as 'close', (...args: unknown[]) => this.events.push(`client ${i}: ${ev} ${args.map((a) => (a instanceof Error ? a.message : JSON.stringify((a as { reasonCode?: number })?.reasonCode ?? ''))).join(' ')}`));
      }
    });
  }
  async round(): Promise<void> {
    const tag = `r${this.rounds}`;
    // Bounded: mqtt.js may never settle a publish on a connection that went away.
    await within(Promise.all(this.clients.map((c, i) => c.publishAsync(`${this.topic}/${i}`, `${tag}:${i}`, { qos: 1 }))), 15000, `PUBACKs for good-client round ${tag}`);
    const want = this.clients.map((_, i) => `${tag}:${i}`);
    await waitUntil(() => this.received.every((set) => want.every((w) => set.has(w))), `every good client to receive round ${tag}`, 15000);
    this.rounds++;
  }
}

for (const workers of [1, 3]) {
  describe(`malformed input with --workers ${workers}`, () => {
    test(`${CASES} random and mutated packet streams, ${CONCURRENCY} connections at a time`, { timeout: 15 * 60000 }, async (t) => {
      const seed = (BASE_SEED + workers) >>> 0;
      t.diagnostic(`seed ${seed} (reproduce with FLEETMQ_FUZZ_SEED=${BASE_SEED})`);
      const cases = makeCases(seed);
      const b = await launchBroker(workers, ['--max-packet-size', String(MAX_PACKET)]);
      const clients: mqtt.MqttClient[] = [];
      try {
        // One good client per worker (sequential connects: least-loaded placement spreads them),
        // so a worker that crashes would take a good client down with it.
        for (let i = 0; i < workers; i++) {
          clients.push((await connectClient(b.port, { protocolVersion: i % 2 ? 4 : 5, clientId: `good-${seed}-${i}`, keepalive: 30 })).client);
        }
        const topic = `good/${seed}`;
        await Promise.all(clients.map((c) => c.subscribeAsync(`${topic}/#`, { qos: 1 })));
        const good = new GoodClients(clients, topic);
        await good.round();
        await delay(100);
        const fdsBefore = fdCount(b.proc.pid!);

        let fuzzing = true;
        let heartbeatError: Error | undefined;
        const heartbeat = (async () => { while (fuzzing) await good.round(); })().catch((err: Error) => { heartbeatError = err; });
        let failures: string[];
        try {
          failures = (await mapLimit(cases, CONCURRENCY, (c, i) => runCase(b.port, c, i, seed))).filter((f): f is string => f !== null);
        } finally {
          fuzzing = false;
        }
        await heartbeat;
        const roundsDuringFuzz = good.rounds;
        let finalError: Error | undefined;
        if (!heartbeatError) await good.round().catch((err: Error) => { finalError = err; });

        // Collect every problem, so one run gives the whole diagnosis.
        const problems: string[] = [];
        if (!b.alive()) problems.push(`the broker process exited (${JSON.stringify(await b.exited)})`);
        const crashes = crashLines(b.output());
        if (crashes.length) problems.push(`crash lines in the broker output:\n  ${crashes.slice(0, 10).join('\n  ')}`);
        // A Node warning caused by client input (e.g. TimeoutOverflowWarning: a client-supplied
        // interval overflowed a timer, which Node then fires after 1 ms) is a bug too.
        const warnings = b.output().split('\n').filter((l) => /Warning:/.test(l));
        if (warnings.length) problems.push(`Node warnings in the broker output:\n  ${[...new Set(warnings)].slice(0, 5).join('\n  ')}`);
        if (heartbeatError) problems.push(`good clients stopped working during the run after ${roundsDuringFuzz} round(s): ${heartbeatError.message}`);
        if (finalError) problems.push(`good clients do not work after the run: ${finalError.message}`);
        if (good.events.length) problems.push(`good clients were disturbed: ${good.events.join('; ')}`);
        if (failures.length) problems.push(`${failures.length} of ${CASES} bad connections not closed:\n  ${failures.slice(0, 15).join('\n  ')}`);
        if (b.alive()) {
          await waitUntil(() => fdCount(b.proc.pid!) <= fdsBefore + 5, 'fds', 15000, 100)
            .catch(() => problems.push(`the broker's open files did not return to ${fdsBefore} (+5): ${fdCount(b.proc.pid!)} (leaked sockets?)`));
        }
        t.diagnostic(`good-client rounds during the run: ${roundsDuringFuzz}`);
        assert.deepEqual(problems, [], `seed ${seed} (FLEETMQ_FUZZ_SEED=${BASE_SEED}), --workers ${workers}:\n${problems.join('\n')}\n--- broker output (tail) ---\n${b.output().slice(-3000)}`);
      } finally {
        await Promise.all(clients.map((c) => end(c, {}, true)));
        await b.kill();
      }
    });
  });
}
