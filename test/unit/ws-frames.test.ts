// The WebSocket frame decoder (workers/net/ws-frames.ts): client frames of every shape, cut at
// every byte boundary, give back exactly the binary data, with control frames between the
// fragments answered or ending the decoding; every refused shape ends it with its RFC 6455 code.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { WsDecoder, encodeFrame, headerLength, writeHeader, OP_BINARY, OP_CLOSE, OP_PING } from '../../workers/net/ws-frames';
import { clientFrame, parseServerFrames, type FrameOpts } from '../helpers/ws-raw';

const MAX = 1 << 20;

/** Decodes `wire` in reads of the given sizes (the last read takes the rest); returns data, pings and the end. */
function run(wire: Buffer, cuts: number[] = [], max = MAX) {
  const pings: Buffer[] = [];
  const d = new WsDecoder(max, (p) => pings.push(p));
  const out: Buffer[] = [];
  let p = 0;
  const sizes = [...cuts, wire.length];
  for (const size of sizes) {
    if (p >= wire.length || d.end !== null) break;
    // Each read is its own buffer, as a socket's are: the decoder may change it.
    const chunk = Buffer.from(wire.subarray(p, Math.min(wire.length, p + size)));
    p += chunk.length;
    const got = d.decode(chunk);
    if (got !== null) out.push(Buffer.from(got));
  }
  return { data: Buffer.concat(out), reads: out.length, pings, end: d.end };
}

const bin = (payload: Buffer, o: FrameOpts = {}) => clientFrame(OP_BINARY, payload, o);
const bytes = (n: number, seed = 7) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

test('one frame, several frames and a fragmented message give back their bytes; several frames of one read make one chunk', () => {
  const a = bytes(5), b = bytes(200, 1), c = bytes(3, 2);
  assert.deepEqual(run(bin(a)).data, a);
  const r = run(Buffer.concat([bin(a), bin(b), bin(c)]));
  assert.deepEqual(r.data, Buffer.concat([a, b, c]));
  assert.equal(r.reads, 1, 'one read, one chunk');
  const frag = Buffer.concat([bin(a, { fin: false }), clientFrame(0x0, b, { fin: false }), clientFrame(0x0, c)]);
  assert.deepEqual(run(frag).data, Buffer.concat([a, b, c]));
  assert.equal(run(frag).end, null);
});

test('every cut of the wire into two reads (headers, masks and payloads split anywhere) gives the same bytes', () => {
  const a = bytes(130), b = bytes(7, 3), ping = Buffer.from('hi');
  const wire = Buffer.concat([bin(a, { fin: false }), clientFrame(OP_PING, ping), clientFrame(0x0, b, { lengthBits: 64 })]);
  for (let cut = 1; cut < wire.length; cut++) {
    const r = run(wire, [cut]);
    assert.deepEqual(r.data, Buffer.concat([a, b]), `cut at ${cut}`);
    assert.deepEqual(r.pings, [ping], `cut at ${cut}: the ping`);
    assert.equal(r.end, null);
  }
  // One byte per read.
  const r = run(wire, Array(wire.length).fill(1));
  assert.deepEqual(r.data, Buffer.concat([a, b]));
  assert.deepEqual(r.pings, [ping]);
});

test('16- and 64-bit lengths, also for short payloads; a zero-length frame', () => {
  const big = bytes(70000);
  assert.deepEqual(run(bin(big)).data, big);
  assert.deepEqual(run(bin(bytes(10), { lengthBits: 64 })).data, bytes(10));
  assert.deepEqual(run(bin(bytes(10), { lengthBits: 16 })).data, bytes(10));
  const r = run(Buffer.concat([bin(Buffer.alloc(0)), bin(bytes(4))]));
  assert.deepEqual(r.data, bytes(4));
});

