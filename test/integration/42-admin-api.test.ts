// 42: the admin API (/api/v1 on the HTTP listener) and the banned list, against a real broker
// process with 2 workers, keys made by `fleetmq apikey`, real mqtt.js clients and raw clients.
//
// - 401 (with WWW-Authenticate) without a key, with a wrong secret, with an unknown name, and
//   without --api-keys-file at all; 403 for a read key on DELETE / POST / PUT.
// - Clients: a filtered list paged 2 at a time over 5 clients on both workers; look up; a kick
//   the v5 client sees as DISCONNECT 0x98 (v3: closed); subscriptions.
// - Retained: list by filter, read, delete (a new subscriber then gets only the one left).
// - Publish through the API reaches a v5 subscriber with its QoS and user properties.
// - Banned: client id from --banned-file (v5 0x8A, v3 5), username / client id / CIDR added
//   through the API (a connected client the new ban names is disconnected with 0x98), removed
//   again; a username added to the file and picked up by SIGHUP; counted in /metrics.
// - POST reload reads a key added to the file since; PUT log-level changes what is logged (a
//   connect is an info record: gone at warn, back at info). (/readyz 503 while draining: test 32.)
import { describe, test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IConnackPacket } from 'mqtt-packet';
import { launchBroker, runCli, makeTempDir, removeDir, Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { clientPool, subscribe, publish, end } from '../helpers/clients';
import { request, basic, type HttpAnswer } from '../helpers/http';
import { connackCode } from '../helpers/raw-client';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { waitUntil, onceEvent, WAIT_MS } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { crashLines } from '../helpers/proc';

/** mqtt.js's client is an EventEmitter whose typings do not say so. */
const emitter = (c: unknown): NodeJS.EventEmitter => c as NodeJS.EventEmitter;

let dir: string;
before(() => { dir = makeTempDir('fleetmq-admin-'); });
after(() => removeDir(dir));

/** `fleetmq apikey FILE NAME ROLE`: the secret is stdout's one line. */
async function makeKey(file: string, name: string, role: string): Promise<string> {
  const r = await runCli(['apikey', file, name, role]);
  assert.equal(r.code, 0, `fleetmq apikey: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`key "${name}" \\(${role}\\)`));
  const secret = r.stdout.trim();
  assert.match(secret, /^[A-Za-z0-9_-]{32}$/);
  assert.ok(!fs.readFileSync(file, 'utf8').includes(secret), 'the secret itself is never written to the file');
  return secret;
}

describe('42 admin API with --api-keys-file and --banned-file, --workers 2', () => {
  let b: Broker;
  let http: number;
  let keysFile: string;
  let bannedFile: string;
  let admin: { authorization: string };
  let reader: { authorization: string };
  const pool = clientPool('afterEach');

  const api = (p: string, opts: { method?: string; key?: { authorization: string } | null; body?: unknown } = {}): Promise<HttpAnswer> =>
    request(http, `/api/v1/${p}`, {
      method: opts.method,
      headers: { ...(opts.key === null ? {} : opts.key ?? admin), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  const ok = async (p: string, opts: Parameters<typeof api>[1] = {}, status = 200): Promise<any> => {
    const r = await api(p, opts);
    assert.equal(r.status, status, `${opts.method ?? 'GET'} /api/v1/${p}: ${r.status} ${r.body}`);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    return JSON.parse(r.body);
  };

  before(async () => {
    keysFile = path.join(dir, 'api-keys');
    bannedFile = path.join(dir, 'banned');
    admin = basic('ops', await makeKey(keysFile, 'ops', 'admin'));
    reader = basic('dash', await makeKey(keysFile, 'dash', 'read'));
    fs.writeFileSync(bannedFile, '# banned at start\nclientid file-banned\n');
    b = await launchBroker(2, ['--durability', 'none', '--api-keys-file', keysFile, '--banned-file', bannedFile]);
    http = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
  });
  after(async () => {
    if (b) assert.equal(await b.stop(), 0, `broker exit code; output:\n${b.output()}`);
    if (b) assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
  });

  test('401 with WWW-Authenticate without a key, with a wrong secret or an unknown name; 403 for a read key on a write', { timeout: 60000 }, async () => {
    for (const key of [null, basic('ops', 'wrong-secret'), basic('nobody', 'x'), { authorization: 'Bearer abc' }]) {
      const r = await api('clients', { key });
      assert.equal(r.status, 401, `${JSON.stringify(key)}: ${r.body}`);
      assert.match(String(r.headers['www-authenticate']), /^Basic realm="fleetmq admin API"/);
    }
    assert.equal((await api('clients', { key: reader })).status, 200);
    for (const [method, p, body] of [['DELETE', 'clients/someone', undefined], ['POST', 'publish', { topic: 'x', payload: 'y' }],
      ['POST', 'banned', { kind: 'clientid', value: 'z' }], ['POST', 'reload', undefined], ['PUT', 'log-level', { level: 'debug' }]] as const) {
      const r = await api(p, { method, key: reader, body });
      assert.equal(r.status, 403, `${method} ${p} with a read key: ${r.status} ${r.body}`);
    }
    assert.equal((await api('no-such-endpoint')).status, 404);
    assert.equal((await api('stats', { method: 'DELETE' })).status, 405);
  });

  test('clients: filtered and paged 2 at a time over both workers; look up; subscriptions', { timeout: 60000 }, async () => {
    const prefix = uid('page');
    const ids = Array.from({ length: 5 }, (_, i) => `${prefix}-${i}`);
    for (const [i, clientId] of ids.entries()) {
      const { client } = await pool.connect(b, { clientId, protocolVersion: i % 2 ? 5 : 4, username: i === 0 ? `user-${prefix}` : undefined });
      if (i === 0) await subscribe(client, { 'a/+': { qos: 1 }, 'b/#': { qos: 0 } });
    }
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    const workers = new Set<number>();
    while (cursor !== null) {
      const page: any = await ok(`clients?clientid=${encodeURIComponent(prefix)}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: reader });
      assert.ok(page.data.length <= 2);
      for (const c of page.data) { seen.push(c.clientId); workers.add(c.worker); }
      cursor = page.next;
      pages++;
      assert.ok(pages <= 5, 'paging ends');
    }
    assert.deepEqual(seen, ids, 'every client once, in client id order');
    assert.equal(pages, 3);
    assert.equal(workers.size, 2, 'clients on both workers are listed');

    const byUser: any = await ok(`clients?username=${encodeURIComponent(`user-${prefix}`)}`);
    assert.deepEqual(byUser.data.map((c: { clientId: string }) => c.clientId), [ids[0]]);
    const byAddr: any = await ok(`clients?address=127.0.0.&clientid=${encodeURIComponent(prefix)}`);
    assert.equal(byAddr.data.length, 5);
    assert.equal((await ok(`clients?address=10.&clientid=${encodeURIComponent(prefix)}`)).data.length, 0);
    assert.equal((await api('clients?limit=0')).status, 400);
    assert.equal((await api('clients?limit=100000')).status, 400);

    const one: any = await ok(`clients/${encodeURIComponent(ids[1])}`);
    assert.equal(one.clientId, ids[1]);
    assert.equal(one.connected, true);
    assert.equal(one.protocolVersion, 5);
    assert.equal(one.address, '127.0.0.1');
    assert.equal((await api(`clients/${uid('nobody')}`)).status, 404);

    const subs: any = await ok(`clients/${encodeURIComponent(ids[0])}/subscriptions`);
    assert.deepEqual(subs.data.map((s: { filter: string; qos: number }) => [s.filter, s.qos]), [['a/+', 1], ['b/#', 0]]);
    const subsPage: any = await ok(`clients/${encodeURIComponent(ids[0])}/subscriptions?limit=1`);
    assert.equal(subsPage.data.length, 1);
    assert.notEqual(subsPage.next, null);
  });

  test('kick: a v5 client sees DISCONNECT 0x98, a v3 client is closed; kicking again is 404', { timeout: 60000 }, async () => {
    const v5id = uid('kick5');
    const v3id = uid('kick3');
    const { client: c5 } = await pool.connect(b, { clientId: v5id, protocolVersion: 5 });
    const { client: c3 } = await pool.connect(b, { clientId: v3id, protocolVersion: 4 });
    const disconnect = onceEvent<{ reasonCode?: number }>(emitter(c5), 'disconnect', 'DISCONNECT from the broker');
    assert.deepEqual(await ok(`clients/${encodeURIComponent(v5id)}`, { method: 'DELETE' }), { kicked: v5id });
    assert.equal((await disconnect).reasonCode, 0x98, 'administrative action [MQTT5-3.14.2.1]');
    const closed = onceEvent(emitter(c3), 'close', 'v3 client closed');
    await ok(`clients/${encodeURIComponent(v3id)}`, { method: 'DELETE' });
    await closed;
    await waitUntil(() => !c5.connected, 'v5 client closed');
    assert.equal((await api(`clients/${encodeURIComponent(v5id)}`, { method: 'DELETE' })).status, 404);
    const stats: any = await ok('stats', { key: reader });
    assert.ok(stats['clients/disconnected/admin'] >= 2, JSON.stringify(stats));
  });

  test('retained: list by filter, read, delete; a new subscriber then gets only the one left', { timeout: 60000 }, async () => {
    const base = utopic('ret');
    const { client } = await pool.connect(b);
    await publish(client, `${base}/one`, 'first', { qos: 1, retain: true });
    await publish(client, `${base}/two`, Buffer.from([0xff, 0x00, 0x01]), { qos: 1, retain: true });
    // The worker hands a retained message to the coordinator after its PUBACK may have gone:
    // the list catches up within a bounded wait.
    let list: any;
    const deadline = Date.now() + WAIT_MS;
    while ((list = await ok(`retained?filter=${encodeURIComponent(`${base}/#`)}`)).total < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(list.total, 2);
    assert.deepEqual(list.data.map((m: { topic: string }) => m.topic), [`${base}/one`, `${base}/two`]);
    const paged: any = await ok(`retained?filter=${encodeURIComponent(`${base}/+`)}&limit=1`);
    assert.equal(paged.data.length, 1);
    const rest: any = await ok(`retained?filter=${encodeURIComponent(`${base}/+`)}&limit=1&cursor=${paged.next}`);
    assert.deepEqual(rest.data.map((m: { topic: string }) => m.topic), [`${base}/two`]);
    assert.equal(rest.next, null);
    const one: any = await ok(`retained/${encodeURIComponent(`${base}/one`)}`, { key: reader });
    assert.equal(one.payload, 'first');
    assert.equal(one.qos, 1);
    const two: any = await ok(`retained/${encodeURIComponent(`${base}/two`)}`);
    assert.equal(two.payload, null, 'not UTF-8: base64 only');
    assert.equal(two.payloadBase64, Buffer.from([0xff, 0x00, 0x01]).toString('base64'));
    assert.equal((await api(`retained?filter=${encodeURIComponent('a/#/b')}`)).status, 400);

    assert.deepEqual(await ok(`retained/${encodeURIComponent(`${base}/one`)}`, { method: 'DELETE' }), { deleted: `${base}/one` });
    assert.equal((await api(`retained/${encodeURIComponent(`${base}/one`)}`)).status, 404);
    assert.equal((await api(`retained/${encodeURIComponent(`${base}/one`)}`, { method: 'DELETE' })).status, 404);
    // Both would come in the same page of the same cursor: once "two" is here, "one" would be too.
    const { client: sub, inbox } = await pool.connect(b);
    await subscribe(sub, `${base}/#`, { qos: 1 });
    await inbox.waitFor(1, `${base}/two`);
    assert.deepEqual(inbox.msgs.map((m) => m.topic), [`${base}/two`]);
  });

  test('publish through the API reaches a v5 subscriber with QoS, payload and user properties', { timeout: 60000 }, async () => {
    const topic = utopic('apipub');
    const { client, inbox } = await pool.connect(b, { protocolVersion: 5 });
    await subscribe(client, topic, { qos: 1 });
    await ok('publish', { method: 'POST', body: { topic, payload: 'hello from the API', qos: 1, properties: { userProperties: { via: 'api' }, contentType: 'text/plain' } } });
    const [m] = await inbox.waitFor(1, topic);
    assert.equal(m.payload.toString(), 'hello from the API');
    assert.equal(m.packet.qos, 1);
    assert.deepEqual({ ...m.packet.properties?.userProperties }, { via: 'api' });
    assert.equal(m.packet.properties?.contentType, 'text/plain');
    await ok('publish', { method: 'POST', body: { topic, payload: Buffer.from([1, 2, 3]).toString('base64'), encoding: 'base64' } });
    const m2 = (await inbox.waitFor(2, topic))[1];
    assert.deepEqual([...m2.payload], [1, 2, 3]);
    for (const bad of [{ topic: 'a/+', payload: 'x' }, { topic: '', payload: 'x' }, { topic: 'a', qos: 3 }, { topic: '$SYS/x' }, { topic: 'a', properties: { nope: 1 } }]) {
      assert.equal((await api('publish', { method: 'POST', body: bad })).status, 400, JSON.stringify(bad));
    }
    const r = await request(http, '/api/v1/publish', { method: 'POST', headers: admin, body: '{not json' });
    assert.equal(r.status, 400);
  });

  test('banned: client id from the file (v5 0x8A, v3 5); username, client id and CIDR through the API; a connected client is disconnected', { timeout: 60000 }, async () => {
    const code = async (version: 4 | 5, fields: object) => connackCode((await pool.rawConnected(b, version, fields)).connack as IConnackPacket);
    assert.equal(await code(5, { clientId: 'file-banned' }), 0x8a);
    assert.equal(await code(4, { clientId: 'file-banned' }), 5);

    const user = uid('baduser');
    const banned: any = await ok('banned', { method: 'POST', body: { kind: 'username', value: user, ttlSeconds: 3600 } }, 201);
    assert.equal(banned.source, 'api');
    assert.ok(banned.expiresAt);
    assert.equal(await code(5, { clientId: uid('u'), username: user }), 0x8a);
    assert.equal(await code(4, { clientId: uid('u'), username: user }), 5);

    // A connected client named by a new ban is disconnected (0x98), and cannot come back.
    const victim = uid('victim');
    const { client } = await pool.connect(b, { clientId: victim, protocolVersion: 5 });
    const gone = onceEvent<{ reasonCode?: number }>(emitter(client), 'disconnect', 'DISCONNECT after the ban');
    await ok('banned', { method: 'POST', body: { kind: 'clientid', value: victim } }, 201);
    assert.equal((await gone).reasonCode, 0x98);
    assert.equal(await code(5, { clientId: victim }), 0x8a);
    const list: any = await ok('banned', { key: reader });
    const kinds = list.data.map((e: { kind: string; value: string; source: string }) => `${e.kind}:${e.value}:${e.source}`);
    for (const k of ['clientid:file-banned:file', `username:${user}:api`, `clientid:${victim}:api`]) assert.ok(kinds.includes(k), `${k} in ${kinds}`);

    // Addresses: every test client comes from 127.0.0.1.
    await ok('banned', { method: 'POST', body: { kind: 'address', value: '127.0.0.0/8' } }, 201);
    assert.equal(await code(5, { clientId: uid('addr') }), 0x8a);
    await ok(`banned/address/${encodeURIComponent('127.0.0.0/8')}`, { method: 'DELETE' });
    assert.equal(await code(5, { clientId: uid('addr') }), 0);
    assert.equal((await api(`banned/address/${encodeURIComponent('127.0.0.0/8')}`, { method: 'DELETE' })).status, 404);
    assert.equal((await api('banned/clientid/file-banned', { method: 'DELETE' })).status, 404, 'file entries are removed in the file');
    await ok(`banned/username/${encodeURIComponent(user)}`, { method: 'DELETE' });
    assert.equal(await code(5, { clientId: uid('u'), username: user }), 0);
    for (const bad of [{ kind: 'address', value: '300.1.1.1' }, { kind: 'address', value: '10.0.0.0/33' }, { kind: 'nope', value: 'x' }, { kind: 'clientid', value: '' }]) {
      assert.equal((await api('banned', { method: 'POST', body: bad })).status, 400, JSON.stringify(bad));
    }

    const metrics = parsePromText((await request(http, '/metrics')).body);
    assert.ok(sampleValue(metrics, 'fleetmq_connections_refused_total', { reason: 'banned' }) >= 6);
    assert.ok(sampleValue(metrics, 'fleetmq_connections_closed_total', { reason: 'banned' }) >= 1);
    assert.ok(sampleValue(metrics, 'fleetmq_api_requests_total') > 0);
    assert.ok(sampleValue(metrics, 'fleetmq_api_failures_total') > 0);
  });

  test('SIGHUP reloads --banned-file (a connected client it names is disconnected); POST reload reads a new key; PUT log-level changes what every thread logs', { timeout: 60000 }, async () => {
    const user = uid('fileuser');
    const { client } = await pool.connect(b, { clientId: uid('fu'), username: user, protocolVersion: 5 });
    const gone = onceEvent<{ reasonCode?: number }>(emitter(client), 'disconnect', 'DISCONNECT after the reload');
    fs.appendFileSync(bannedFile, `username ${user}\n`);
    const before = b.output().length;
    b.proc.kill('SIGHUP');
    await waitUntil(() => /SIGHUP: API keys reloaded: 2 keys; banned file reloaded: 2 entries/.test(b.output().slice(before)), () => `the reload line; output:\n${b.output().slice(before)}`, WAIT_MS * 2);
    assert.equal((await gone).reasonCode, 0x98);
    assert.equal(connackCode((await pool.rawConnected(b, 5, { clientId: uid('fu'), username: user })).connack as IConnackPacket), 0x8a);

    const late = basic('late', await makeKey(keysFile, 'late', 'read'));
    assert.equal((await api('stats', { key: late })).status, 401, 'not read yet');
    const r: any = await ok('reload', { method: 'POST' });
    assert.equal(r.ok, true);
    assert.ok(r.lines.some((l: string) => /API keys reloaded: 3 keys/.test(l)), JSON.stringify(r));
    assert.equal((await api('stats', { key: late })).status, 200);

    // Connect records are info, written by the worker threads: the level reaches them.
    const connectedAs = (id: string) => b.output().split('\n').some((l) => l.includes('client connected') && l.includes(id));
    assert.equal((await api('log-level', { method: 'PUT', body: { level: 'warn' } })).status, 200);
    const quiet = uid('quiet');
    await end((await pool.connect(b, { clientId: quiet })).client);
    const loud = uid('loud');
    assert.equal((await api('log-level', { method: 'PUT', body: { level: 'info' } })).status, 200);
    await end((await pool.connect(b, { clientId: loud })).client);
    await waitUntil(() => connectedAs(loud), 'the info record of a connect at level info');
    assert.equal(connectedAs(quiet), false, 'no info record while the level was warn');
    assert.equal((await api('log-level', { method: 'PUT', body: { level: 'loud' } })).status, 400);
  });
});

describe('42 without --api-keys-file the API fails closed; the banned key of --config', () => {
  let b: Broker;
  const pool = clientPool('afterEach');
  before(async () => {
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ banned: { clientIdPrefixes: ['cfg-bot-'], usernames: ['cfg-user'] } }));
    b = await launchBroker(1, ['--durability', 'none', '--config', config], { env: { FLEETMQ_TEST_HOOKS: '1' } });
  });
  after(async () => { if (b) assert.equal(await b.stop(), 0); });

  test('the config file\'s banned key: a client id prefix and a username', { timeout: 60000 }, async () => {
    const code = async (version: 4 | 5, fields: object) => connackCode((await pool.rawConnected(b, version, fields)).connack as IConnackPacket);
    assert.equal(await code(5, { clientId: 'cfg-bot-1' }), 0x8a);
    assert.equal(await code(4, { clientId: 'cfg-bot-2' }), 5);
    assert.equal(await code(5, { clientId: uid('c'), username: 'cfg-user' }), 0x8a);
    assert.equal(await code(5, { clientId: 'cfg-bo' }), 0);
  });

  test('a worker that replaces a dead one starts with the banned list', { timeout: 60000 }, async () => {
    const { raw } = await pool.rawConnected(b, 4, { clientId: uid('crasher') });
    raw.send({ cmd: 'publish', topic: '$fleetmq/test/crash-worker', payload: Buffer.from('boom'), qos: 0, dup: false, retain: false });
    await b.waitForOutput(/worker 0 exited \(code \d+\); replacing it/);
    const r = await pool.rawConnected(b, 5, { clientId: 'cfg-bot-after-crash' });
    assert.equal(connackCode(r.connack as IConnackPacket), 0x8a);
  });

  test('401 naming the flag, for any key', { timeout: 60000 }, async () => {
    const http = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
    for (const headers of [{}, basic('ops', 'anything')]) {
      const r = await request(http, '/api/v1/clients', { headers });
      assert.equal(r.status, 401);
      assert.match(r.body, /--api-keys-file/);
      assert.match(String(r.headers['www-authenticate']), /^Basic /);
    }
  });

  test('a keys file that does not parse stops the start with exit code 1 and the line number', { timeout: 60000 }, async () => {
    const bad = path.join(dir, 'bad-keys');
    fs.writeFileSync(bad, '# keys\nops:superuser:$7$1000$AAAA$BBBB\n');
    const r = await runCli(['--port', '0', '--durability', 'none', '--api-keys-file', bad]);
    assert.equal(r.listened, false);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /bad-keys: line 2: the role must be read or admin/);
    const badBan = path.join(dir, 'bad-banned');
    fs.writeFileSync(badBan, 'address 10.0.0.0/99\n');
    const r2 = await runCli(['--port', '0', '--durability', 'none', '--banned-file', badBan]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(r2.stderr, /bad-banned: line 1: address: "10.0.0.0\/99" has a bad prefix length/);
  });
});
