// 33: MQTT over TLS, terminated in the worker that owns the connection.
//
// Certificates are made by the real openssl in the test (test/helpers/certs.ts); clients are
// the real mosquitto_pub and mqtt.js, and Node's tls for what only it shows (serial numbers,
// protocol versions).
// - mosquitto_pub --cafile over TLS reaches a subscriber on plain TCP; a client that trusts
//   another CA fails the handshake (counted); TLS 1.1 is refused, 1.2 accepted.
// - A persistent session reconnecting over TLS to a worker that does not own it (3 workers;
//   a filler connection steers the next one off the owner) keeps its session: session present,
//   every QoS 1 message queued meanwhile delivered in order, and traffic both ways after.
// - SIGHUP: new connections get the new certificate (new serial) on every worker while an
//   open TLS connection keeps working; a bad certificate file keeps the previous one.
// - A client that never starts its handshake is closed after --tls-handshake-timeout-ms; one
//   that speaks something else is closed at once; both counted.
// - Settings that cannot work are refused at start with one line: exit 2 for flags that do
//   not fit together, exit 1 for a certificate that does not load.
// - --require-certificate: no client certificate (or one from another CA) fails the
//   handshake; with --use-identity-as-username the certificate admits the client with
//   anonymous access off, whatever username and password CONNECT carries, and a certificate
//   without a CN is refused (CONNACK 5).
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type * as mqtt from 'mqtt';
import { launchBroker, makeTempDir, runCli, type Broker } from '../helpers/broker';
import { makeCa, issue, type Ca, type Issued } from '../helpers/certs';
import { Clients, subscribe, publish, end } from '../helpers/clients';
import { mosquittoBinary } from '../helpers/mosquitto';
import { SysWatcher } from '../helpers/sys-watcher';
import { uid, utopic } from '../helpers/ids';
import { onceEvent, WAIT_MS } from '../helpers/wait';

const TLS_RE = /fleetmq: tls listener on [^\s:]+:(\d+)/;

async function tlsPort(b: Broker): Promise<number> {
  return Number((await b.waitForOutput(TLS_RE))[1]);
}

