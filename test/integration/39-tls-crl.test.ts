// 39: certificate revocation lists on TLS listeners (--crl, a listener's "crl").
//
// CRLs are made by the real `openssl ca` (test/helpers/certs.ts); clients are Node's tls with
// client certificates, then MQTT over the TLS socket.
// - With --require-certificate and --crl, a revoked client certificate fails the handshake
//   (counted as a TLS refusal); one not revoked is served.
// - SIGHUP reloads the CRL with the certificates: a certificate revoked since is refused for
//   new connections, also when the client offers a TLS session ticket from before (resuming
//   would skip the certificate check); an open connection of it keeps working.
// - A listener's own "crl" applies to that listener only.
// - A CRL file that is not a CRL stops the start with a line naming it (exit 1); --crl without
//   --ca is a configuration error (exit 2).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { launchBroker, makeTempDir, removeDir, runCli, type Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { makeCa, issue, makeCrl, type Ca, type Issued } from '../helpers/certs';
import { connectPacket, encode, decodeAll, connackCode } from '../helpers/raw-client';
import { request } from '../helpers/http';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { uid } from '../helpers/ids';
import { delay, WAIT_MS } from '../helpers/wait';

let dir: string;
let ca: Ca;
let server: Issued;
let alice: Issued;
let bob: Issued;
const brokers: Broker[] = [];
const open: tls.TLSSocket[] = [];

before(() => {
  dir = makeTempDir('fleetmq-crl-');
  ca = makeCa(dir, 'ca');
  server = issue(ca, 'server', '/CN=localhost', '3001', 'server');
  alice = issue(ca, 'alice', '/CN=alice', '3a01', 'client');
  bob = issue(ca, 'bob', '/CN=bob', '3b01', 'client');
});

after(async () => {
  for (const s of open) s.destroy();
  await Promise.all(brokers.map((b) => b.stop().catch(() => undefined)));
  removeDir(dir);
});

/** A TLS connection with `who`'s certificate: the socket once the handshake is done, or the error. */
function tlsConnect(port: number, who: Issued, session?: Buffer): Promise<tls.TLSSocket | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(ca.cert), cert: fs.readFileSync(who.cert), key: fs.readFileSync(who.key), ...(session ? { session } : {}) });
    const t = setTimeout(() => { s.destroy(); resolve(new Error('no TLS result within the wait')); }, WAIT_MS);
    // TLS 1.3: a refused client certificate shows after the client's side finished, as an
    // alert that closes the connection. Served means: an MQTT CONNACK comes back.
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const ps = decodeAll(got, 4);
      if (ps.length > 0) { clearTimeout(t); resolve(connackCode(ps[0] as never) === 0 ? s : new Error(`CONNACK ${JSON.stringify(ps[0])}`)); }
    });
    s.once('secureConnect', () => { s.write(encode(connectPacket(4, { clientId: uid('crl') }), 4)); });
    s.once('error', (err) => { clearTimeout(t); s.destroy(); resolve(err); });
    s.once('close', () => { clearTimeout(t); resolve(new Error('closed before a CONNACK')); });
  });
}

async function served(port: number, who: Issued, session?: Buffer): Promise<tls.TLSSocket> {
  const r = await tlsConnect(port, who, session);
  if (r instanceof Error) throw new Error(`expected ${path.basename(who.cert)} to be served: ${r.message}`);
  open.push(r);
  return r;
}

async function refused(port: number, who: Issued, session?: Buffer): Promise<void> {
  const r = await tlsConnect(port, who, session);
  if (!(r instanceof Error)) { r.destroy(); assert.fail(`expected ${path.basename(who.cert)} to be refused, it was served`); }
}

async function tlsRefusals(b: Broker): Promise<number> {
  const port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
  return sampleValue(parsePromText((await request(port, '/metrics')).body), 'fleetmq_connections_refused_total', { reason: 'tls' });
}

async function tlsPortOf(b: Broker, nth = 1): Promise<number> {
  await b.waitForOutput(/fleetmq: tls listener on/);
  const all = [...b.output().matchAll(/fleetmq: tls listener on [^\s:]+:(\d+)/g)];
  return Number(all[nth - 1][1]);
}

