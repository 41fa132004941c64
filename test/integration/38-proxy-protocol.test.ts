// 38: the PROXY protocol (HAProxy's v1 text and v2 binary headers), as a load balancer sends it.
//
// Headers are written by hand on a raw socket, then MQTT (or TLS, or a WebSocket upgrade)
// follows, as a load balancer's connection does. Where the client's address shows: the line
// the broker logs for a refused CONNECT (the "auth: refused" record's address), which must name the
// address the header gave, not the load balancer's.
// - v1 TCP4 and v2 IPv4 / IPv6 headers: the header's address is the client's; MQTT after the
//   header works (CONNACK, SUBSCRIBE, PUBLISH both ways), also with the header and CONNECT in
//   one write and with the header split over writes; a v2 LOCAL header (a health check) is
//   accepted with the connection's own address.
// - A sender outside --proxy-trusted is closed before anything is read; a malformed header, no
//   header (MQTT at once) and a header that never comes (timeout) are closed; all counted.
// - A TLS listener with "proxyProtocol": the header comes before the TLS handshake; a WebSocket
//   listener likewise before the HTTP upgrade, and a secure WebSocket one before both.
// - --proxy-protocol without --proxy-trusted is refused at start (exit 2).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { IPublishPacket } from 'mqtt-packet';
import { launchBroker, makeTempDir, removeDir, runCli, type Broker } from '../helpers/broker';
import { RawClient, connackCode, connectPacket, encode, decodeAll } from '../helpers/raw-client';
import { makeCa, issue, type Ca, type Issued } from '../helpers/certs';
import { uid, utopic } from '../helpers/ids';
import { delay, onceEvent, WAIT_MS } from '../helpers/wait';
import { findRecords } from '../helpers/log-lines';
import { metric, metricAtLeast } from '../helpers/metrics';

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v1(src: string, sport: number, fam = 'TCP4', dst = '10.0.0.1'): Buffer {
  return Buffer.from(`PROXY ${fam} ${src} ${dst} ${sport} 1883\r\n`, 'latin1');
}

/** A v2 PROXY header for an IPv4 or IPv6 TCP source (LOCAL when `local`), with `tlv` extra bytes. */
function v2(src: string, sport: number, opts: { local?: boolean; tlv?: number } = {}): Buffer {
  const six = net.isIPv6(src);
  const addrs = six ? 36 : 12;
  const len = addrs + (opts.tlv ?? 0);
  const h = Buffer.alloc(16 + len);
  V2_SIG.copy(h);
  h[12] = opts.local ? 0x20 : 0x21;
  h[13] = six ? 0x21 : 0x11;
  h.writeUInt16BE(len, 14);
  if (six) {
    const groups = expand6(src);
    groups.forEach((g, i) => h.writeUInt16BE(g, 16 + 2 * i));
    h.writeUInt16BE(sport, 48);
    h.writeUInt16BE(1883, 50);
  } else {
    src.split('.').forEach((b, i) => { h[16 + i] = Number(b); });
    [10, 0, 0, 1].forEach((b, i) => { h[20 + i] = b; });
    h.writeUInt16BE(sport, 24);
    h.writeUInt16BE(1883, 26);
  }
  return h;
}

function expand6(a: string): number[] {
  const [head, tail] = a.split('::');
  const hs = head ? head.split(':') : [];
  const ts = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const zeros = 8 - hs.length - ts.length;
  return [...hs, ...Array(zeros).fill('0'), ...ts].map((g) => parseInt(g, 16));
}



/** The broker's line for a refused anonymous CONNECT names `addr` (the address the broker believes). */
async function refusedFrom(b: Broker, addr: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (findRecords(b.output(), { msg: 'auth: refused', address: addr }).length === 0) {
    assert.ok(Date.now() < deadline, `no refusal record from ${addr}:\n${b.output().slice(-3000)}`);
    await delay(20);
  }
}

let dir: string;
let ca: Ca;
let server: Issued;
let passwordFile: string;
const brokers: Broker[] = [];
const sockets: net.Socket[] = [];

before(async () => {
  dir = makeTempDir('fleetmq-proxy-');
  ca = makeCa(dir, 'ca');
  server = issue(ca, 'server', '/CN=localhost', '2001', 'server');
  // One user, so that an anonymous CONNECT is refused and logged with its address.
  passwordFile = path.join(dir, 'passwords');
  const r = await runCli(['passwd', '--password', 'secret', passwordFile, 'alice']);
  assert.equal(r.code, 0, `fleetmq passwd failed: ${r.stderr}`);
});

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(brokers.map((b) => b.stop().catch(() => undefined)));
  removeDir(dir);
});

async function start(extra: string[]): Promise<Broker> {
  const b = await launchBroker(2, ['--durability', 'none', '--password-file', passwordFile, '--tls-handshake-timeout-ms', '1000', ...extra]);
  brokers.push(b);
  return b;
}