/** Runs a command to completion (bounded); resolves with its exit code and output. */
function run(cmd: string, args: string[], ms = 30000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d; });
    p.stderr.on('data', (d: Buffer) => { out += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${ms} ms: ${out}`)); }, ms);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
}

/** Node's TLS client: resolves with the socket once the handshake is done, rejects with its error. */
function tlsConnect(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
    const t = setTimeout(() => { s.destroy(); reject(new Error('no TLS handshake result within the wait')); }, WAIT_MS);
    s.once('secureConnect', () => { clearTimeout(t); resolve(s); });
    s.once('error', (err) => { clearTimeout(t); s.destroy(); reject(err); });
  });
}

let dir: string;
let ca: Ca;
let other: Ca;
let server: Issued;
let server2: Issued;
let alice: Issued;
let noCn: Issued;
let stranger: Issued;

before(() => {
  mosquittoBinary('mosquitto_pub'); // fails at once with the install line when missing
  dir = makeTempDir('fleetmq-tls-');
  ca = makeCa(dir, 'ca');
  other = makeCa(fs.mkdtempSync(path.join(dir, 'other-')), 'other');
  server = issue(ca, 'server', '/CN=localhost', '1001', 'server');
  server2 = issue(ca, 'server2', '/CN=localhost', '1002', 'server');
  alice = issue(ca, 'alice', '/CN=alice', '2001', 'client');
  noCn = issue(ca, 'nocn', '/O=fleetmq test', '2002', 'client');
  stranger = issue(other, 'stranger', '/CN=stranger', '3001', 'client');
});

describe('33 TLS listener, 3 workers', () => {
  let broker: Broker;
  let port: number;
  let sys: SysWatcher;
  const clients = new Clients();
  const mqtts = (opts: mqtt.IClientOptions = {}) => clients.mqtt(port, { protocol: 'mqtts', ca: fs.readFileSync(ca.cert), servername: 'localhost', ...opts });

  before(async () => {
    broker = await launchBroker(3, ['--tls-port', '0', '--cert', server.cert, '--key', server.key, '--sys-interval', '1', '--durability', 'none']);
    port = await tlsPort(broker);
    sys = await SysWatcher.start(broker.port);
  });
  after(async () => { sys?.close(); await clients.closeAll(); await broker?.stop(); });

  it('mosquitto_pub --cafile over TLS publishes to a subscriber on plain TCP', async () => {
    const t = utopic('tls');
    const sub = await clients.mqtt(broker.port);
    await subscribe(sub.client, t, { qos: 1 });
    const r = await run(mosquittoBinary('mosquitto_pub'), ['-h', '127.0.0.1', '-p', String(port), '--cafile', ca.cert, '-t', t, '-m', 'over-tls', '-q', '1']);
    assert.equal(r.code, 0, `mosquitto_pub over TLS: ${r.out}`);
    assert.equal((await sub.inbox.waitFor(1, t))[0].payload.toString(), 'over-tls');
  });

  it('a client that trusts another CA fails the handshake, and the broker counts it', async () => {
    const before = await sys.current('clients/refused/tls');
    const r = await run(mosquittoBinary('mosquitto_pub'), ['-h', '127.0.0.1', '-p', String(port), '--cafile', other.cert, '-t', utopic('x'), '-m', 'nope']);
    assert.notEqual(r.code, 0, `mosquitto_pub trusting another CA must fail: ${r.out}`);
    await sys.waitCounter(/clients\/refused\/tls$/, before + 1, 'the failed handshake counted');
  });

  it('TLS 1.1 is refused by the broker; TLS 1.2 is accepted', async () => {
    // SECLEVEL=0 lets this client offer 1.1 at all, so the refusal is the broker's (its alert).
    await assert.rejects(tlsConnect(port, { ca: fs.readFileSync(ca.cert), minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      /alert protocol version|unsupported protocol/i);
    const s = await tlsConnect(port, { ca: fs.readFileSync(ca.cert), maxVersion: 'TLSv1.2' });
    assert.equal(s.getProtocol(), 'TLSv1.2');
    s.destroy();
  });

  it('a persistent session reconnecting over TLS on another worker keeps its session and its queued QoS 1 messages', async () => {
    const id = uid('tlssess');
    const t = utopic('tlssess');
    const back = utopic('tlsback');
    const relayedBefore = await sys.current('clients/relayed');
    const first = await mqtts({ clientId: id, clean: false });
    await subscribe(first.client, t, { qos: 1 });
    await end(first.client);
    const pub = await clients.mqtt(broker.port);
    const tcpSub = await clients.mqtt(broker.port);
    await subscribe(tcpSub.client, back, { qos: 1 });
    const fillers: net.Socket[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 3; i++) await publish(pub.client, t, `r${round}-m${i}`, { qos: 1 });
        // The owner is the least-loaded worker now that the client left; an idle connection
        // lands there first, so the reconnect goes to another worker (verified below).
        if (round % 2 === 0) {
          const f = net.connect(broker.port, '127.0.0.1');
          fillers.push(f);
          await onceEvent(f, 'connect', 'a filler connection');
        }
        const again = await mqtts({ clientId: id, clean: false });
        assert.equal(again.connack.sessionPresent, true, `round ${round}: session present`);
        const got = await again.inbox.waitFor(3, t);
        assert.deepEqual(got.map((m) => m.payload.toString()), [0, 1, 2].map((i) => `r${round}-m${i}`), `round ${round}: the queued messages, in order`);
        // Both ways through whatever path the connection took.
        await publish(pub.client, t, `r${round}-live`, { qos: 1 });
        await again.inbox.waitForPayload(`r${round}-live`);
        await publish(again.client, back, `r${round}-back`, { qos: 1 });
        await tcpSub.inbox.waitForPayload(`r${round}-back`);
        await end(again.client);
      }
    } finally {
      for (const f of fillers) f.destroy();
    }
    await sys.waitCounter(/clients\/relayed$/, relayedBefore + 1, 'a reconnect relayed to the worker that owns the session');
  });
});

describe('33 TLS: SIGHUP reloads the certificate, handshake timeout, 2 workers', () => {
  let broker: Broker;
  let port: number;
  let certFile: string;
  let keyFile: string;
  let sys: SysWatcher;
  const clients = new Clients();

  before(async () => {
    const d = makeTempDir('fleetmq-tls-hup-');
    certFile = path.join(d, 'server.crt');
    keyFile = path.join(d, 'server.key');
    fs.copyFileSync(server.cert, certFile);
    fs.copyFileSync(server.key, keyFile);
    broker = await launchBroker(2, ['--tls-port', '0', '--cert', certFile, '--key', keyFile, '--tls-handshake-timeout-ms', '1000', '--sys-interval', '1', '--durability', 'none']);
    port = await tlsPort(broker);
    sys = await SysWatcher.start(broker.port);
  });
  after(async () => { sys?.close(); await clients.closeAll(); await broker?.stop(); });

  const serials = async (n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = await tlsConnect(port, { ca: fs.readFileSync(ca.cert) });
      out.push(s.getPeerCertificate().serialNumber);
      s.destroy();
    }
    return out;
  };

  it('SIGHUP: new connections on every worker get the new certificate, an open TLS connection keeps working, a bad file keeps the previous one', async () => {
    assert.deepEqual(await serials(4), ['1001', '1001', '1001', '1001']);
    const t = utopic('hup');
    const open = await clients.mqtt(port, { protocol: 'mqtts', ca: fs.readFileSync(ca.cert), servername: 'localhost' });
    await subscribe(open.client, t, { qos: 1 });
    fs.copyFileSync(server2.cert, certFile);
    fs.copyFileSync(server2.key, keyFile);
    broker.proc.kill('SIGHUP');
    await broker.waitForOutput(/SIGHUP: .*certificates reloaded for new connections \(serial 1002\)/);
    // Four connections: the two workers take turns, so both are asked.
    assert.deepEqual(await serials(4), ['1002', '1002', '1002', '1002']);
    const pub = await clients.mqtt(broker.port);
    await publish(pub.client, t, 'still-open', { qos: 1 });
    await open.inbox.waitForPayload('still-open');
    assert.equal(open.client.connected, true);

    fs.writeFileSync(certFile, 'not a certificate\n');
    broker.proc.kill('SIGHUP');
    await broker.waitForOutput(/SIGHUP: .*certificates not reloaded, the previous ones stay in force/);
    assert.deepEqual(await serials(2), ['1002', '1002']);
    assert.equal(broker.alive(), true);
  });

  it('a client that never starts its TLS handshake is closed after --tls-handshake-timeout-ms and counted', async () => {
    const before = await sys.current('clients/refused/handshake-timeout');
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => { /* the close is what is awaited */ });
    await onceEvent(s, 'close', 'the broker to close a silent TLS connection', 20000);
    await sys.waitCounter(/clients\/refused\/handshake-timeout$/, before + 1, 'the handshake timeout counted');
  });

  it('a client that speaks something else than TLS is closed at once and counted', async () => {
    const before = await sys.current('clients/refused/tls');
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => { /* the close is what is awaited */ });
    await onceEvent(s, 'connect', 'the connection');
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await onceEvent(s, 'close', 'the broker to close a connection that is not TLS');
    await sys.waitCounter(/clients\/refused\/tls$/, before + 1, 'the failed handshake counted');
  });
});

describe('33 TLS: --require-certificate with --use-identity-as-username', () => {
  let broker: Broker;
  let port: number;
  const clients = new Clients();
  const withCert = (c: Issued | null, opts: mqtt.IClientOptions = {}) => clients.mqtt(port, {
    protocol: 'mqtts', ca: fs.readFileSync(ca.cert), servername: 'localhost',
    ...(c ? { cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) } : {}), ...opts,
  });

  before(async () => {
    broker = await launchBroker(1, ['--tls-port', '0', '--cert', server.cert, '--key', server.key, '--ca', ca.cert,
      '--require-certificate', 'true', '--use-identity-as-username', 'true', '--allow-anonymous', 'false', '--durability', 'none']);
    port = await tlsPort(broker);
  });
  after(async () => { await clients.closeAll(); await broker?.stop(); });

  it('without a client certificate, or with one from another CA, the handshake fails', async () => {
    const r = await run(mosquittoBinary('mosquitto_pub'), ['-h', '127.0.0.1', '-p', String(port), '--cafile', ca.cert, '-t', utopic('x'), '-m', 'x']);
    assert.notEqual(r.code, 0, `mosquitto_pub without a certificate must fail: ${r.out}`);
    await assert.rejects(withCert(null));
    await assert.rejects(withCert(stranger));
  });

  it('the certificate is the credential: admitted with anonymous access off, whatever CONNECT says; mosquitto_pub --cert works', async () => {
    const t = utopic('cn');
    const sub = await withCert(alice, { username: 'mallory', password: 'wrong' });
    assert.equal(sub.connack.returnCode, 0);
    await subscribe(sub.client, t, { qos: 1 });
    const r = await run(mosquittoBinary('mosquitto_pub'), ['-h', '127.0.0.1', '-p', String(port), '--cafile', ca.cert, '--cert', alice.cert, '--key', alice.key, '-t', t, '-m', 'by-cert', '-q', '1']);
    assert.equal(r.code, 0, `mosquitto_pub with a client certificate: ${r.out}`);
    await sub.inbox.waitForPayload('by-cert');
    // The same client without a certificate is anonymous, and anonymous is refused.
    await assert.rejects(clients.mqtt(broker.port), (err: { code?: number }) => err.code === 5);
  });

  it('a certificate without a CN names nobody: CONNACK 5 (not authorized)', async () => {
    await assert.rejects(withCert(noCn), (err: { code?: number }) => err.code === 5);
  });
});

describe('33 TLS settings checked at start', () => {
  it('flags that do not fit together exit 2 with one line naming what is missing', async () => {
    const cases: [string[], RegExp][] = [
      [['--tls-port', '0'], /--tls-port needs --cert and --key/],
      [['--wss-port', '0', '--cert', server.cert], /--wss-port needs --cert and --key/],
      [['--tls-port', '0', '--cert', server.cert, '--key', server.key, '--require-certificate', 'true'], /--require-certificate true needs --ca/],
      [['--use-identity-as-username', 'true'], /--use-identity-as-username true needs --require-certificate true/],
      [['--ws-port', '0', '--ws-path', 'mqtt'], /--ws-path must start with "\/"/],
      [['--listeners', '[{"transport":"quic","port":1}]'], /--listeners\[0\]\.transport: expected one of tcp, tls, ws, wss/],
      [['--listeners', '[{"transport":"tls","port":0}]'], /listeners\[0\]: a tls listener needs "cert" and "key"/],
      [['--listeners', '[{"transport":"tcp","port":0,"host":"0.0.0.0"}]'], /listeners\[0\]\.host 0\.0\.0\.0 without authentication/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(['--port', '0', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
  });

  it('a key that does not match the certificate, or a missing file, stops the start with exit 1 and says which', async () => {
    const mismatch = await runCli(['--port', '0', '--durability', 'none', '--tls-port', '0', '--cert', server.cert, '--key', alice.key]);
    assert.equal(mismatch.code, 1, mismatch.stderr);
    assert.match(mismatch.stderr, /cannot start: --cert .* --key .*: .*key values mismatch/i);
    const missing = await runCli(['--port', '0', '--durability', 'none', '--tls-port', '0', '--cert', path.join(dir, 'absent.crt'), '--key', server.key]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /cannot start: --cert .*absent\.crt: cannot read: ENOENT/);
  });
});