describe('--crl', () => {
  let b: Broker;
  let port: number;
  let crl: string;
  before(async () => {
    crl = makeCrl(ca, [bob], path.join(dir, 'revoked.pem'));
    b = await launchBroker(2, ['--durability', 'none', '--tls-port', '0', '--cert', server.cert, '--key', server.key, '--ca', ca.cert,
      '--require-certificate', 'true', '--crl', crl]);
    brokers.push(b);
    port = await tlsPortOf(b);
  });

  it('refuses a revoked client certificate at the handshake and serves the others', async () => {
    const before = await tlsRefusals(b);
    await served(port, alice);
    await refused(port, bob);
    const deadline = Date.now() + WAIT_MS;
    while (await tlsRefusals(b) <= before && Date.now() < deadline) await delay(50);
    assert.ok(await tlsRefusals(b) > before, 'the refused handshake is counted');
  });

  it('SIGHUP reloads the CRL: revoked since = refused, even with a session ticket; open connections go on', async () => {
    // A session ticket from a full handshake (TLS 1.3 sends it after the handshake).
    const first = await new Promise<{ s: tls.TLSSocket; ticket: Buffer }>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(ca.cert), cert: fs.readFileSync(alice.cert), key: fs.readFileSync(alice.key) });
      open.push(s);
      const t = setTimeout(() => reject(new Error('no session ticket within the wait')), WAIT_MS);
      s.once('session', (ticket: Buffer) => { clearTimeout(t); resolve({ s, ticket }); });
      s.once('error', (err) => { clearTimeout(t); reject(err); });
    });
    // Before the reload the ticket resumes.
    const resumed = await served(port, alice, first.ticket);
    assert.ok(resumed.isSessionReused(), 'the ticket resumes a session while the CRL is unchanged');

    makeCrl(ca, [bob, alice], crl);
    const reloads = () => (b.output().match(/SIGHUP: .*certificates reloaded for new connections/g) ?? []).length;
    const n = reloads();
    b.proc.kill('SIGHUP');
    const deadline = Date.now() + WAIT_MS;
    while (reloads() === n && Date.now() < deadline) await delay(20);
    assert.equal(reloads(), n + 1, `the reload is logged: ${b.output()}`);

    await refused(port, alice);
    await refused(port, alice, first.ticket);
    // The connection made before the reload is untouched: it still answers a PINGREQ.
    let pong = false;
    first.s.on('data', (d: Buffer) => { if (decodeAll(d, 4).some((p) => p.cmd === 'pingresp')) pong = true; });
    first.s.write(encode(connectPacket(4, { clientId: uid('old') }), 4));
    first.s.write(encode({ cmd: 'pingreq' }, 4));
    const until = Date.now() + WAIT_MS;
    while (!pong && Date.now() < until) await delay(20);
    assert.ok(pong, 'an open connection keeps working after the CRL reload');
  });
});

describe('a listener\'s own crl', () => {
  it('applies to that listener only', async () => {
    const crl = makeCrl(ca, [bob], path.join(dir, 'listener.pem'));
    const b = await launchBroker(1, ['--durability', 'none', '--tls-port', '0', '--cert', server.cert, '--key', server.key, '--ca', ca.cert,
      '--require-certificate', 'true', '--listeners', JSON.stringify([{ transport: 'tls', port: 0, crl }])]);
    brokers.push(b);
    const plain = await tlsPortOf(b, 1);
    const withCrl = await tlsPortOf(b, 2);
    await served(plain, bob);
    await refused(withCrl, bob);
    await served(withCrl, alice);
  });
});

describe('bad CRL settings', () => {
  it('a file that is not a CRL stops the start with a line naming it; --crl without --ca is exit 2', async () => {
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, '-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n');
    const r = await runCli(['--port', '0', '--durability', 'none', '--tls-port', '0', '--cert', server.cert, '--key', server.key, '--ca', ca.cert, '--crl', junk]);
    assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
    assert.match(r.stderr, /--crl .*junk\.pem/);
    const missing = await runCli(['--port', '0', '--durability', 'none', '--tls-port', '0', '--cert', server.cert, '--key', server.key, '--crl', junk]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--crl needs --ca/);
  });
});