/** A raw MQTT client that wrote `header` first (in the same write as CONNECT when `together`). */
async function viaProxy(port: number, header: Buffer, version: 4 | 5, fields: Parameters<typeof connectPacket>[1], together = true): Promise<RawClient> {
  const c = await RawClient.connect(port, version);
  c.autoAck = true;
  const connect = encode(connectPacket(version, fields), version);
  if (together) c.write(Buffer.concat([header, connect]));
  else {
    // Byte by byte for the header: the broker must wait for all of it.
    for (const byte of header) { c.write(Buffer.from([byte])); await delay(1); }
    c.write(connect);
  }
  return c;
}

describe('PROXY protocol on a TCP listener', () => {
  let b: Broker;
  before(async () => { b = await start(['--proxy-protocol', 'true', '--proxy-trusted', '10.0.0.0/8,127.0.0.1']); });

  it('v1: the header\'s address is the client\'s, and MQTT flows after it', async () => {
    const refused = await viaProxy(b.port, v1('203.0.113.7', 40001), 4, { clientId: uid('anon') });
    assert.equal(connackCode(await refused.expect('connack')), 5);
    await refusedFrom(b, '203.0.113.7:40001');
    refused.destroy();

    const topic = utopic('px');
    const sub = await viaProxy(b.port, v1('203.0.113.8', 40002), 4, { clientId: uid('sub'), username: 'alice', password: Buffer.from('secret') });
    assert.equal(connackCode(await sub.expect('connack')), 0);
    await sub.subscribe(topic, 1);
    const pub = await viaProxy(b.port, v1('203.0.113.9', 40003), 5, { clientId: uid('pub'), username: 'alice', password: Buffer.from('secret') }, false);
    assert.equal(connackCode(await pub.expect('connack')), 0);
    pub.send({ cmd: 'publish', topic, payload: Buffer.from('through the proxy'), qos: 1, messageId: 5, retain: false, dup: false } as IPublishPacket);
    await pub.waitFor((p) => p.cmd === 'puback', 'PUBACK');
    const got = await sub.waitFor<IPublishPacket>((p) => p.cmd === 'publish' && p.topic === topic, 'the message');
    assert.equal(got.payload.toString(), 'through the proxy');
    sub.destroy();
    pub.destroy();
  });

  it('v2: IPv4 and IPv6 sources, TLVs skipped; LOCAL keeps the connection\'s own address', async () => {
    const a = await viaProxy(b.port, v2('198.51.100.20', 40010, { tlv: 20 }), 5, { clientId: uid('anon') });
    assert.equal(connackCode(await a.expect('connack')), 0x87);
    await refusedFrom(b, '198.51.100.20:40010');
    const six = await viaProxy(b.port, v2('2001:db8::17', 40011), 4, { clientId: uid('anon') }, false);
    assert.equal(connackCode(await six.expect('connack')), 5);
    await refusedFrom(b, '[2001:db8::17]:40011');
    const local = await viaProxy(b.port, v2('192.0.2.99', 40012, { local: true }), 4, { clientId: uid('ok'), username: 'alice', password: Buffer.from('secret') });
    assert.equal(connackCode(await local.expect('connack')), 0, 'a LOCAL header is accepted');
    for (const c of [a, six, local]) c.destroy();
  });

  it('closes a malformed header, a missing one and one that never comes; counts them', async () => {
    const before = await metric(b, 'fleetmq_limit_refused_total', { reason: 'proxy' });
    const bad = await viaProxy(b.port, Buffer.from('PROXY TCP4 999.1.1.1 10.0.0.1 1 2\r\n'), 4, { clientId: uid('bad') });
    const none = await viaProxy(b.port, Buffer.alloc(0), 4, { clientId: uid('none') });
    const long = await viaProxy(b.port, Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 4, { clientId: uid('long') });
    const silent = await RawClient.connect(b.port, 4);
    for (const c of [bad, none, long, silent]) {
      assert.ok(await c.waitClosed(WAIT_MS), 'closed');
      assert.equal(c.packets.length, 0, `no MQTT answer: ${c.describe()}`);
    }
    await metricAtLeast(b, 'fleetmq_limit_refused_total', { reason: 'proxy' }, before + 4);
  });
});

