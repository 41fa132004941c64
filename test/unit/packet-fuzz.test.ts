// Fuzz-style test of what faces the network on the JS side (STYLE.md 13): every packet of the
// shared fixture table (test/fixtures/packets.ts) is mutated deterministically (bit flips,
// interesting bytes, truncations, remaining-length and string-length changes, insertions,
// splices of two packets) and fed to the functions the broker runs on client bytes: framing
// (readVarint, as the reader splits frames), the PUBLISH fast path (parsePublish,
// forwardedProps), mqtt-packet behind parseFrame for the other packets, checkConnect and the
// validator. None may throw; each must decode or report an error, and what it decodes must
// stay inside the frame. goodString is also checked against an independent reference decoder.
//
// The PRNG seed is fixed, so a failure reproduces; FLEETMQ_FUZZ_SEED=<n> explores another
// sequence (FLEETMQ_FUZZ_ROUNDS=<n> runs more mutations per packet). Every failure message
// names the seed, the table entry, the mutation and the input bytes.
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqttPacket from 'mqtt-packet';
import { PACKETS, TOPIC_NAMES, TOPIC_FILTERS } from '../fixtures/packets';
import { writeCorpus } from '../fixtures/write-corpus';
import { MATCH_CASES } from '../native/topic-cases';
import { splitFrames, FrameBounds } from '../helpers/frames';
import { Rng } from '../helpers/rng';
import { readVarint } from '../../workers/protocol/varint';
import { parsePublish, PublishFrame, PubError, forwardedProps } from '../../workers/protocol/publish-codec';
import { parseFrame } from '../../workers/protocol/control-codec';
import { checkConnect } from '../../workers/protocol/connect-check';
import { validTopicName, goodString, rawFiltersWellFormed, validTopicFilter, parseSharedFilter } from '../../workers/protocol/validate';

const SEED = Number(process.env.FLEETMQ_FUZZ_SEED ?? 0x5eed);
/** Mutated inputs per table entry: ~170 entries x 60 stays well under a few seconds. */
const ROUNDS = Number(process.env.FLEETMQ_FUZZ_ROUNDS ?? 60);
const MAX_VARINT = 268_435_455;

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function wellFormedNoNul(b: Buffer): boolean {
  try { return !fatal.decode(b).includes('\u0000'); } catch { return false; }
}

// ---------------------------------------------------------------------------------------
// Mutations. Each returns a new buffer and says what it did (for the failure message).

type Mutation = (r: Rng, b: Buffer, other: Buffer) => { bytes: Buffer; what: string };

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x23, 0x2b, 0x2f, 0xc0, 0xed, 0xef, 0xf4];

/** Where the remaining length of the first frame starts and how many bytes it takes (1 if unreadable). */
function lengthField(b: Buffer): { at: number; len: number } {
  const vi = { len: 1 };
  return readVarint(b, 1, b.length, vi) >= 0 ? { at: 1, len: vi.len } : { at: 1, len: 1 };
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  do { let d = n % 128; n = Math.floor(n / 128); if (n > 0) d |= 0x80; out.push(d); } while (n > 0);
  return out;
}

