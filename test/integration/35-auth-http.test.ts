// 35: the HTTP auth callout (--auth-http-url) against a real HTTP server in this test.
//
// - allow (the request carries client id, username, password, address, listener, version),
//   deny -> 0x86 / 4, ignore -> the next method of --auth-chain (a password file here), a 4xx ->
//   ignore, anonymous -> 0x87 / 5 when nothing accepts it.
// - slow (past --auth-http-timeout-ms) and down (nothing listening) -> "server unavailable"
//   0x88 / 3 (fail closed), and with --auth-http-when-down ignore the next method decides.
// - The cache: a second CONNECT with the same credentials asks nobody (counted as a hit); a
//   deny is cached shorter. Coalescing: N concurrent CONNECTs with the same credentials -> one
//   request.
// - Superuser bypasses the ACL file; an ACL list in the answer decides SUBSCRIBE, PUBLISH and
//   delivery before the ACL file, which decides what the list does not match.
// - Bounds: requests in flight (--auth-http-max-inflight, then 0x89) and cache entries (oldest
//   out, counted).
// - A TLS connection relayed to its session's worker is asked about with its real address and
//   listener (and hits the cache).
// - Counted in /metrics (fleetmq_auth_http_*); refusals logged with the address, no password.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IConnackPacket, IPubackPacket, IPublishPacket } from 'mqtt-packet';
import { launchBroker, freePort, Broker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';
import { AuthServer, type CalloutBody, type Answer } from '../helpers/auth-server';
import { waitUntil, onceEvent } from '../helpers/wait';
import { connectClient, end } from '../helpers/clients';
import { makeCa, issue } from '../helpers/certs';
import * as net from 'node:net';
import { hashPassword } from '../../src/auth/password-file';
import { findRecords } from '../helpers/log-lines';
import { metric } from '../helpers/metrics';

const fleetmqPasswdLine = (user: string, password: string): string => `${user}:${hashPassword(Buffer.from(password))}`;

let dir: string;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-auth-http-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

type Creds = { username?: string; password?: string; clientId?: string };
const id = (p: string) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

/** A raw CONNECT; the CONNACK's code (v5 reason code / v3 return code). */
async function code(port: number, version: 4 | 5, creds: Creds): Promise<number> {
  const c = await RawClient.connect(port, version);
  try {
    const ack: IConnackPacket = await c.handshake({ clientId: creds.clientId ?? id(`h${version}`), username: creds.username, password: creds.password === undefined ? undefined : Buffer.from(creds.password) });
    return (version === 5 ? ack.reasonCode : ack.returnCode) ?? -1;
  } finally { c.destroy(); }
}


/** What the test server answers, by username. */
function answers(b: CalloutBody): Answer {
  switch (b.username) {
    case 'alice': return { body: { result: 'allow', is_superuser: false } };
    case 'mallory': return { body: { result: 'deny' } };
    case 'pat': return { body: { result: 'ignore' } };
    case 'gone': return { status: 404 };
    case 'oops': return { status: 500 };
    case 'slow': return { body: { result: 'allow' }, delayMs: 4000 };
    case 'coal': return { body: { result: 'allow' }, delayMs: 400 };
    case 'super': return { body: { result: 'allow', is_superuser: true } };
    case 'ruled': return {
      body: {
        result: 'allow',
        acl: [
          { permission: 'allow', action: 'publish', topic: 'in/${clientid}' },
          { permission: 'deny', action: 'subscribe', topic: 'out/private/#' },
          { permission: 'allow', action: 'subscribe', topic: 'out/#' },
        ],
      },
    };
    default: return { body: { result: 'ignore' } };
  }
}

describe('HTTP auth callout, chain http then password file, ACL file behind', () => {
  let server: AuthServer;
  let b: Broker;
  before(async () => {
    server = await AuthServer.start(answers);
    const pw = path.join(dir, 'users.pw');
    fs.writeFileSync(pw, `${fleetmqPasswdLine('pat', 'pat-secret')}\n`);
    const acl = path.join(dir, 'acl');
    fs.writeFileSync(acl, 'pattern readwrite shared/%u/#\n');
    b = await launchBroker(2, ['--auth-http-url', server.url, '--auth-chain', 'http,file', '--password-file', pw, '--acl-file', acl,
      '--auth-http-timeout-ms', '1500', '--auth-http-cache-ttl-ms', '600000', '--auth-http-deny-cache-ttl-ms', '0', '--durability', 'none']);
  });
  after(async () => { await b?.kill(); await server?.close(); });

  test('allow, deny 0x86 / 4, ignore and 4xx to the next method, 5xx fails closed, anonymous 0x87 / 5', { timeout: 120000 }, async () => {
    assert.match(b.output(), /authentication chain http, file .*anonymous clients refused/);
    for (const v of [4, 5] as const) {
      assert.equal(await code(b.port, v, { username: 'alice', password: `alice-pw-${v}` }), 0, `v${v} alice allowed`);
      assert.equal(await code(b.port, v, { username: 'mallory', password: 'mallory-pw' }), v === 5 ? 0x86 : 4, `v${v} mallory denied`);
      assert.equal(await code(b.port, v, { username: 'pat', password: 'pat-secret' }), 0, `v${v} pat: ignored, then the password file`);
      assert.equal(await code(b.port, v, { username: 'pat', password: 'not-pats' }), v === 5 ? 0x86 : 4, `v${v} pat, wrong password`);
      assert.equal(await code(b.port, v, { username: 'gone', password: 'gone-pw' }), v === 5 ? 0x86 : 4, `v${v} 404 = ignore, nobody else knows gone`);
      assert.equal(await code(b.port, v, { username: 'oops', password: 'oops-pw' }), v === 5 ? 0x88 : 3, `v${v} 500 = down, fail closed`);
      assert.equal(await code(b.port, v, {}), v === 5 ? 0x87 : 5, `v${v} anonymous`);
    }
    // What the server was told.
    const r = server.requests.find((q) => q.username === 'alice')!;
    assert.equal(r.password, 'alice-pw-4');
    assert.equal(r.peerhost, '127.0.0.1');
    assert.equal(r.listener, 'tcp');
    assert.equal(r.protocol, 'mqtt');
    assert.ok(r.proto_ver === 4 && typeof r.clientid === 'string' && r.clientid.startsWith('h4-') && r.peerport > 0, JSON.stringify(r));
    assert.ok(server.requests.some((q) => q.username === null && q.password === null), 'the anonymous CONNECT was asked about too');
    const out = b.output();
    assert.ok(findRecords(out, { msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: 'mallory', reason: /^denied by the auth server/ }).length > 0, 'the refusal of mallory is logged with the address');
    assert.ok(findRecords(out, { msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: 'oops', reason: /^auth server unavailable: HTTP 500/ }).length > 0, 'the refusal of oops is logged with the address');
    for (const secret of ['alice-pw-4', 'mallory-pw', 'not-pats', 'oops-pw', 'pat-secret']) assert.ok(!out.includes(secret), `a password in the log (${secret}):\n${out}`);
  });

  test('a slow server times out: 0x88 / 3 within the timeout, counted as an error', { timeout: 60000 }, async () => {
    const errors = await metric(b, 'fleetmq_auth_http_errors_total');
    for (const v of [4, 5] as const) {
      const t0 = Date.now();
      assert.equal(await code(b.port, v, { username: 'slow', password: `slow-${v}` }), v === 5 ? 0x88 : 3, `v${v} slow`);
      // The CONNACK came from the timeout, not from the server's late answer (4 s).
      assert.ok(Date.now() - t0 < 4000, `the timeout did not cut the request short (${Date.now() - t0} ms)`);
    }
    assert.ok(await metric(b, 'fleetmq_auth_http_errors_total') >= errors + 2, 'timeouts counted');
  });

  test('cache: the same credentials again ask nobody (hit counted); denials are not cached with a 0 TTL', { timeout: 60000 }, async () => {
    const hits = await metric(b, 'fleetmq_auth_http_cache_hits_total');
    const requests = await metric(b, 'fleetmq_auth_http_requests_total');
    const clientId = id('cached');
    assert.equal(await code(b.port, 5, { username: 'alice', password: 'cache-pw', clientId }), 0);
    const asked = server.requests.length;
    assert.equal(await code(b.port, 5, { username: 'alice', password: 'cache-pw', clientId }), 0);
    assert.equal(await code(b.port, 5, { username: 'alice', password: 'cache-pw', clientId }), 0);
    assert.equal(server.requests.length, asked, 'a cached answer made a request');
    assert.ok(await metric(b, 'fleetmq_auth_http_cache_hits_total') >= hits + 2, 'cache hits counted');
    assert.equal(await metric(b, 'fleetmq_auth_http_requests_total'), requests + 1, 'one request counted');
    // Another password is another question.
    assert.equal(await code(b.port, 5, { username: 'alice', password: 'other-pw', clientId }), 0);
    assert.equal(server.requests.length, asked + 1);
    const before = server.count('mallory');
    await code(b.port, 5, { username: 'mallory', password: 'again-pw', clientId: 'mal' });
    await code(b.port, 5, { username: 'mallory', password: 'again-pw', clientId: 'mal' });
    assert.equal(server.count('mallory'), before + 2, '--auth-http-deny-cache-ttl-ms 0: each denial asked again');
  });

  test('superuser bypasses the ACL file; an answer\'s ACL list decides before it', { timeout: 60000 }, async () => {
    const sup = await rawSession(b.port, 5, { clientId: id('super'), username: 'super', password: Buffer.from('super-pw') });
    const aliceId = id('alice');
    const alice = await rawSession(b.port, 5, { clientId: aliceId, username: 'alice', password: Buffer.from('alice-acl-pw') });
    const ruledId = id('ruled');
    const ruled = await rawSession(b.port, 5, { clientId: ruledId, username: 'ruled', password: Buffer.from('ruled-pw') });
    try {
      // The ACL file lets alice at shared/alice/# only; the superuser anywhere.
      assert.deepEqual((await alice.subscribe('secret/#', 0, 1)).granted, [0x87], 'alice, no rules of her own: the file refuses secret/#');
      assert.deepEqual((await alice.subscribe('shared/alice/#', 0, 2)).granted, [0], 'the file\'s %u pattern');
      assert.deepEqual((await sup.subscribe('secret/#', 0, 1)).granted, [0], 'superuser: no ACL');
      // The list: out/private/# denied, out/# allowed; in/<its client id> writable.
      assert.deepEqual((await ruled.subscribe('out/private/#', 0, 1)).granted, [0x87], 'deny rule covers the filter');
      assert.deepEqual((await ruled.subscribe('out/#', 0, 2)).granted, [0], 'allow rule');
      assert.deepEqual((await ruled.subscribe('shared/ruled/#', 0, 3)).granted, [0], 'no rule matches: the ACL file decides');
      assert.deepEqual((await ruled.subscribe('secret/#', 0, 4)).granted, [0x87], 'no rule matches, the file refuses');
      // Delivery: the superuser publishes (its writes are not checked either).
      for (const t of ['out/private/a', 'out/public', 'secret/x']) sup.send({ cmd: 'publish', topic: t, payload: Buffer.from(t), qos: 0, retain: false, dup: false } as IPublishPacket);
      await sup.ping();
      await ruled.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).topic === 'out/public', 'out/public delivered');
      await ruled.ping();
      const got = ruled.publishes().map((p) => p.topic);
      assert.deepEqual(got.filter((t) => t.startsWith('out/')), ['out/public'], `a wildcard subscriber got a denied topic: ${got}`);
      // PUBLISH by the list: in/<client id> allowed, in/other falls to the file, which refuses: 0x87.
      ruled.send({ cmd: 'publish', topic: `in/${ruledId}`, payload: Buffer.from('x'), qos: 1, messageId: 11, retain: false, dup: false } as IPublishPacket);
      const ok = await ruled.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === 11, 'PUBACK 11');
      assert.equal(ok.reasonCode ?? 0, 0);
      ruled.send({ cmd: 'publish', topic: 'in/other', payload: Buffer.from('x'), qos: 1, messageId: 12, retain: false, dup: false } as IPublishPacket);
      const no = await ruled.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === 12, 'PUBACK 12');
      assert.equal(no.reasonCode, 0x87);
    } finally { sup.destroy(); alice.destroy(); ruled.destroy(); }
  });
});

