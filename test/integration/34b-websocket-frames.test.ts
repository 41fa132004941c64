// 34b: MQTT over WebSocket at the frame level (workers/net/ws-frames.ts, ws-stream.ts), with
// raw sockets that do the opening handshake and build every frame by hand (helpers/ws-raw.ts).
//
// - The opening handshake by hand: version 13 only (426), a 16-byte key (400), the RFC's
//   example accept value, subprotocol mqtt preferred, no extension.
// - MQTT is a byte stream over binary frames [MQTT-6.0.0-2]: a CONNECT fragmented over
//   continuation frames with a ping between them (the pong carries the ping's payload back), one
//   PUBLISH over many frames, several packets in one frame, a 64-bit length frame, over ws://
//   and wss://.
// - Refused frames close with their RFC 6455 code and then the socket: unmasked 1002 (§5.1),
//   reserved opcode 1002, over the size bound 1009 (announced on the header, before any
//   payload); counted with the refused WebSocket requests.
// - A close frame is echoed with its code and the broker closes the socket. A DISCONNECT and a
//   close frame in one write: the DISCONNECT counts (no will) [MQTT-3.14.4-3]. The broker
//   closing a connection sends a close frame 1000 first.
// - mqtt.js over ws:// and wss://: large messages (server frames with 16- and 64-bit lengths,
//   payloads written without a copy) and many small ones, in order.
// - Backpressure as over TCP: a WebSocket subscriber that stops reading gets QoS 0 dropped and
//   counted, and stays connected; one that sends and never reads is closed at the output limit
//   and counted (the socket's own buffer is what counts: workers/net/connection.ts).
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { launchBroker, makeTempDir, type Broker } from '../helpers/broker';
import { makeCa, issue, type Ca, type Issued } from '../helpers/certs';
import { Clients, subscribe, publish, end } from '../helpers/clients';
import { encode, decodeAll, connectPacket, type Packet } from '../helpers/raw-client';
import { SysWatcher } from '../helpers/sys-watcher';
import { uid, utopic } from '../helpers/ids';
import { waitUntil } from '../helpers/wait';
import { RawWs, clientFrame } from '../helpers/ws-raw';

const KiB = 1024;
const BIN = 0x2, CONT = 0x0, CLOSE = 0x8, PING = 0x9, PONG = 0xa;

let ca: Ca;
let server: Issued;
before(() => {
  const dir = makeTempDir('fleetmq-wsf-');
  ca = makeCa(dir, 'ca');
  server = issue(ca, 'server', '/CN=localhost', '1001', 'server');
});

/** The MQTT packets in a raw WebSocket's binary frames so far (throws on a partial one). */
const packetsOf = (ws: RawWs): Packet[] => decodeAll(ws.data());
const cmds = (ws: RawWs): string[] => { try { return packetsOf(ws).map((p) => p.cmd); } catch { return []; } };
const bin = (b: Buffer, fin = true) => clientFrame(BIN, b, { fin });
const cont = (b: Buffer, fin = true) => clientFrame(CONT, b, { fin });
/** `bytes` cut into frames of `size` bytes: a binary frame, then continuations. */
const fragments = (bytes: Buffer, size: number): Buffer[] => {
  const out: Buffer[] = [];
  for (let p = 0; p < bytes.length; p += size) out.push(clientFrame(p === 0 ? BIN : CONT, bytes.subarray(p, p + size), { fin: p + size >= bytes.length }));
  return out;
};