const MUTATIONS: Array<[string, Mutation]> = [
  ['bit flips', (r, b) => {
    const c = Buffer.from(b);
    const n = r.range(1, 3);
    const at: number[] = [];
    for (let i = 0; i < n && c.length; i++) { const p = r.int(c.length); c[p] ^= 1 << r.int(8); at.push(p); }
    return { bytes: c, what: `flip bits at ${at.join(',')}` };
  }],
  ['interesting byte', (r, b) => {
    const c = Buffer.from(b);
    if (!c.length) return { bytes: c, what: 'empty' };
    const p = r.int(c.length);
    c[p] = r.pick(INTERESTING);
    return { bytes: c, what: `byte ${p} := 0x${c[p].toString(16)}` };
  }],
  ['truncation', (r, b) => {
    const n = r.int(b.length);
    return { bytes: Buffer.from(b.subarray(0, n)), what: `truncate to ${n}` };
  }],
  ['remaining length', (r, b) => {
    if (b.length < 2) return { bytes: Buffer.from(b), what: 'too short' };
    const { at, len } = lengthField(b);
    const cur = readVarint(b, 1, b.length, { len: 0 });
    const choices = [0, 1, Math.max(0, cur - 1), cur + 1, cur + r.range(2, 300), 127, 128, 16383, 16384, MAX_VARINT];
    const v = r.pick(choices);
    // Sometimes the varint itself is malformed: 5 bytes, or a non-minimal encoding.
    const enc = r.chance(0.15) ? [0xff, 0xff, 0xff, 0xff, 0x7f] : r.chance(0.15) ? [...encodeVarint(v).map((d) => d | 0x80), 0x00].slice(0, 4) : encodeVarint(v);
    return { bytes: Buffer.concat([b.subarray(0, at), Buffer.from(enc), b.subarray(at + len)]), what: `remaining length := ${v} as [${enc.map((d) => d.toString(16)).join(' ')}]` };
  }],
  ['string length', (r, b) => {
    // The first two-byte length after the fixed header (topic, protocol name or packet id).
    const { at, len } = lengthField(b);
    const p = at + len;
    if (p + 2 > b.length) return { bytes: Buffer.from(b), what: 'no string length' };
    const c = Buffer.from(b);
    const cur = c.readUInt16BE(p);
    const v = r.pick([0, 1, Math.max(0, cur - 1), cur + 1, cur + r.range(2, 64), 0xffff]) & 0xffff;
    c.writeUInt16BE(v, p);
    return { bytes: c, what: `16-bit length at ${p} := ${v}` };
  }],
  ['insertion', (r, b) => {
    const p = r.int(b.length + 1);
    const ins = r.bytes(r.range(1, 8));
    return { bytes: Buffer.concat([b.subarray(0, p), ins, b.subarray(p)]), what: `insert ${ins.toString('hex')} at ${p}` };
  }],
  ['deletion', (r, b) => {
    if (b.length < 2) return { bytes: Buffer.from(b), what: 'too short' };
    const p = r.int(b.length);
    const n = r.range(1, Math.min(8, b.length - p));
    return { bytes: Buffer.concat([b.subarray(0, p), b.subarray(p + n)]), what: `delete ${n} at ${p}` };
  }],
  ['splice', (r, b, other) => {
    const p = r.int(b.length + 1);
    return { bytes: Buffer.concat([b.subarray(0, p), other]), what: `cut at ${p}, append another table packet` };
  }],
];

// ---------------------------------------------------------------------------------------
// What the broker runs on client bytes, with the properties each must keep.

const frame = new PublishFrame();

function exercisePublish(buf: Buffer, fr: FrameBounds, v5: boolean): void {
  const err = parsePublish(fr.first, buf, fr.start, fr.end, v5, frame);
  assert.ok(err === PubError.NONE || err === PubError.MALFORMED || err === PubError.PROTOCOL, `parsePublish returned ${err}`);
  if (err !== PubError.NONE) return;
  const f = frame;
  assert.ok(f.qos >= 0 && f.qos <= 2, `qos ${f.qos}`);
  assert.equal(f.topicStart, fr.start + 2, 'the topic follows its length');
  assert.ok(f.topicEnd >= f.topicStart && f.topicEnd <= fr.end, `topic [${f.topicStart}, ${f.topicEnd}) outside the frame ending at ${fr.end}`);
  if (f.qos > 0) assert.ok(f.packetId >= 1 && f.packetId <= 0xffff, `packet id ${f.packetId} for QoS ${f.qos}`);
  assert.ok(f.propsStart <= f.propsEnd && f.propsEnd <= fr.end, `properties [${f.propsStart}, ${f.propsEnd}) outside the frame`);
  assert.ok(f.payloadStart >= f.topicEnd && f.payloadStart <= fr.end, `payload start ${f.payloadStart} outside the frame`);
  assert.equal(f.end, fr.end);
  const topicOk = validTopicName(buf, f.topicStart, f.topicEnd);
  assert.equal(typeof topicOk, 'boolean');
  const fwd = forwardedProps(buf, f);
  if (fwd !== null) {
    assert.ok(Buffer.isBuffer(fwd), 'forwardedProps returns a Buffer or null');
    assert.ok(fwd.length <= f.propsEnd - f.propsStart, 'forwarded properties are never longer than the client\'s');
  }
  // What both decoders accept, they read alike (the fast path mirrors mqtt-packet, publish-codec.test.ts).
  if (topicOk && f.topicAlias === 0) {
    const ref = decodeWithMqttPacket(buf.subarray(fr.frameStart, fr.end), v5 ? 5 : 4);
    if (ref && ref.cmd === 'publish') {
      assert.equal(buf.toString('utf8', f.topicStart, f.topicEnd), ref.topic, 'topic');
      assert.equal(f.qos, ref.qos, 'qos');
      if (f.qos > 0) assert.equal(f.packetId, ref.messageId, 'packet id');
      assert.ok(buf.subarray(f.payloadStart, fr.end).equals(Buffer.from(ref.payload as Buffer)), 'payload');
    }
  }
}

