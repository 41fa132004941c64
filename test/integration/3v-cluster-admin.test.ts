// 3v: the admin API of a cluster answers for the whole cluster. Three real broker processes
// (n1, n2, n3, one worker each) on a real etcd, n3's cluster port behind a fault-injecting proxy,
// API keys made by `fleetmq apikey`, real mqtt.js and raw clients on every node.
//  - GET clients on n1 (and n2) lists the clients of every node, paged 2 at a time in one global
//    client-id order, each with the node that holds it; look up by id, username and address of a
//    client on another node; its subscriptions;
//  - a kick through n1 of a v5 client on n2: the client sees DISCONNECT 0x98;
//  - a ban added on n1 refuses a CONNECT on n2 and disconnects a client on n3 (0x98); removed
//    through n2, n1 lets it in again; a node that joins later has the bans in force at once;
//  - stats: cluster totals are the sum of the per-node figures;
//  - retained: a message retained on n2 is listed and read through n1, deleted through n1 on
//    every node; publish through n1's API reaches a subscriber on n2;
//  - /readyz and the status page name the members; a member cut off from etcd (fenced): /readyz
//    503 and its API answers partial (fenced) until it rejoins;
//  - Admin/Ask calls on the cluster port from a stranger, a stale incarnation or with junk are
//    refused (counted) and kick nobody;
//  - a member that does not answer (its cluster port blackholed) or is SIGKILLed: the answer
//    comes in bounded time, marked partial with the missing node, never an error or a hang.
import { describe, test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { IConnackPacket } from 'mqtt-packet';
import { startEtcdRetrying, type EtcdCluster } from '../helpers/etcd';
import { launchBroker, runCli, makeTempDir, removeDir, freePort, type Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { Clients, subscribeOk, publish } from '../helpers/clients';
import { request, basic, type HttpAnswer } from '../helpers/http';
import { connackCode } from '../helpers/raw-client';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { onceEvent, within, delay, pollUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { crashLines } from '../helpers/proc';
import { Browser } from '../helpers/chromium';
import * as grpc from '@grpc/grpc-js';
import { ADMIN_ASK } from '../../src/cluster/admin-service';

/** mqtt.js's client is an EventEmitter whose typings do not say so. */
const emitter = (c: unknown): NodeJS.EventEmitter => c as NodeJS.EventEmitter;
const TTL_SEC = 5;

interface Node { id: string; b: Broker; http: number }
const PEER_RE = /peer server listening on [^\s:]+:(\d+)/;

describe('3v cluster admin API (3 nodes, real etcd, real gRPC)', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  let dir: string;
  let keysFile: string;
  let key: { authorization: string };
  const nodes: Node[] = [];
  const clients = new Clients();
  const cluster = `admin${process.pid}`;
  let common: string[];

  const api = (n: Node, p: string, opts: { method?: string; body?: unknown; ms?: number } = {}): Promise<HttpAnswer> =>
    request(n.http, `/api/v1/${p}`, {
      method: opts.method, ms: opts.ms,
      headers: { ...key, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  const ok = async (n: Node, p: string, opts: Parameters<typeof api>[2] = {}, status = 200): Promise<any> => {
    const r = await api(n, p, opts);
    assert.equal(r.status, status, `${opts.method ?? 'GET'} ${n.id} /api/v1/${p}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  };
  const [n1, n2, n3] = [0, 1, 2].map((i) => () => nodes[i]);

  async function launchNode(id: string, extra: string[] = []): Promise<Node> {
    const b = await launchBroker(1, [...common, '--node-id', id, ...extra]);
    const http = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
    return { id, b, http };
  }

  /** Until `n`'s API sees every member in `ids` answer (views settle after a join). */
  async function allAnswer(n: Node, ids: string[], ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    let last = '';
    for (;;) {
      const r = await api(n, 'stats');
      if (r.status === 200) {
        const s = JSON.parse(r.body);
        if (!s.partial && JSON.stringify(s.members) === JSON.stringify(ids) && JSON.stringify(s.answered) === JSON.stringify([n.id, ...ids.filter((x) => x !== n.id)])) return;
        last = JSON.stringify({ members: s.members, answered: s.answered, missing: s.missing });
      } else last = `${r.status} ${r.body}`;
      if (Date.now() > deadline) throw new Error(`${n.id} did not see ${ids.join(', ')} answer within ${ms} ms: ${last}`);
      await delay(100);
    }
  }

  /** Each node's remote route hash is the XOR of the others' local hashes (as test 3z checks). */
  async function routesConverged(among: Node[], ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = await Promise.all(among.map(async (n) => parsePromText((await request(n.http, '/metrics')).body)));
      const local = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'local' }));
      const remote = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'remote' }));
      if (among.every((_, i) => remote[i] === among.reduce((x, _n, j) => (j === i ? x : (x ^ local[j]) >>> 0), 0))) return;
      if (Date.now() > deadline) throw new Error(`routes did not converge within ${ms} ms: ${JSON.stringify({ local, remote })}`);
      await delay(50);
    }
  }

  const code = async (n: Node, fields: object, version: 4 | 5 = 5) => connackCode((await clients.raw(n.b.port, version, fields)).connack as IConnackPacket);

  before(async () => {
    dir = makeTempDir('fleetmq-3v-');
    keysFile = path.join(dir, 'api-keys');
    const r = await runCli(['apikey', keysFile, 'ops', 'admin']);
    assert.equal(r.code, 0, r.stderr);
    key = basic('ops', r.stdout.trim());
    etcd = await startEtcdRetrying(1);
    common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', cluster, '--lease-ttl', String(TTL_SEC), '--durability', 'none', '--api-keys-file', keysFile];
    nodes.push(await launchNode('n1'));
    nodes.push(await launchNode('n2'));
    // n3 announces the proxy's port: every call another member makes to n3 goes through it.
    const n3Port = await freePort();
    proxy = await startTcpProxy('127.0.0.1', n3Port);
    nodes.push(await launchNode('n3', ['--cluster-port', String(n3Port), '--cluster-advertise-port', String(proxy.port)]));
    for (const n of nodes) await allAnswer(n, ['n1', 'n2', 'n3']);
  });

  after(async () => {
    await clients.closeAll();
    for (const n of nodes) {
      if (n.b.alive()) await n.b.stop();
      assert.deepEqual(crashLines(n.b.output()), [], `crash lines in ${n.id}'s output:\n${n.b.output()}`);
    }
    await proxy?.close();
    await etcd?.stop();
    if (dir) removeDir(dir);
  });

  test('clients of every node, paged 2 at a time in one client-id order; look up by id, username and address; subscriptions', { timeout: 120_000 }, async () => {
    const prefix = uid('pg');
    // Ids interleave across the nodes so every page mixes nodes.
    const on = [n1, n2, n3, n1, n2, n3, n2];
    const ids = on.map((_, i) => `${prefix}-${i}`);
    for (const [i, id] of ids.entries()) {
      const c = await clients.mqtt(on[i]().b.port, { clientId: id, protocolVersion: i % 2 ? 4 : 5, username: i === 1 ? `user-${prefix}` : undefined });
      if (i === 1) await subscribeOk(c.client, { [`${prefix}/a/+`]: { qos: 1 }, [`${prefix}/b/#`]: { qos: 0 } });
    }
    for (const from of [n1(), n2()]) {
      const seen: string[] = [];
      const holders: string[] = [];
      let cursor: string | null = '';
      let pages = 0;
      while (cursor !== null) {
        const page: any = await ok(from, `clients?clientid=${encodeURIComponent(prefix)}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(page.partial, false, JSON.stringify(page));
        assert.deepEqual(page.missing, []);
        assert.ok(page.data.length <= 2);
        for (const c of page.data) { seen.push(c.clientId); holders.push(c.node); }
        cursor = page.next;
        assert.ok(++pages <= 4, 'paging ends');
      }
      assert.deepEqual(seen, ids, `from ${from.id}: every client of every node once, in client id order`);
      assert.deepEqual(holders, on.map((n) => n().id), 'each with the node that holds it');
      assert.equal(pages, 4);
    }
    const one: any = await ok(n1(), `clients/${encodeURIComponent(ids[1])}`);
    assert.equal(one.node, 'n2');
    assert.equal(one.connected, true);
    assert.equal(one.protocolVersion, 4);
    assert.equal(one.partial, undefined, 'a found client is the client itself');
    const byUser: any = await ok(n3(), `clients?username=${encodeURIComponent(`user-${prefix}`)}`);
    assert.deepEqual(byUser.data.map((c: { clientId: string; node: string }) => [c.clientId, c.node]), [[ids[1], 'n2']]);
    const byAddr: any = await ok(n1(), `clients?address=127.0.0.&clientid=${encodeURIComponent(prefix)}&limit=100`);
    assert.equal(byAddr.data.length, ids.length);
    const none = await api(n1(), `clients/${uid('nobody')}`);
    assert.equal(none.status, 404);
    assert.equal(JSON.parse(none.body).partial, false, 'asked every member: a complete "no"');
    const subs: any = await ok(n1(), `clients/${encodeURIComponent(ids[1])}/subscriptions`);
    assert.equal(subs.node, 'n2');
    assert.deepEqual(subs.data.map((s: { filter: string; qos: number }) => [s.filter, s.qos]), [[`${prefix}/a/+`, 1], [`${prefix}/b/#`, 0]]);
  });

  test('kick through n1 of a v5 client on n2: DISCONNECT 0x98 [MQTT5-3.14.2.1]; kicking again is 404', { timeout: 60_000 }, async () => {
    const id = uid('kick');
    const { client } = await clients.mqtt(n2().b.port, { clientId: id, protocolVersion: 5 });
    const gone = onceEvent<{ reasonCode?: number }>(emitter(client), 'disconnect', 'DISCONNECT from n2');
    const k: any = await ok(n1(), `clients/${encodeURIComponent(id)}`, { method: 'DELETE' });
    assert.equal(k.kicked, id);
    assert.equal(k.node, 'n2');
    assert.equal((await gone).reasonCode, 0x98, 'administrative action');
    assert.equal((await api(n1(), `clients/${encodeURIComponent(id)}`, { method: 'DELETE' })).status, 404);
  });

  test('a ban added on n1 is in force on every node; removed through n2 everywhere; a node joining later has it', { timeout: 120_000 }, async () => {
    const id = uid('banned');
    const user = uid('baduser');
    const { client } = await clients.mqtt(n3().b.port, { clientId: uid('victim'), username: user, protocolVersion: 5 });
    const gone = onceEvent<{ reasonCode?: number }>(emitter(client), 'disconnect', 'DISCONNECT on n3 after the ban');
    const added: any = await ok(n1(), 'banned', { method: 'POST', body: { kind: 'clientid', value: id } }, 201);
    assert.equal(added.partial, false);
    assert.deepEqual(added.nodes, ['n1', 'n2', 'n3']);
    await ok(n1(), 'banned', { method: 'POST', body: { kind: 'username', value: user, ttlSeconds: 3600 } }, 201);
    assert.equal((await gone).reasonCode, 0x98, 'a client on n3 named by a ban added on n1 is disconnected');
    // Applied on every member before the API answered: no wait needed.
    assert.equal(await code(n2(), { clientId: id }), 0x8a, 'CONNECT on n2 refused: banned [MQTT5-3.2.2.2]');
    assert.equal(await code(n3(), { clientId: id }, 4), 5);
    assert.equal(await code(n1(), { clientId: uid('u'), username: user }), 0x8a);
    const list: any = await ok(n2(), 'banned');
    assert.ok(list.data.some((e: { kind: string; value: string; source: string }) => e.kind === 'clientid' && e.value === id && e.source === 'api'), JSON.stringify(list));

    // A node that joins now takes the list from its peers before it serves.
    const n4 = await launchNode('n4');
    try {
      assert.match(n4.b.output(), /banned list: \d+ API entr(y|ies) taken from n/);
      assert.equal(await code(n4, { clientId: id }), 0x8a, 'the joining node refuses the banned id at once');
    } finally {
      assert.equal(await n4.b.stop(), 0);
      assert.deepEqual(crashLines(n4.b.output()), []);
    }

    const removed: any = await ok(n2(), `banned/clientid/${encodeURIComponent(id)}`, { method: 'DELETE' });
    assert.equal(removed.partial, false);
    assert.equal(await code(n1(), { clientId: id }), 0, 'removed through n2: n1 lets it in');
    assert.equal(await code(n3(), { clientId: uid('x') }), 0);
    await ok(n3(), `banned/username/${encodeURIComponent(user)}`, { method: 'DELETE' });
    assert.equal(await code(n1(), { clientId: uid('u'), username: user }), 0);
    assert.equal((await api(n1(), `banned/clientid/${encodeURIComponent(id)}`, { method: 'DELETE' })).status, 404);
  });

  test('stats: cluster totals are the sums of the per-node figures', { timeout: 60_000 }, async () => {
    await allAnswer(n1(), ['n1', 'n2', 'n3']);
    const s: any = await ok(n1(), 'stats');
    assert.equal(s.node, 'n1');
    assert.deepEqual(Object.keys(s.nodes).sort(), ['n1', 'n2', 'n3']);
    for (const k of ['clients/connected', 'messages/received', 'sessions/count']) {
      assert.equal(typeof s[k], 'number', k);
      assert.equal(s[k], Object.values(s.nodes).reduce((t: number, x: any) => t + x[k], 0), k);
    }
    assert.ok(s['clients/connected'] >= 3, `clients on every node are counted: ${s['clients/connected']}`);
    for (const n of ['n1', 'n2', 'n3']) assert.ok(s.nodes[n]['clients/connected'] >= 1, `${n} has clients: ${JSON.stringify(s.nodes[n]['clients/connected'])}`);
    // /metrics carries the view too (a real parser, helpers/prom-text.ts).
    const m = parsePromText((await request(n1().http, '/metrics')).body);
    assert.equal(sampleValue(m, 'fleetmq_cluster_members', {}), 3);
    assert.equal(sampleValue(m, 'fleetmq_cluster_fenced', {}), 0);
  });

  test('PUT log-level and POST reload through one member act on every member', { timeout: 60_000 }, async () => {
    await allAnswer(n1(), ['n1', 'n2', 'n3']);
    // Connect records are info: at warn (set through n1) n2 writes none; back at info, n3 does.
    const connectedAs = (n: Node, id: string) => n.b.output().split('\n').some((l) => l.includes('client connected') && l.includes(id));
    const lw: any = await ok(n1(), 'log-level', { method: 'PUT', body: { level: 'warn' } });
    assert.equal(lw.level, 'warn');
    assert.deepEqual([...lw.nodes].sort(), ['n1', 'n2', 'n3']);
    assert.equal(lw.partial, false);
    const quiet = uid('quiet');
    assert.equal(await code(n2(), { clientId: quiet }), 0);
    await ok(n1(), 'log-level', { method: 'PUT', body: { level: 'info' } });
    const loud = uid('loud');
    assert.equal(await code(n3(), { clientId: loud }), 0);
    await pollUntil(async () => connectedAs(n3(), loud), () => 'the info record of a connect on n3 at level info');
    assert.equal(connectedAs(n2(), quiet), false, 'n2 wrote no info record while the cluster was at warn');
    assert.equal((await api(n1(), 'log-level', { method: 'PUT', body: { level: 'loud' } })).status, 400);
    // Reload: each member reloads its API keys file, and says so.
    const r: any = await ok(n2(), 'reload', { method: 'POST' });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.ok(r.lines.some((l: string) => /API keys reloaded/.test(l)), JSON.stringify(r));
    assert.deepEqual(Object.keys(r.byNode).sort(), ['n1', 'n3']);
    for (const x of Object.values(r.byNode) as Array<{ ok: boolean; lines: string[] }>) {
      assert.equal(x.ok, true);
      assert.ok(x.lines.some((l) => /API keys reloaded/.test(l)), JSON.stringify(x));
    }
  });

  test('retained: retained on n2, listed and read through n1, deleted through n1 on every node; publish through n1 reaches n2', { timeout: 60_000 }, async () => {
    const base = utopic('ret');
    const pub = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    await publish(pub.client, `${base}/x`, 'kept', { qos: 1, retain: true });
    const list: any = await ok(n1(), `retained?filter=${encodeURIComponent(`${base}/#`)}`);
    assert.deepEqual(list.data.map((m: { topic: string; payload: string }) => [m.topic, m.payload]), [[`${base}/x`, 'kept']]);
    assert.equal(list.partial, false);
    const one: any = await ok(n1(), `retained/${encodeURIComponent(`${base}/x`)}`);
    assert.equal(one.payload, 'kept');
    const del: any = await ok(n1(), `retained/${encodeURIComponent(`${base}/x`)}`, { method: 'DELETE' });
    assert.ok(del.on.includes('n2'), JSON.stringify(del));
    for (const n of [n1(), n2(), n3()]) assert.equal((await api(n, `retained/${encodeURIComponent(`${base}/x`)}`)).status, 404, `gone as seen from ${n.id}`);

    const topic = utopic('api-pub');
    const sub = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesConverged([n1(), n2(), n3()]);
    await ok(n1(), 'publish', { method: 'POST', body: { topic, payload: 'through n1', qos: 1 } });
    const [m] = await sub.inbox.waitFor(1, topic);
    assert.equal(m.payload.toString(), 'through n1');
  });

  test('/readyz is 200 on a joined member; the status page shows every member with its clients (headless Chromium)', { timeout: 120_000 }, async () => {
    assert.equal((await request(n1().http, '/readyz')).status, 200);
    // /status.json asks the members in the background (at most every 2 s): a later reading has them.
    let s: any = null;
    await pollUntil(async () => {
      s = JSON.parse((await request(n2().http, '/status.json')).body);
      return s.cluster.nodes.length === 3 && s.cluster.nodes.every((m: { clients: number | null }) => typeof m.clients === 'number' && m.clients >= 1);
    }, () => `every member's figures in /status.json: ${JSON.stringify(s?.cluster)}`);
    assert.equal(s.cluster.node, 'n2');
    assert.deepEqual(s.cluster.members, ['n1', 'n2', 'n3']);
    assert.deepEqual(s.cluster.nodes.map((m: { node: string }) => m.node), ['n1', 'n2', 'n3']);
    const browser = await Browser.launch();
    try {
      await browser.goto(`http://127.0.0.1:${n2().http}/`);
      await pollUntil(async () => (await browser.evaluate<number>('document.querySelectorAll("#members tbody tr").length')) === 3
        && !(await browser.evaluate<string>('document.getElementById("members").textContent')).includes('no answer'),
      async () => `three member rows: ${await browser.evaluate<string>('document.getElementById("members").textContent')}`);
      assert.match(await browser.evaluate<string>('document.getElementById("members").textContent'), /n2 \(this node\)/);
      assert.match(await browser.evaluate<string>('document.getElementById("cluster").textContent'), /members: n1, n2, n3/);
      assert.deepEqual(browser.errors, [], 'no console errors, exceptions or failed requests');
    } finally {
      await browser.close();
    }
  });

  test('Admin/Ask calls from a stranger, a stale incarnation or with junk are refused; nothing is kicked; the node keeps serving', { timeout: 60_000 }, async () => {
    const id = uid('safe');
    const { client } = await clients.mqtt(n1().b.port, { clientId: id, protocolVersion: 5 });
    const peerPort = Number((await n1().b.waitForOutput(PEER_RE))[1]);
    const peer = new grpc.Client(`127.0.0.1:${peerPort}`, grpc.credentials.createInsecure());
    const call = (body: Buffer) => within(new Promise<grpc.ServiceError | null>((resolve) => {
      peer.makeUnaryRequest(ADMIN_ASK.path, (b: Buffer) => b, (b: Buffer) => b, body, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => resolve(err));
    }), 15_000, 'an Admin/Ask answer');
    try {
      const kick = { op: 'kick', clientId: id };
      for (const [body, want] of [
        [Buffer.from('{not json'), grpc.status.INVALID_ARGUMENT],
        [Buffer.from(JSON.stringify({ from: 'n2', inc: 'x', q: { op: 'nope' } })), grpc.status.INVALID_ARGUMENT],
        [Buffer.from(JSON.stringify({ from: 'n2', inc: 'x', q: { op: 'clients', after: '', limit: 'all' } })), grpc.status.INVALID_ARGUMENT],
        [Buffer.from(JSON.stringify({ from: 'stranger', inc: 'i', q: kick })), grpc.status.FAILED_PRECONDITION],
        [Buffer.from(JSON.stringify({ from: 'n2', inc: 'not-its-incarnation', q: kick })), grpc.status.FAILED_PRECONDITION],
      ] as const) {
        const err = await call(body);
        assert.equal(err?.code, want, `${body.toString().slice(0, 80)}: ${err?.message}`);
      }
    } finally {
      peer.close();
    }
    const still: any = await ok(n2(), `clients/${encodeURIComponent(id)}`);
    assert.equal(still.connected, true, 'the refused kicks kicked nobody');
    assert.ok(client.connected);
    const m = parsePromText((await request(n1().http, '/metrics')).body);
    assert.ok(sampleValue(m, 'fleetmq_cluster_admin_refused_total') >= 5, 'refusals are counted');
  });

  test('a member that does not answer (blackholed), then one SIGKILLed: answers in bounded time, marked partial', { timeout: 120_000 }, async () => {
    const prefix = uid('part');
    await clients.mqtt(n1().b.port, { clientId: `${prefix}-1` });
    await clients.mqtt(n3().b.port, { clientId: `${prefix}-3` });
    proxy.setMode('blackhole');
    try {
      // Bounded: 1.5 s per member, whatever the member does; `within` fails the test on a hang.
      const r = await within(api(n1(), `clients?clientid=${encodeURIComponent(prefix)}`, { ms: 15_000 }), 15_000, 'the API answering with n3 blackholed');
      assert.equal(r.status, 200, r.body);
      const page = JSON.parse(r.body);
      assert.equal(page.partial, true);
      assert.deepEqual(page.missing, ['n3']);
      assert.deepEqual(page.data.map((c: { clientId: string }) => c.clientId), [`${prefix}-1`], 'what the members that answered hold');
      const k = await within(api(n1(), `clients/${encodeURIComponent(`${prefix}-3`)}`, { method: 'DELETE', ms: 15_000 }), 15_000, 'a kick with n3 blackholed');
      assert.equal(k.status, 404);
      assert.deepEqual(JSON.parse(k.body).missing, ['n3'], 'a "not found" that says who was not asked');
      const s: any = await ok(n2(), 'stats');
      assert.equal(s.partial, true);
      assert.deepEqual(Object.keys(s.nodes).sort(), ['n1', 'n2']);
    } finally {
      proxy.setMode('pass');
    }
    await allAnswer(n1(), ['n1', 'n2', 'n3']);

    await n2().b.kill();
    // Until its lease expires (TTL 5 s) n2 is still a member: the answer names it missing; after
    // that it is not a member any more and the answer is whole again. Either way, never a hang.
    const r = await within(api(n1(), 'stats', { ms: 15_000 }), 15_000, 'stats with n2 killed');
    assert.equal(r.status, 200, r.body);
    const s = JSON.parse(r.body);
    if (s.members.includes('n2')) { assert.equal(s.partial, true); assert.deepEqual(s.missing, ['n2']); }
    else assert.equal(s.partial, false);
    await allAnswer(n1(), ['n1', 'n3'], 30_000);
  });

  test('a member cut off from etcd fences itself: /readyz 503 and its API answers partial (fenced) until it rejoins', { timeout: 120_000 }, async () => {
    const etcdProxy = await startTcpProxy('127.0.0.1', Number(new URL(etcd.endpoints()[0]).port));
    let n5: Node | null = null;
    try {
      const b = await launchBroker(1, ['--etcd', etcdProxy.url, '--node-id', 'n5', ...common.slice(2)]);
      n5 = { id: 'n5', b, http: Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]) };
      nodes.push(n5);
      await allAnswer(n5, ['n1', 'n3', 'n5']);
      assert.equal((await request(n5.http, '/readyz')).status, 200);
      etcdProxy.setMode('blackhole');
      await b.waitForOutput(/FENCED as n5/, 30_000);
      const r = await request(n5.http, '/readyz');
      assert.equal(r.status, 503);
      assert.match(r.body, /^fenced/);
      const s: any = await ok(n5, 'stats');
      assert.equal(s.partial, true);
      assert.equal(s.fenced, true);
      const fencedMetrics = parsePromText((await request(n5.http, '/metrics')).body);
      assert.equal(sampleValue(fencedMetrics, 'fleetmq_cluster_fenced', {}), 1);
      assert.equal(sampleValue(fencedMetrics, 'fleetmq_cluster_members', {}), 0);
      assert.ok(sampleValue(fencedMetrics, 'fleetmq_cluster_fencings_total', {}) >= 1);
      etcdProxy.setMode('pass');
      await b.waitForOutput(/rejoined as n5/, 30_000);
      assert.equal((await request(n5.http, '/readyz')).status, 200);
      assert.equal(sampleValue(parsePromText((await request(n5.http, '/metrics')).body), 'fleetmq_cluster_fenced', {}), 0);
      await allAnswer(n5, ['n1', 'n3', 'n5']);
    } finally {
      etcdProxy.setMode('pass');
      if (n5?.b.alive()) await n5.b.stop();
      await etcdProxy.close();
    }
  });
});