describe('trusted senders', () => {
  it('a connection from outside --proxy-trusted is closed before its header is read, and counted', async () => {
    const b = await start(['--proxy-protocol', 'true', '--proxy-trusted', '10.0.0.0/8']);
    const c = await viaProxy(b.port, v1('203.0.113.50', 40020), 4, { clientId: uid('x') });
    assert.ok(await c.waitClosed(WAIT_MS));
    assert.equal(c.packets.length, 0);
    await metricAtLeast(b, 'fleetmq_limit_refused_total', { reason: 'proxy' }, 1);
    assert.doesNotMatch(b.output(), /203\.0\.113\.50/, 'an untrusted header is never believed');
  });

  it('--proxy-protocol without --proxy-trusted is refused at start', async () => {
    const r = await runCli(['--port', '0', '--proxy-protocol', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--proxy-trusted/);
    const bad = await runCli(['--port', '0', '--proxy-protocol', 'true', '--proxy-trusted', '10.0.0.0/33']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not an IP address or CIDR/);
  });
});

describe('PROXY protocol before TLS and before a WebSocket upgrade', () => {
  let b: Broker;
  let tlsPort: number;
  let wsPort: number;
  let wssPort: number;
  before(async () => {
    b = await start(['--cert', server.cert, '--key', server.key, '--listeners', JSON.stringify([
      { transport: 'tls', port: 0, proxyProtocol: true, proxyTrusted: ['127.0.0.1'] },
      { transport: 'ws', port: 0, proxyProtocol: true, proxyTrusted: ['127.0.0.1'] },
      { transport: 'wss', port: 0, proxyProtocol: true, proxyTrusted: ['127.0.0.1'] },
    ])]);
    tlsPort = Number((await b.waitForOutput(/fleetmq: tls listener on [^\s:]+:(\d+)/))[1]);
    wsPort = Number((await b.waitForOutput(/fleetmq: ws listener on [^\s:]+:(\d+)/))[1]);
    wssPort = Number((await b.waitForOutput(/fleetmq: wss listener on [^\s:]+:(\d+)/))[1]);
  });

  it('TLS: the header, then the handshake, then MQTT; the header\'s address is the client\'s', async () => {
    const raw = net.connect(tlsPort, '127.0.0.1');
    sockets.push(raw);
    await onceEvent(raw, 'connect', 'TCP connect');
    raw.write(v2('192.0.2.44', 40030));
    const t = tls.connect({ socket: raw, servername: 'localhost', ca: fs.readFileSync(ca.cert) });
    sockets.push(t);
    await onceEvent(t, 'secureConnect', 'the TLS handshake after the PROXY header');
    t.write(encode(connectPacket(4, { clientId: uid('tls') }), 4));
    let got = Buffer.alloc(0);
    t.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
    const deadline = Date.now() + WAIT_MS;
    while (decodeAll(got, 4).length === 0 && Date.now() < deadline) await delay(20);
    const [ack] = decodeAll(got, 4);
    assert.equal(ack?.cmd, 'connack');
    assert.equal(connackCode(ack as never), 5);
    await refusedFrom(b, '192.0.2.44:40030');
  });

  it('TLS: without the header the connection is closed (a ClientHello is not a PROXY header)', async () => {
    const before = await metric(b, 'fleetmq_limit_refused_total', { reason: 'proxy' });
    const t = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: fs.readFileSync(ca.cert) });
    sockets.push(t);
    t.on('error', () => { /* expected */ });
    await onceEvent(t, 'close', 'the close');
    await metricAtLeast(b, 'fleetmq_limit_refused_total', { reason: 'proxy' }, before + 1);
  });

  it('WebSocket: the header and the HTTP upgrade in one write; the upgrade is answered', async () => {
    const raw = net.connect(wsPort, '127.0.0.1');
    sockets.push(raw);
    await onceEvent(raw, 'connect', 'TCP connect');
    let got = '';
    raw.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    raw.write(Buffer.concat([v1('203.0.113.61', 40040), Buffer.from([
      'GET /mqtt HTTP/1.1', 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: mqtt', '', '',
    ].join('\r\n'), 'latin1')]));
    const deadline = Date.now() + WAIT_MS;
    while (!got.includes('\r\n\r\n') && Date.now() < deadline) await delay(20);
    assert.match(got, /^HTTP\/1\.1 101 /, `the upgrade after the PROXY header: ${JSON.stringify(got.slice(0, 80))}`);
  });

  it('secure WebSocket: the header, the TLS handshake, then the upgrade', async () => {
    const raw = net.connect(wssPort, '127.0.0.1');
    sockets.push(raw);
    await onceEvent(raw, 'connect', 'TCP connect');
    raw.write(v1('2001:db8::5', 40050, 'TCP6', '2001:db8::1'));
    const t = tls.connect({ socket: raw, servername: 'localhost', ca: fs.readFileSync(ca.cert) });
    sockets.push(t);
    await onceEvent(t, 'secureConnect', 'the TLS handshake after the PROXY header');
    let got = '';
    t.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    t.write([
      'GET /mqtt HTTP/1.1', 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: mqtt', '', '',
    ].join('\r\n'));
    const deadline = Date.now() + WAIT_MS;
    while (!got.includes('\r\n\r\n') && Date.now() < deadline) await delay(20);
    assert.match(got, /^HTTP\/1\.1 101 /, `the upgrade after PROXY and TLS: ${JSON.stringify(got.slice(0, 80))}`);
  });
});