test('a pong is ignored; a close frame ends decoding, with what came before it in the same read still given', () => {
  const a = bytes(9);
  const close = Buffer.alloc(2); close.writeUInt16BE(1000, 0);
  const r = run(Buffer.concat([bin(a), clientFrame(0xa, Buffer.from('x')), clientFrame(OP_CLOSE, close), bin(bytes(3))]));
  assert.deepEqual(r.data, a, 'the data before the close, nothing after');
  assert.deepEqual(r.end, { byPeer: true, code: 1000, why: 'close frame' });
  assert.equal(run(clientFrame(OP_CLOSE)).end?.code, 1005, 'an empty close frame: no status');
  const withReason = Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('bye')]); // 4000
  assert.equal(run(clientFrame(OP_CLOSE, withReason)).end?.code, 4000);
});

test('refused frames end decoding with their code (RFC 6455 §5, §7.4.1; text: [MQTT-6.0.0-1])', () => {
  const cases: [string, Buffer, number, number?][] = [
    ['an unmasked frame', bin(bytes(4), { unmasked: true }), 1002],
    ['a text frame', clientFrame(0x1, Buffer.from('{}')), 1003],
    ['reserved bit RSV1', bin(bytes(4), { rsv: 4 }), 1002],
    ['reserved opcode 3', clientFrame(0x3, bytes(2)), 1002],
    ['reserved control opcode 0xB', clientFrame(0xb), 1002],
    ['a continuation outside a message', clientFrame(0x0, bytes(2)), 1002],
    ['a binary frame inside a fragmented message', Buffer.concat([bin(bytes(2), { fin: false }), bin(bytes(2))]), 1002, 2],
    ['a fragmented ping', clientFrame(OP_PING, bytes(2), { fin: false }), 1002],
    ['a ping over 125 bytes', clientFrame(OP_PING, bytes(126)), 1002],
    ['a close frame of 1 byte', clientFrame(OP_CLOSE, Buffer.from([3])), 1002],
    ['a close code never sent (1006)', clientFrame(OP_CLOSE, Buffer.from([0x03, 0xee])), 1002],
    ['a close reason that is not UTF-8', clientFrame(OP_CLOSE, Buffer.from([0x03, 0xe8, 0xff, 0xfe])), 1007],
    ['a 64-bit length with its top bit set', bin(Buffer.alloc(0), { lengthBits: 64, announce: 2 ** 63 }), 1002],
  ];
  for (const [what, wire, code, data = 0] of cases) {
    const r = run(wire);
    assert.equal(r.end?.byPeer, false, what);
    assert.equal(r.end?.code, code, what);
    assert.equal(r.data.length, data, `${what}: only the data before it`);
  }
});

test('a frame or message over the bound is refused 1009 on its header, before its payload', () => {
  const r = run(bin(Buffer.alloc(0), { lengthBits: 64, announce: 2 ** 40 }), [], 1000);
  assert.equal(r.end?.code, 1009);
  assert.equal(run(bin(bytes(1001)), [], 1000).end?.code, 1009);
  // Fragments that each fit but add up to more.
  const frag = Buffer.concat([bin(bytes(600), { fin: false }), clientFrame(0x0, bytes(600))]);
  const f = run(frag, [], 1000);
  assert.equal(f.end?.code, 1009);
  assert.deepEqual(f.data, bytes(600), 'the first fragment was data');
  // A new message starts its own count.
  assert.equal(run(Buffer.concat([bin(bytes(600)), bin(bytes(600))]), [], 1000).end, null);
});

test('server frames: header lengths at the 7/16/64-bit boundaries, unmasked, FIN set', () => {
  for (const n of [0, 125, 126, 65535, 65536]) {
    const f = encodeFrame(OP_BINARY, bytes(n));
    assert.equal(f.length, headerLength(n) + n);
    const { frames, rest } = parseServerFrames(f);
    assert.equal(rest.length, 0);
    assert.deepEqual(frames.map((x) => [x.fin, x.op, x.masked, x.payload.length]), [[true, OP_BINARY, false, n]], `length ${n}`);
    assert.deepEqual(frames[0].payload, bytes(n));
  }
  const h = Buffer.alloc(10);
  assert.equal(writeHeader(h, OP_BINARY, 2 ** 33 + 5), 10);
  assert.equal(h.readBigUInt64BE(2), BigInt(2 ** 33 + 5));
});