describe('HTTP auth server down', () => {
  test('nothing listening: fail closed 0x88 / 3, logged with the address; --auth-http-when-down ignore asks the next method', { timeout: 120000 }, async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/auth`;
    const closed = await launchBroker(1, ['--auth-http-url', url, '--durability', 'none']);
    try {
      for (const v of [4, 5] as const) assert.equal(await code(closed.port, v, { username: 'u', password: 'down-pw' }), v === 5 ? 0x88 : 3, `v${v}`);
      assert.ok(findRecords(closed.output(), { msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: 'u', reason: /^auth server unavailable: ECONNREFUSED/ }).length > 0, closed.output());
      assert.ok(!closed.output().includes('down-pw'));
      assert.ok(await metric(closed, 'fleetmq_auth_http_errors_total') >= 2);
    } finally { await closed.kill(); }
    const pw = path.join(dir, 'down.pw');
    fs.writeFileSync(pw, `${fleetmqPasswdLine('pat', 'pat-secret')}\n`);
    const open = await launchBroker(1, ['--auth-http-url', url, '--auth-http-when-down', 'ignore', '--password-file', pw, '--durability', 'none']);
    try {
      assert.equal(await code(open.port, 5, { username: 'pat', password: 'pat-secret' }), 0, 'the password file after the down server');
      assert.equal(await code(open.port, 5, { username: 'pat', password: 'wrong' }), 0x86);
      assert.equal(await code(open.port, 4, { username: 'u', password: 'down-pw' }), 4, 'nobody accepts: bad credentials');
    } finally { await open.kill(); }
  });
});

describe('in-flight requests', () => {
  // One worker: concurrent CONNECTs with one client id on several workers race in the session
  // takeover, which is not what this test is about.
  test('coalescing: 8 concurrent CONNECTs with the same credentials make one request', { timeout: 60000 }, async () => {
    const server = await AuthServer.start(answers);
    const b = await launchBroker(1, ['--auth-http-url', server.url, '--durability', 'none']);
    try {
      const clientId = id('coal');
      const codes = await Promise.all(Array.from({ length: 8 }, () => code(b.port, 5, { username: 'coal', password: 'coal-pw', clientId })));
      // Each got its CONNACK (later ones take the session over from earlier ones).
      assert.deepEqual(codes, Array(8).fill(0));
      assert.equal(server.count('coal'), 1, `${server.count('coal')} requests for one set of credentials`);
      const shared = await metric(b, 'fleetmq_auth_http_coalesced_total') + await metric(b, 'fleetmq_auth_http_cache_hits_total');
      assert.ok(shared >= 7, `coalesced + cache hits: ${shared}`);
    } finally { await b.kill(); await server.close(); }
  });

  test('--auth-http-max-inflight 1: a second distinct check while one is in flight is "server busy" 0x89, counted', { timeout: 60000 }, async () => {
    const server = await AuthServer.start(() => ({ body: { result: 'allow' }, delayMs: 1500 }));
    const b = await launchBroker(1, ['--auth-http-url', server.url, '--auth-http-max-inflight', '1', '--durability', 'none']);
    try {
      const first = code(b.port, 5, { username: 'one', password: 'p1' });
      await waitUntil(() => server.requests.length === 1, 'the first request at the server');
      assert.equal(await code(b.port, 5, { username: 'two', password: 'p2' }), 0x89);
      assert.equal(await first, 0);
      assert.equal(await metric(b, 'fleetmq_auth_http_inflight_full_total'), 1);
    } finally { await b.kill(); await server.close(); }
  });
});

describe('cache bound', () => {
  test('--auth-http-cache-entries 1: a second answer pushes the first out (counted), which is asked again', { timeout: 60000 }, async () => {
    const server = await AuthServer.start(() => ({ body: { result: 'allow' } }));
    const b = await launchBroker(1, ['--auth-http-url', server.url, '--auth-http-cache-entries', '1', '--durability', 'none']);
    try {
      const a = { username: 'a', password: 'pa', clientId: 'ca' };
      assert.equal(await code(b.port, 5, a), 0);
      assert.equal(await code(b.port, 5, a), 0);
      assert.equal(server.count('a'), 1, 'cached');
      assert.equal(await code(b.port, 5, { username: 'b', password: 'pb', clientId: 'cb' }), 0);
      assert.equal(await metric(b, 'fleetmq_auth_http_cache_evicted_total'), 1);
      assert.equal(await code(b.port, 5, a), 0);
      assert.equal(server.count('a'), 2, 'evicted, so asked again');
    } finally { await b.kill(); await server.close(); }
  });
});

describe('a TLS connection relayed to the worker that owns its session', () => {
  test('the owner asks with the client\'s real address and listener, and finds the answer cached', { timeout: 180000 }, async () => {
    const certDir = fs.mkdtempSync(path.join(dir, 'tls-'));
    const ca = makeCa(certDir, 'ca');
    const cert = issue(ca, 'server', '/CN=localhost', '1001', 'server');
    const server = await AuthServer.start(() => ({ body: { result: 'allow' } }));
    const b = await launchBroker(2, ['--auth-http-url', server.url, '--tls-port', '0', '--cert', cert.cert, '--key', cert.key, '--durability', 'none']);
    const fillers: net.Socket[] = [];
    try {
      const tlsPort = Number(b.output().match(/tls listener on [^\s]+:(\d+)/)![1]);
      const clientId = id('relayed');
      const creds = { username: 'tls-user', password: 'tls-pw', clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
      const mqtts = () => connectClient(tlsPort, { protocol: 'mqtts', ca: fs.readFileSync(ca.cert), servername: 'localhost', ...creds });
      await end((await mqtts()).client);
      // The owner is the least-loaded worker once the client left; an idle connection lands
      // there first, so a reconnect goes to the other worker and is relayed (as test 33).
      for (let round = 0; round < 8 && await metric(b, 'fleetmq_connections_relayed_total') === 0; round++) {
        if (round % 2 === 0) {
          const f = net.connect(b.port, '127.0.0.1');
          fillers.push(f);
          await onceEvent(f, 'connect', 'a filler connection');
        }
        const again = await mqtts();
        assert.equal(again.connack.sessionPresent, true, `round ${round}: session present`);
        await end(again.client);
      }
      assert.ok(await metric(b, 'fleetmq_connections_relayed_total') >= 1, 'no reconnect was relayed');
      const mine = server.requests.filter((r) => r.clientid === clientId);
      assert.deepEqual([...new Set(mine.map((r) => `${r.listener} ${r.peerhost}`))], ['tls 127.0.0.1'], JSON.stringify(mine));
      assert.equal(mine.length, 1, 'every later check, the relayed one too, was a cache hit');
    } finally {
      for (const f of fillers) f.destroy();
      await b.kill();
      await server.close();
    }
  });
});