function decodeWithMqttPacket(bytes: Buffer, protocolVersion: 4 | 5): mqttPacket.IPublishPacket | null {
  const p = mqttPacket.parser({ protocolVersion });
  let out: mqttPacket.Packet | null = null;
  let failed = false;
  p.on('packet', (pk) => { out ??= pk; });
  p.on('error', () => { failed = true; });
  try { p.parse(bytes); } catch { failed = true; }
  return failed ? null : out;
}

function exerciseControl(buf: Buffer, fr: FrameBounds, version: 4 | 5): void {
  const type = fr.first >> 4;
  const bytes = buf.subarray(fr.frameStart, fr.end);
  if (type === 1) {
    // As workers/handlers/connect.ts: the protocol level is peeked first, parseFrame decodes
    // with it, and checkConnect runs on what mqtt-packet let through.
    const nlen = fr.end - fr.start >= 2 ? (buf[fr.start] << 8) | buf[fr.start + 1] : -1;
    if (nlen < 0 || fr.start + 2 + nlen + 1 > fr.end) return;
    const level = buf[fr.start + 2 + nlen];
    if (level < 3 || level > 5) return;
    const p = parseFrame(bytes, level);
    assert.ok(p instanceof Error || typeof p.cmd === 'string', 'parseFrame returns a packet or an Error');
    if (p instanceof Error || p.cmd !== 'connect') return;
    const why = checkConnect(buf, fr.start, fr.end, level);
    assert.ok(why === null || typeof why === 'string', `checkConnect returned ${String(why)}`);
    return;
  }
  const p = parseFrame(bytes, version);
  assert.ok(p instanceof Error || typeof p.cmd === 'string', 'parseFrame returns a packet or an Error');
  if (type !== 8 && type !== 10) return;
  // SUBSCRIBE / UNSUBSCRIBE: the raw filter check, then (if mqtt-packet decoded them) the filters.
  let ps = fr.start + 2;
  if (version === 5) {
    const vi = { len: 0 };
    const n = readVarint(buf, ps, fr.end, vi);
    ps = n < 0 ? -1 : ps + vi.len + n;
  }
  if (ps < 0 || ps > fr.end) return;
  const wellFormed = rawFiltersWellFormed(buf, ps, fr.end, type === 8);
  assert.equal(typeof wellFormed, 'boolean');
  if (!wellFormed || p instanceof Error) return;
  const filters = p.cmd === 'subscribe' ? p.subscriptions.map((s) => s.topic) : p.cmd === 'unsubscribe' ? p.unsubscriptions : [];
  for (const t of filters) {
    const shared = parseSharedFilter(t);
    assert.ok(shared === null || shared === 'invalid' || (typeof shared.group === 'string' && validTopicFilter(shared.filter)), `parseSharedFilter(${JSON.stringify(t)})`);
    assert.equal(typeof validTopicFilter(t), 'boolean');
  }
}

/** Everything the broker would run on `buf` as bytes from a client of `version`. */
function exercise(buf: Buffer, version: 4 | 5): void {
  const vi = { len: 0 };
  const n = readVarint(buf, 1, buf.length, vi);
  assert.ok(n === -1 || n === -2 || (Number.isInteger(n) && n >= 0 && n <= MAX_VARINT && vi.len >= 1 && vi.len <= 4), `readVarint returned ${n} (${vi.len} bytes)`);
  const { frames, rest } = splitFrames(buf);
  assert.ok(['end', 'partial', 'malformed'].includes(rest));
  let pos = 0;
  for (const fr of frames) {
    assert.ok(fr.frameStart === pos && fr.start > fr.frameStart && fr.end >= fr.start && fr.end <= buf.length, `frame bounds ${JSON.stringify(fr)}`);
    pos = fr.end;
    if (fr.first >> 4 === 3) exercisePublish(buf, fr, version === 5);
    else exerciseControl(buf, fr, version);
  }
  // The string checks on the whole input: goodString must agree with the reference decoder.
  assert.equal(goodString(buf, 0, buf.length), wellFormedNoNul(buf), 'goodString vs the WHATWG fatal decoder');
  assert.equal(typeof validTopicName(buf, 0, buf.length), 'boolean');
}