describe('34b WebSocket frames, 1 worker', () => {
  let broker: Broker;
  let ports: { ws: number; wss: number };
  let sys: SysWatcher;
  const clients = new Clients();
  const raws: RawWs[] = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    broker = await launchBroker(1, ['--ws-port', '0', '--wss-port', '0', '--cert', server.cert, '--key', server.key,
      '--sys-interval', '1', '--durability', 'none', '--max-packet-size', String(256 * KiB), '--output-high-water', String(64 * KiB)]);
    const port = async (kind: string) => Number((await broker.waitForOutput(new RegExp(`fleetmq: ${kind} listener on [^\\s:]+:(\\d+)`)))[1]);
    ports = { ws: await port('ws'), wss: await port('wss') };
    sys = await SysWatcher.start(broker.port);
  });
  after(async () => {
    for (const r of raws) r.destroy();
    for (const s of sockets) s.destroy();
    sys?.close();
    await clients.closeAll();
    await broker?.stop();
  });

  const secure = () => ({ ca: fs.readFileSync(ca.cert), servername: 'localhost' });
  const open = async (kind: 'ws' | 'wss' = 'ws'): Promise<RawWs> => {
    const r = await RawWs.open(ports[kind], kind === 'wss' ? { tls: secure() } : {});
    raws.push(r);
    return r;
  };
  /** A raw WebSocket with an accepted CONNECT (one frame). */
  const connected = async (kind: 'ws' | 'wss' = 'ws', fields = {}): Promise<RawWs> => {
    const r = await open(kind);
    r.send(bin(encode(connectPacket(4, fields))));
    await r.until(() => cmds(r).includes('connack'), 'a CONNACK');
    assert.equal((packetsOf(r)[0] as { returnCode: number }).returnCode, 0);
    return r;
  };
  /** The broker closed the socket after a close frame with `code`. */
  const closedWith = async (r: RawWs, code: number, what: string) => {
    assert.equal(await r.closeCode(), code, `${what}: the close code`);
    await r.until(() => r.closed, `${what}: the broker to close the socket`);
  };

  it('the opening handshake: version other than 13 is 426 naming 13; a missing or malformed key is 400 (RFC 6455 §4.2.1, §4.4)', async () => {
    const ask = async (headers: string): Promise<string> => {
      const s = net.connect(ports.ws, '127.0.0.1');
      sockets.push(s);
      await once(s, 'connect');
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      const closed = once(s, 'close');
      s.write(`GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n${headers}\r\n`);
      await closed;
      return got;
    };
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const v8 = await ask(`${key}Sec-WebSocket-Version: 8\r\n`);
    assert.match(v8, /^HTTP\/1\.1 426 /);
    assert.match(v8, /Sec-WebSocket-Version: 13\r\n/);
    assert.match(await ask('Sec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400 /, 'no key');
    assert.match(await ask('Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400 /, 'a key that is not 16 bytes');
    // The RFC's own example: key "dGhlIHNhbXBsZSBub25jZQ==" is answered "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    const ok = await new Promise<string>((resolve, reject) => {
      const s = net.connect(ports.ws, '127.0.0.1');
      sockets.push(s);
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.includes('\r\n\r\n')) { s.destroy(); resolve(got); } });
      s.on('error', reject);
      s.write(`GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n${key}Sec-WebSocket-Version: 13\r\n\r\n`);
    });
    assert.match(ok, /^HTTP\/1\.1 101 /);
    assert.match(ok, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    assert.match(ok, /Sec-WebSocket-Protocol: mqtt\r\n/, 'mqtt preferred when both are offered');
    assert.doesNotMatch(ok, /Sec-WebSocket-Extensions/i, 'no extension accepted');
  });

  for (const kind of ['ws', 'wss'] as const) {
    it(`${kind}: a CONNECT fragmented over continuation frames with a ping between them; the pong echoes the ping`, async () => {
      const r = await open(kind);
      const frames = fragments(encode(connectPacket(4)), 3);
      assert.ok(frames.length >= 5);
      const ping = Buffer.from('are you there?');
      // The ping between the 2nd and 3rd fragment (§5.4: control frames may be injected).
      r.send(Buffer.concat([...frames.slice(0, 2), clientFrame(PING, ping)]));
      await r.until(() => r.frames.some((f) => f.op === PONG), 'a pong');
      assert.deepEqual(r.frames.find((f) => f.op === PONG)!.payload, ping, 'the pong carries the ping payload');
      assert.deepEqual(cmds(r), [], 'no CONNACK before the CONNECT is whole');
      for (const f of frames.slice(2)) r.send(f);
      await r.until(() => cmds(r).includes('connack'), 'a CONNACK');
      assert.ok(r.frames.every((f) => !f.masked && f.fin), 'server frames are unmasked and unfragmented');
    });
  }

  it('several packets in one frame; one PUBLISH over 100 frames; a 64-bit length frame: all answered and delivered', async () => {
    const r = await open();
    const t = utopic('wsf');
    // CONNECT, SUBSCRIBE and PINGREQ in one frame.
    r.send(bin(Buffer.concat([encode(connectPacket(4)), encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] }), encode({ cmd: 'pingreq' })])));
    await r.until(() => cmds(r).join() === 'connack,suback,pingresp', 'CONNACK, SUBACK and PINGRESP');
    // One PUBLISH of 1 KiB over 100 frames, each its own write.
    const p1 = crypto.randomBytes(KiB);
    for (const f of fragments(encode({ cmd: 'publish', topic: t, payload: p1, qos: 0, retain: false, dup: false }), 11)) r.send(f);
    await r.until(() => cmds(r).includes('publish'), 'the fragmented PUBLISH back');
    // A frame with a 64-bit length (forced for 100 KiB, and the 16-bit form for 30 bytes).
    const p2 = crypto.randomBytes(100 * KiB);
    r.send(clientFrame(BIN, encode({ cmd: 'publish', topic: t, payload: p2, qos: 0, retain: false, dup: false }), { lengthBits: 64 }));
    // Taken in before the next: while 100 KiB wait in the socket, this connection is over
    // --output-high-water and a QoS 0 message to it would be dropped (as over TCP).
    await r.until(() => cmds(r).filter((c) => c === 'publish').length === 2, 'the 100 KiB PUBLISH back');
    r.send(clientFrame(BIN, encode({ cmd: 'publish', topic: t, payload: Buffer.from('short'), qos: 0, retain: false, dup: false }), { lengthBits: 16 }));
    await r.until(() => cmds(r).filter((c) => c === 'publish').length === 3, 'three PUBLISHes back');
    const got = packetsOf(r).filter((p) => p.cmd === 'publish').map((p) => (p as { payload: Buffer }).payload);
    assert.deepEqual(got, [p1, p2, Buffer.from('short')]);
  });

  it('an unmasked client frame: close 1002 and the socket closed (RFC 6455 §5.1); counted', async () => {
    const before = await sys.current('clients/refused/websocket');
    const r = await connected();
    r.send(clientFrame(BIN, encode({ cmd: 'pingreq' }), { unmasked: true }));
    await closedWith(r, 1002, 'unmasked');
    assert.ok(!cmds(r).includes('pingresp'), 'the unmasked frame was not read');
    await sys.waitCounter(/clients\/refused\/websocket$/, before + 1, 'the refused frame counted');
  });

  it('a reserved opcode and reserved bits: close 1002', async () => {
    const r = await connected();
    r.send(clientFrame(0x3, Buffer.from([0xc0, 0x00])));
    await closedWith(r, 1002, 'opcode 3');
    const r2 = await connected('wss');
    r2.send(clientFrame(BIN, Buffer.from([0xc0, 0x00]), { rsv: 4 }));
    await closedWith(r2, 1002, 'RSV1');
  });

  it('a frame over the size bound: close 1009 on its header, before any payload is sent', async () => {
    const r = await connected();
    // Announces 1 GiB and sends nothing of it: the header alone is refused.
    r.send(clientFrame(BIN, Buffer.alloc(0), { lengthBits: 64, announce: 2 ** 30 }));
    await closedWith(r, 1009, 'a 1 GiB frame');
    // Over --max-packet-size (+ 8) in fragments that each fit.
    const r2 = await connected();
    const pings = Buffer.alloc(200 * KiB, Buffer.from([0xc0, 0x00]));
    r2.send(bin(pings, false));
    r2.send(cont(pings));
    await closedWith(r2, 1009, 'a 400 KiB message');
  });

  it('a close frame is echoed with its code and the broker closes the socket', async () => {
    const r = await connected();
    r.send(clientFrame(CLOSE, Buffer.from([0x0f, 0xa1, ...Buffer.from('done')]))); // 4001, "done"
    await closedWith(r, 4001, 'the echoed close');
  });

  it('a DISCONNECT and a close frame in one write: the DISCONNECT counts (no will) [MQTT-3.14.4-3]', async () => {
    const will = utopic('wsf-will');
    const watcher = await clients.mqtt(broker.port);
    await subscribe(watcher.client, will, { qos: 0 });
    const r = await connected('ws', { will: { topic: will, payload: Buffer.from('will'), qos: 0, retain: false } });
    r.send(Buffer.concat([bin(encode({ cmd: 'disconnect' })), clientFrame(CLOSE, Buffer.from([0x03, 0xe8]))]));
    await r.until(() => r.closed, 'the broker to close the socket');
    // Same worker, same topic: a will sent at that close would come before this marker.
    const marker = await clients.mqtt(broker.port);
    await publish(marker.client, will, 'marker', { qos: 0 });
    const got = await watcher.inbox.waitFor(1, will);
    assert.equal(got[0].payload.toString(), 'marker', 'no will after DISCONNECT');
  });

  it('the broker closing a connection (a second CONNECT) sends a close frame 1000, then closes', async () => {
    const r = await connected('wss');
    r.send(bin(encode(connectPacket(4))));
    await closedWith(r, 1000, 'a protocol close');
  });

  for (const kind of ['ws', 'wss'] as const) {
    it(`mqtt.js over ${kind}://: 200 KiB messages and 2,000 small ones arrive whole and in order`, async () => {
      const t = utopic(`wsf-${kind}`);
      const opts = { protocol: kind, path: '/mqtt', ...(kind === 'wss' ? secure() : {}) } as const;
      const sub = await clients.mqtt(kind === 'ws' ? ports.ws : ports.wss, opts);
      await subscribe(sub.client, t, { qos: 1 });
      const pub = await clients.mqtt(kind === 'ws' ? ports.ws : ports.wss, opts);
      const big = [crypto.randomBytes(200 * KiB), crypto.randomBytes(70 * KiB)];
      for (const b of big) await publish(pub.client, t, b, { qos: 1 });
      const N = 2000;
      await Promise.all(Array.from({ length: N }, (_, i) => publish(pub.client, t, `m${i}`, { qos: i % 2 === 0 ? 0 : 1 })));
      const got = await sub.inbox.waitFor(N + 2, t, 60000);
      assert.deepEqual(got.slice(0, 2).map((m) => m.payload), big);
      assert.deepEqual(got.slice(2).map((m) => m.payload.toString()), Array.from({ length: N }, (_, i) => `m${i}`));
      await end(pub.client);
      await end(sub.client);
    });
  }

  it('a WebSocket subscriber that stops reading: QoS 0 to it dropped and counted, it stays connected and is served again', { timeout: 180000 }, async () => {
    const before = await sys.current('messages/dropped/slow-consumer');
    const t = utopic('wsf-slow');
    const slow = await open();
    slow.send(bin(Buffer.concat([encode(connectPacket(4, { clientId: uid('slow') })), encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] })])));
    await slow.until(() => cmds(slow).join() === 'connack,suback', 'CONNACK and SUBACK');
    slow.socket.pause();
    const pub = net.connect(broker.port, '127.0.0.1');
    sockets.push(pub);
    await once(pub, 'connect');
    pub.on('data', () => { /* CONNACK */ });
    pub.write(encode(connectPacket(4)));
    const N = 20000;
    const msg = encode({ cmd: 'publish', topic: t, payload: Buffer.alloc(KiB, 0x61), qos: 0, retain: false, dup: false });
    for (let i = 0; i < N; i++) if (!pub.write(msg)) await once(pub, 'drain');
    await sys.waitCounter(/messages\/dropped\/slow-consumer$/, before + N / 2, 'QoS 0 drops to the WebSocket subscriber that stopped reading', 60000);
    assert.equal(slow.closed, false, 'dropped, not disconnected');
    slow.socket.resume();
    // What waited in its buffers comes first; a QoS 0 message published while it is still over
    // the mark is dropped too, so new ones are sent until one arrives.
    const after = Buffer.from('after-the-pause');
    let seen = 0;
    const arrived = () => {
      for (; seen < slow.frames.length; seen++) if (slow.frames[seen].payload.includes(after)) return true;
      return false;
    };
    const publishAfter = setInterval(() => pub.write(encode({ cmd: 'publish', topic: t, payload: after, qos: 0, retain: false, dup: false })), 200);
    try {
      await waitUntil(arrived, 'a message published after it read again', 60000);
    } finally { clearInterval(publishAfter); }
    assert.equal(slow.closed, false);
  });

  it('a WebSocket client that sends and never reads is closed at the output limit and counted, like a TCP one', { timeout: 180000 }, async () => {
    const before = await sys.current('clients/closed/unread-output');
    const r = await connected();
    r.socket.pause();
    const frame = clientFrame(BIN, Buffer.alloc(64 * KiB, Buffer.from([0xc0, 0x00]))); // 32,768 PINGREQs
    let sent = 0;
    const MAX = 512 * 1024 * KiB;
    while (!r.closed && sent < MAX) {
      if (!r.socket.write(frame)) await new Promise<void>((resolve) => { r.socket.once('drain', resolve); r.socket.once('close', resolve); });
      sent += frame.length;
    }
    await waitUntil(() => r.closed, `the broker closing a WebSocket client that sent ${sent / 2} PINGREQs and read nothing`, 60000);
    assert.ok(sent < MAX, 'closed before the client gave up');
    await sys.waitCounter(/clients\/closed\/unread-output$/, before + 1, 'counted on $SYS/broker/clients/closed/unread-output');
  });
});