describe(`packet fuzz (seed ${SEED}, ${ROUNDS} mutations per table packet)`, () => {
  it('the unmutated table packets go through every decoder without throwing', () => {
    for (const c of PACKETS) {
      const v = c.version === 5 ? 5 : 4;
      try { exercise(c.bytes, v); } catch (err) {
        throw new Error(`table packet "${c.name}" (${c.bytes.toString('hex')}): ${(err as Error).message}`);
      }
    }
  });

  it('mutated table packets: no decoder throws, each decodes or reports an error, nothing reads outside its frame', () => {
    const r = new Rng(SEED);
    let inputs = 0;
    for (const c of PACKETS) {
      const v = c.version === 5 ? 5 : 4;
      for (let i = 0; i < ROUNDS; i++) {
        const [kind, mutate] = r.pick(MUTATIONS);
        const other = r.pick(PACKETS).bytes;
        // Sometimes stack two mutations, so a length change can meet a truncation.
        let m = mutate(r, c.bytes, other);
        if (r.chance(0.25)) { const [k2, m2] = r.pick(MUTATIONS); const again = m2(r, m.bytes, other); m = { bytes: again.bytes, what: `${m.what}; ${k2}: ${again.what}` }; }
        inputs++;
        try { exercise(m.bytes, v); } catch (err) {
          throw new Error(`seed ${SEED}, "${c.name}" round ${i}, ${kind}: ${m.what}\ninput: ${m.bytes.toString('hex')}\n${(err as Error).stack}`);
        }
      }
    }
    assert.equal(inputs, PACKETS.length * ROUNDS);
  });

  it('mutated topic names and filters: the validator never throws and goodString agrees with the reference', () => {
    const r = new Rng(SEED ^ 0x7091c);
    for (const b of [...TOPIC_NAMES.map((t) => t.bytes), ...TOPIC_FILTERS.map((f) => f.bytes)]) {
      for (let i = 0; i < ROUNDS; i++) {
        const [kind, mutate] = r.pick([MUTATIONS[0], MUTATIONS[1], MUTATIONS[2], MUTATIONS[5], MUTATIONS[6]]);
        const m = mutate(r, b, b);
        const where = `seed ${SEED ^ 0x7091c}, ${kind}: ${m.what}, input ${m.bytes.toString('hex')}`;
        assert.equal(goodString(m.bytes, 0, m.bytes.length), wellFormedNoNul(m.bytes), `goodString, ${where}`);
        const name = validTopicName(m.bytes, 0, m.bytes.length);
        if (name) assert.ok(wellFormedNoNul(m.bytes) && !m.bytes.includes(0x23) && !m.bytes.includes(0x2b), `validTopicName accepted ${where}`);
        const payload = Buffer.concat([Buffer.from([m.bytes.length >> 8, m.bytes.length & 0xff]), m.bytes]);
        assert.equal(rawFiltersWellFormed(payload, 0, payload.length, false), wellFormedNoNul(m.bytes), `rawFiltersWellFormed, ${where}`);
      }
    }
  });
});

describe('seed corpus for the native fuzzers (test/fixtures/write-corpus.ts)', () => {
  it('writes every table topic name, filter, match case and packet, once each', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-corpus-'));
    try {
      const counts = writeCorpus(dir);
      const topic = fs.readdirSync(path.join(dir, 'topic_fuzz')).map((f) => fs.readFileSync(path.join(dir, 'topic_fuzz', f)));
      const packet = fs.readdirSync(path.join(dir, 'packet')).map((f) => fs.readFileSync(path.join(dir, 'packet', f)));
      const has = (files: Buffer[], b: Buffer) => files.some((x) => x.equals(b));
      for (const t of TOPIC_NAMES) assert.ok(has(topic, Buffer.concat([Buffer.from([0]), t.bytes])), `topic name ${t.name}`);
      for (const f of TOPIC_FILTERS) assert.ok(has(topic, Buffer.concat([Buffer.from([1]), f.bytes])), `filter ${f.name}`);
      for (const [f, t] of MATCH_CASES) {
        assert.ok(has(topic, Buffer.concat([Buffer.from([1]), Buffer.from(f)])), `match case filter ${f}`);
        assert.ok(has(topic, Buffer.concat([Buffer.from([0]), Buffer.from(t)])), `match case topic ${t}`);
      }
      for (const c of PACKETS) assert.ok(has(packet, c.bytes), `packet ${c.name}`);
      assert.equal(counts.topic, topic.length);
      assert.equal(counts.packet, packet.length);
      assert.equal(new Set(topic.map((b) => b.toString('hex'))).size, topic.length, 'no duplicate seed files');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
