// 3z cross-node publish / subscribe: three real broker processes (n1: 1 worker, n2: 3 workers,
// n3: 1 worker) in one cluster on a real etcd (--lease-ttl 2), each with its peer server on a
// free port, talking over real gRPC.
//  - QoS 0 / 1 / 2 with v3.1.1 and v5 clients, publisher and subscribers on different nodes:
//    everything arrives, in order, at the granted QoS; the publisher's PUBACK / PUBCOMP comes;
//  - a message goes to each interested node once, never once per subscriber (counters);
//  - MQTT 5 features across the hop: retain as published, no local, subscription identifiers,
//    message expiry (remaining), user properties, content type, response topic, correlation
//    data, payload format indicator;
//  - a filter withdrawn with its last subscriber stops forwarding (counter does not move);
//  - route tables converge (the nodes' route hashes in /metrics agree);
//  - garbage bytes on a node's cluster port, and gRPC calls from a stranger or with junk
//    messages (refused with a status): the node keeps serving, cluster-wide;
//  - through a proxy in front of one node's cluster port: route streams cut in the middle of
//    delta batches converge; QoS 1 across three forward-stream cuts arrives once and in order; a
//    stalled peer makes QoS 0 drop at the queue bound (counted) and QoS 1 acknowledgements wait;
//  - a node SIGKILLed while QoS 1 flows to it and another: every PUBACK comes once it leaves the
//    view, the survivor gets everything in order; restarted under its id, routes resync;
//  - --durability process: QoS 1 forwarded while a persistent subscriber is offline is queued
//    in its session on its node and delivered in order when it comes back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startEtcdRetrying, EtcdCluster } from '../helpers/etcd';
import { launchBroker, freePort, Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import * as grpc from '@grpc/grpc-js';
import { ROUTES_SYNC } from '../../src/cluster/routes';
import { FORWARD_STREAM } from '../../src/cluster/forwarding';
import { KIND_DATA, KIND_HELLO } from '../../src/cluster/forward-wire';
import { Clients, subscribeOk, publish, unsubscribe, end } from '../helpers/clients';
import { request } from '../helpers/http';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { waitUntil, within, delay } from '../helpers/wait';
import { utopic, uid } from '../helpers/ids';
import { tearDownCluster } from '../helpers/cluster-teardown';

const TTL_SEC = 2;
const PEER_RE = /peer server listening on [^\s:]+:(\d+)/;

interface Node { id: string; b: Broker; http: number; peerPort: number }

describe('3z cluster: cross-node publish / subscribe (real etcd, real gRPC)', () => {
  let etcd: EtcdCluster;
  const nodes: Node[] = [];
  const clients = new Clients();
  const cluster = `pubsub${process.pid}`;

  before(async () => {
    etcd = await startEtcdRetrying(1);
    for (const [id, workers] of [['n1', 1], ['n2', 3], ['n3', 1]] as const) {
      const b = await launchBroker(workers, ['--etcd', etcd.endpoints().join(','), '--node-id', id, '--cluster-name', cluster,
        '--lease-ttl', String(TTL_SEC), '--durability', 'none', '--sys-interval', '1']);
      const http = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
      const peerPort = Number((await b.waitForOutput(PEER_RE))[1]);
      nodes.push({ id, b, http, peerPort });
    }
    // Every node sees the others' routes: a probe subscriber per node, then converged tables.
    for (const n of nodes) {
      const c = await clients.mqtt(n.b.port, { protocolVersion: 5 });
      await subscribeOk(c.client, { [`probe/${n.id}`]: { qos: 0 } });
    }
    await routesConverged('the probe routes', 30_000);
  });

  after(() => tearDownCluster({ clients, brokers: nodes.map((n) => n.b), etcd }));

  const [n1, n2, n3] = [0, 1, 2].map((i) => () => nodes[i]);

  async function metrics(n: Node) {
    const r = await request(n.http, '/metrics');
    assert.equal(r.status, 200);
    return parsePromText(r.body);
  }

  async function gauge(n: Node, family: string, labels: Record<string, string> = {}): Promise<number> {
    return sampleValue(await metrics(n), family, labels);
  }

  /** Each node's remote route hash is the XOR of the other nodes' local hashes, and the counts agree (polls /metrics). */
  async function routesConverged(what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    let last = '';
    for (;;) {
      const m = await Promise.all(nodes.map((n) => metrics(n)));
      const local = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'local' }));
      const remote = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'remote' }));
      const lc = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_local'));
      const rc = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_remote'));
      const good = nodes.every((_, i) =>
        remote[i] === nodes.reduce((x, _n, j) => (j === i ? x : (x ^ local[j]) >>> 0), 0) &&
        rc[i] === lc.reduce((s, v, j) => (j === i ? s : s + v), 0));
      if (good) return;
      last = JSON.stringify({ local, remote, lc, rc });
      if (Date.now() > deadline) throw new Error(`route tables did not converge after ${what} within ${ms} ms: ${last}`);
      await delay(50);
    }
  }

  async function fwd(n: Node, direction: 'out' | 'in'): Promise<number> {
    return gauge(n, 'fleetmq_cluster_forwarded_messages_total', { direction });
  }

  for (const version of [4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`QoS ${qos}, MQTT ${version === 4 ? '3.1.1' : '5'}: n1 publishes, subscribers on n2 (3 workers) and n3 receive in order, once per node`, async () => {
        const topic = utopic('x');
        const subsA = await clients.mqtt(n2().b.port, { protocolVersion: version });
        const subsB = await clients.mqtt(n2().b.port, { protocolVersion: version });
        const subsC = await clients.mqtt(n3().b.port, { protocolVersion: version });
        for (const s of [subsA, subsB, subsC]) await subscribeOk(s.client, { [topic.replace(/x$/, '#')]: { qos } });
        await routesConverged(`subscribing ${topic}`);
        const pub = await clients.mqtt(n1().b.port, { protocolVersion: version });
        const out0 = await fwd(n1(), 'out');
        const in2 = await fwd(n2(), 'in');
        const N = 20;
        for (let i = 0; i < N; i++) await publish(pub.client, topic, `m${i}`, { qos });
        for (const s of [subsA, subsB, subsC]) {
          const got = await s.inbox.waitFor(N, topic, 20_000);
          assert.deepEqual(got.map((m) => m.payload.toString()), Array.from({ length: N }, (_, i) => `m${i}`), 'all, in order');
          for (const m of got) assert.equal(m.packet.qos, qos);
        }
        // Two subscribers on n2: still one copy per node.
        assert.equal(await fwd(n1(), 'out') - out0, N * 2, 'n1 forwarded each message once to n2 and once to n3');
        assert.equal(await fwd(n2(), 'in') - in2, N, 'n2 received each message once');
        for (const s of [subsA, subsB, subsC, pub]) await end(s.client);
      });
    }
  }

  it('MQTT 5 properties, retain as published, subscription ids and expiry survive the hop', async () => {
    const topic = utopic('p');
    const rap = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    const plain = await clients.mqtt(n3().b.port, { protocolVersion: 5 });
    await subscribeOk(rap.client, { [topic]: { qos: 1, rap: true } }, { subscriptionIdentifier: 7 });
    await subscribeOk(plain.client, { [topic]: { qos: 1 } }, { subscriptionIdentifier: 9 });
    await routesConverged(`subscribing ${topic}`);
    const pub = await clients.mqtt(n1().b.port, { protocolVersion: 5 });
    const properties = {
      payloadFormatIndicator: true,
      messageExpiryInterval: 100,
      contentType: 'text/x-fleetmq',
      responseTopic: 'reply/here',
      correlationData: Buffer.from([1, 2, 3, 0xff]),
      userProperties: { a: '1', b: ['x', 'y'] },
    };
    await publish(pub.client, topic, 'hello', { qos: 1, retain: true, properties });
    for (const [s, subId, retain] of [[rap, 7, true], [plain, 9, false]] as const) {
      const [m] = await s.inbox.waitFor(1, topic, 20_000);
      const p = m.packet.properties!;
      assert.equal(m.packet.retain, retain, 'RETAIN kept only with Retain As Published [MQTT5-3.3.1-12, MQTT5-3.3.1-13]');
      assert.deepEqual(p.subscriptionIdentifier, subId, 'the receiving node\'s own subscription identifier');
      assert.equal(p.payloadFormatIndicator, true);
      assert.equal(p.contentType, 'text/x-fleetmq');
      assert.equal(p.responseTopic, 'reply/here');
      assert.deepEqual(Buffer.from(p.correlationData!), Buffer.from([1, 2, 3, 0xff]));
      assert.deepEqual({ ...p.userProperties }, { a: '1', b: ['x', 'y'] });
      assert.ok(p.messageExpiryInterval !== undefined && p.messageExpiryInterval > 0 && p.messageExpiryInterval <= 100,
        `remaining expiry ${p.messageExpiryInterval} [MQTT5-3.3.2-6]`);
    }
    // Clear the retained message on n1 (not replicated yet; it must not linger in a test broker).
    await publish(pub.client, topic, '', { qos: 1, retain: true });
    for (const s of [rap, plain, pub]) await end(s.client);
  });

  it('No Local holds for a publisher subscribed on its own node; other nodes still receive', async () => {
    const topic = utopic('nl');
    const self = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    const other = await clients.mqtt(n1().b.port, { protocolVersion: 5 });
    await subscribeOk(self.client, { [topic]: { qos: 1, nl: true } });
    await subscribeOk(other.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic}`);
    await publish(self.client, topic, 'mine', { qos: 1 });
    await publish(other.client, topic, 'theirs', { qos: 1 });
    await other.inbox.waitFor(2, topic, 20_000);
    await self.inbox.waitForPayload('theirs', 20_000);
    assert.deepEqual(self.inbox.on(topic).map((m) => m.payload.toString()), ['theirs'], 'its own message not sent back [MQTT5-3.8.3-3]');
    for (const s of [self, other]) await end(s.client);
  });

  it('a filter withdrawn with its last subscriber stops forwarding', async () => {
    const topic = utopic('w');
    const a = await clients.mqtt(n2().b.port);
    const b = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    await subscribeOk(a.client, { [topic]: { qos: 1 } });
    await subscribeOk(b.client, { [topic]: { qos: 0 } });
    await routesConverged(`subscribing ${topic}`);
    const remote1 = await gauge(n1(), 'fleetmq_cluster_routes_remote');
    const pub = await clients.mqtt(n1().b.port);
    await publish(pub.client, topic, 'before', { qos: 1 });
    await a.inbox.waitFor(1, topic, 20_000);
    await unsubscribe(a.client, topic);
    await routesConverged(`one of two unsubscribing ${topic}`);
    assert.equal(await gauge(n1(), 'fleetmq_cluster_routes_remote'), remote1, 'still one subscriber on n2: the route stays');
    await end(b.client); // its session ends with the connection (clean, no expiry): the last subscriber
    await routesConverged(`the last subscriber of ${topic} leaving`);
    assert.equal(await gauge(n1(), 'fleetmq_cluster_routes_remote'), remote1 - 1, 'the route is withdrawn');
    const out0 = await fwd(n1(), 'out');
    for (let i = 0; i < 10; i++) await publish(pub.client, topic, `after${i}`, { qos: 1 });
    assert.equal(await fwd(n1(), 'out'), out0, 'nothing forwarded for a withdrawn filter');
    for (const s of [a, pub]) await end(s.client);
  });

  it('garbage on a node\'s cluster port: the node keeps serving, cluster-wide', async () => {
    const junk = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(256, 0xee)]),
      Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 7919) & 0xff)),
    ];
    for (const bytes of junk) {
      await within(new Promise<void>((resolve) => {
        const s = net.connect(n1().peerPort, '127.0.0.1', () => s.write(bytes));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
        setTimeout(() => s.destroy(), 2000).unref();
      }), 15_000, 'the junk connection to end');
    }
    assert.ok(n1().b.alive(), 'n1 still running');
    const topic = utopic('g');
    const sub = await clients.mqtt(n1().b.port, { protocolVersion: 5 });
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic} after the garbage`);
    const pub = await clients.mqtt(n3().b.port);
    await publish(pub.client, topic, 'still here', { qos: 1 });
    await sub.inbox.waitFor(1, topic, 20_000);
    for (const s of [sub, pub]) await end(s.client);
  });

  it('gRPC calls that are not a current peer\'s, or carry junk, are refused; the node keeps serving', async () => {
    const peer = new grpc.Client(`127.0.0.1:${n1().peerPort}`, grpc.credentials.createInsecure());
    try {
      const refused = (method: typeof ROUTES_SYNC, frames: Buffer[]) => within(new Promise<grpc.ServiceError>((resolve, reject) => {
        const call = peer.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
        call.on('data', () => { /* answers to junk are not expected; the status below is */ });
        call.on('error', (e: grpc.ServiceError) => resolve(e));
        call.on('end', () => reject(new Error(`${method.path} ended without an error status`)));
        for (const f of frames) call.write(f);
      }), 15_000, `${method.path} to be refused`);
      const snap = (from: string, inc: string) => Buffer.from(JSON.stringify({ k: 'snap', from, inc, to: 'n1', toInc: 'x', v: 0, filters: ['a/#'] }));
      for (const frames of [
        [Buffer.from('{not json')],
        [Buffer.from(JSON.stringify({ k: 'delta', v: 1, add: ['x'], del: [] }))],
        [snap('n2', 'not-its-incarnation')],
        [snap('stranger', 'i')],
        [Buffer.from(JSON.stringify({ k: 'snap', from: 'n2', filters: [1, 2] }))],
      ]) assert.equal((await refused(ROUTES_SYNC, frames)).code, grpc.status.FAILED_PRECONDITION);
      for (const frames of [
        [Buffer.from([KIND_DATA, 0, 0, 0, 1, 0, 0, 0, 0xff])],
        [Buffer.concat([Buffer.from([KIND_HELLO]), Buffer.from('{"from":"stranger","incarnation":"i","to":"n1","toIncarnation":"x"}')])],
        [Buffer.concat([Buffer.from([KIND_HELLO]), Buffer.from('junk')])],
      ]) assert.ok([grpc.status.FAILED_PRECONDITION, grpc.status.INVALID_ARGUMENT].includes((await refused(FORWARD_STREAM, frames)).code));
    } finally {
      peer.close();
    }
    assert.ok(n1().b.alive());
    const topic = utopic('rf');
    const sub = await clients.mqtt(n1().b.port);
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic} after the refused calls`);
    const pub = await clients.mqtt(n2().b.port);
    await publish(pub.client, topic, 'ok', { qos: 1 });
    await sub.inbox.waitFor(1, topic, 20_000);
    for (const c of [sub, pub]) await end(c.client);
  });

  it('QoS 1 publisher gets PUBACK only once the other node has the message (many in flight)', async () => {
    const topic = utopic('burst');
    const sub = await clients.mqtt(n2().b.port, { protocolVersion: 5, clientId: uid('burst') });
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic}`);
    const pub = await clients.mqtt(n1().b.port, { protocolVersion: 5 });
    const N = 500;
    await Promise.all(Array.from({ length: N }, (_, i) => publish(pub.client, topic, `b${i}`, { qos: 1 })));
    const got = await sub.inbox.waitFor(N, topic, 30_000);
    assert.deepEqual(got.map((m) => m.payload.toString()), Array.from({ length: N }, (_, i) => `b${i}`), 'in order');
    for (const s of [sub, pub]) await end(s.client);
  });
});

describe('3z cluster: peer streams cut through a proxy (real etcd, real gRPC)', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  const brokers: Broker[] = [];
  const clients = new Clients();
  const cluster = `cut${process.pid}`;
  let r1: Broker;
  let r2: Broker;
  const http: number[] = [];

  before(async () => {
    etcd = await startEtcdRetrying(1);
    // r1 announces the proxy's port: every call r2 makes to r1 (routes, forwarding) goes through it.
    const r1Port = await freePort();
    proxy = await startTcpProxy('127.0.0.1', r1Port);
    const common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', cluster, '--lease-ttl', String(TTL_SEC), '--durability', 'none'];
    r1 = await launchBroker(1, [...common, '--node-id', 'r1', '--cluster-port', String(r1Port), '--cluster-advertise-port', String(proxy.port)]);
    brokers.push(r1);
    r2 = await launchBroker(3, [...common, '--node-id', 'r2', '--cluster-forward-queue-bytes', String(1024 * 1024)]);
    brokers.push(r2);
    for (const b of brokers) http.push(Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]));
  });

  after(() => tearDownCluster({ clients, brokers, proxies: [proxy], etcd }));

  async function metric(i: number, family: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await request(http[i], '/metrics');
    return sampleValue(parsePromText(r.body), family, labels);
  }

  /** Node `from`'s routes as node `to` holds them equal `from`'s own table (hash and count); 0 = r1, 1 = r2. */
  async function routesAt(from: number, to: number, what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const [lh, lc, rh, rc] = await Promise.all([
        metric(from, 'fleetmq_cluster_routes_hash', { table: 'local' }), metric(from, 'fleetmq_cluster_routes_local'),
        metric(to, 'fleetmq_cluster_routes_hash', { table: 'remote' }), metric(to, 'fleetmq_cluster_routes_remote'),
      ]);
      if (lh === rh && lc === rc) return;
      if (Date.now() > deadline) throw new Error(`routes of node ${from} at node ${to} did not converge after ${what}: local ${lh}/${lc}, remote ${rh}/${rc}`);
      await delay(50);
    }
  }

  it('route streams reset in the middle of delta batches: r2\'s table converges on r1\'s', async () => {
    // r2 subscribes: its Routes/Sync call to r1 goes through the proxy.
    const subs = await Promise.all(Array.from({ length: 4 }, () => clients.mqtt(r2.port, { protocolVersion: 5 })));
    const snapshots0 = await metric(0, 'fleetmq_cluster_route_snapshots_total');
    // 400 subscribes and 150 unsubscribes in small SUBSCRIBE packets, cutting every stream to r1 three times meanwhile.
    const filters = Array.from({ length: 400 }, (_, i) => `${utopic('rt')}/${i % 3 === 0 ? '+' : 'leaf'}/${i}`);
    const work = (async () => {
      for (let i = 0; i < filters.length; i += 10) {
        await subscribeOk(subs[(i / 10) % subs.length].client, Object.fromEntries(filters.slice(i, i + 10).map((f) => [f, { qos: 0 as const }])));
        if (i % 30 === 0 && i > 0) await unsubscribe(subs[((i - 30) / 10) % subs.length].client, filters.slice(i - 30, i - 25));
      }
    })();
    for (let k = 0; k < 3; k++) {
      // Cut once the call of the previous reset is back (its snapshot arrived), while deltas flow.
      const before = await metric(0, 'fleetmq_cluster_route_snapshots_total');
      await delay(20 + k * 30);
      proxy.cut();
      const deadline = Date.now() + 20_000;
      while (await metric(0, 'fleetmq_cluster_route_snapshots_total') <= before) {
        if (Date.now() > deadline) throw new Error(`no snapshot after cut ${k + 1}`);
        await delay(20);
      }
    }
    await work;
    await routesAt(1, 0, 'three stream resets');
    assert.ok(await metric(0, 'fleetmq_cluster_route_snapshots_total') - snapshots0 >= 3, 'a snapshot after each reset');
    assert.ok(await metric(1, 'fleetmq_cluster_routes_local') >= 400 - 5 * 13, 'the subscriptions are announced');
    for (const s of subs) await end(s.client);
    await routesAt(1, 0, 'the subscribers leaving');
  });

  it('a peer that reads nothing: QoS 0 to it is dropped at the queue bound and counted, QoS 1 waits for it; healing delivers', async () => {
    const topic = utopic('bh');
    const sub = await clients.mqtt(r1.port, { protocolVersion: 5 });
    await subscribeOk(sub.client, { [`${topic}/#`]: { qos: 1 } });
    await routesAt(0, 1, `subscribing ${topic}/#`);
    const pub = await clients.mqtt(r2.port, { protocolVersion: 5 });
    await publish(pub.client, `${topic}/warm`, 'w', { qos: 1 });
    await sub.inbox.waitFor(1, `${topic}/warm`, 20_000);
    const dropped0 = await metric(1, 'fleetmq_cluster_forward_dropped_total', { reason: 'queue_full' });
    proxy.setMode('blackhole');
    try {
      // A QoS 1 message first: its PUBACK must wait for r1.
      let acked = false;
      const q1 = publish(pub.client, `${topic}/q1`, 'held', { qos: 1 }).then(() => { acked = true; });
      // 8 MiB of QoS 0 against a 1 MiB bound (--cluster-forward-queue-bytes on r2) and a stalled stream.
      const body = Buffer.alloc(8192, 0x61);
      for (let i = 0; i < 1024; i++) pub.client.publish(`${topic}/q0`, body, { qos: 0 });
      const deadline = Date.now() + 30_000;
      while (await metric(1, 'fleetmq_cluster_forward_dropped_total', { reason: 'queue_full' }) === dropped0) {
        if (Date.now() > deadline) throw new Error('no QoS 0 message counted as dropped at the full peer queue');
        await delay(50);
      }
      assert.equal(acked, false, 'the QoS 1 PUBACK waits while r1 cannot take the message');
      proxy.setMode('pass');
      await within(q1, 60_000, 'the PUBACK after healing');
    } finally {
      proxy.setMode('pass');
    }
    await sub.inbox.waitFor(1, `${topic}/q1`, 60_000);
    assert.ok(sub.inbox.on(`${topic}/q0`).length < 1024, 'some QoS 0 messages were dropped');
    for (const s of [sub, pub]) await end(s.client);
  });

  it('QoS 1 across a forward stream cut three times: every message once, in order', async () => {
    const topic = utopic('cut');
    const sub = await clients.mqtt(r1.port, { protocolVersion: 5 });
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesAt(0, 1, `subscribing ${topic}`);
    const pub = await clients.mqtt(r2.port, { protocolVersion: 5 });
    const N = 3000;
    const acked = Promise.all(Array.from({ length: N }, (_, i) => publish(pub.client, topic, `c${i}`, { qos: 1 })));
    for (const k of [1, 2, 3]) {
      await waitUntil(() => sub.inbox.on(topic).length >= (N * k) / 4, () => `${(N * k) / 4} messages before cut ${k} (got ${sub.inbox.on(topic).length})`, 30_000);
      proxy.cut();
    }
    await within(acked, 60_000, 'every PUBACK');
    const got = await sub.inbox.waitFor(N, topic, 30_000);
    const payloads = got.map((m) => m.payload.toString());
    assert.equal(new Set(payloads).size, payloads.length, 'no duplicate: resends are de-duplicated by sequence');
    assert.deepEqual(payloads, Array.from({ length: N }, (_, i) => `c${i}`), 'all of them, in order');
    for (const s of [sub, pub]) await end(s.client);
  });
});

describe('3z cluster: a node killed mid-stream, then restarted under its id (real etcd, --lease-ttl 2)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const clients = new Clients();
  const cluster = `kill${process.pid}`;
  const http = new Map<Broker, number>();
  let common: string[];

  async function node(id: string, workers: number): Promise<Broker> {
    const b = await launchBroker(workers, [...common, '--node-id', id]);
    brokers.push(b);
    http.set(b, Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]));
    return b;
  }

  async function metric(b: Broker, family: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await request(http.get(b)!, '/metrics');
    return sampleValue(parsePromText(r.body), family, labels);
  }

  /** Polls until `cond` holds on the metrics of `b`. */
  async function until(b: Broker, what: string, cond: (v: number) => boolean, family: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    let v = NaN;
    while (!cond((v = await metric(b, family)))) {
      if (Date.now() > deadline) throw new Error(`${what}: ${family} = ${v} after ${ms} ms`);
      await delay(50);
    }
  }

  before(async () => {
    etcd = await startEtcdRetrying(1);
    common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', cluster, '--lease-ttl', String(TTL_SEC), '--durability', 'none'];
  });

  after(() => tearDownCluster({ clients, brokers, etcd }));

  it('QoS 1 to two nodes, one SIGKILLed mid-stream: every PUBACK comes, the survivor gets everything in order; the node restarts under its id and routes resync', async () => {
    const k1 = await node('k1', 1);
    const k2 = await node('k2', 3);
    let k3 = await node('k3', 1);
    const topic = utopic('kill');
    const s2 = await clients.mqtt(k2.port, { protocolVersion: 5 });
    const s3 = await clients.mqtt(k3.port, { protocolVersion: 5 });
    await subscribeOk(s2.client, { [topic]: { qos: 1 } });
    await subscribeOk(s3.client, { [topic]: { qos: 1 } });
    await until(k1, 'k1 holding both routes', (v) => v === 2, 'fleetmq_cluster_routes_remote');
    const pub = await clients.mqtt(k1.port, { protocolVersion: 5 });
    const N = 1500;
    // Not publish(): its per-message bound is shorter than a lease expiry under load; one bound for all below.
    let pubacks = 0;
    const acked = Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) =>
      pub.client.publish(topic, `k${i}`, { qos: 1 }, (err) => { if (err) reject(err); else { pubacks++; resolve(); } }))));
    await waitUntil(() => s3.inbox.on(topic).length >= N / 3, () => `k3's subscriber at ${N / 3} (got ${s3.inbox.on(topic).length})`, 30_000);
    await k3.kill();
    // Acknowledgements waiting for k3 are released once k3 leaves k1's view (TTL + slack), not never.
    await within(acked, 60_000, `every PUBACK after k3 died (got ${pubacks} of ${N} so far)`).catch((e) => { throw new Error(`${e.message}; ${pubacks} PUBACKs`); });
    const got = await s2.inbox.waitFor(N, topic, 30_000);
    assert.deepEqual(got.map((m) => m.payload.toString()), Array.from({ length: N }, (_, i) => `k${i}`), 'the survivor got all, in order, once');
    await until(k1, 'k3\'s route gone from k1', (v) => v === 1, 'fleetmq_cluster_routes_remote');

    // Same node id again (its old key is gone: it left the view): a new incarnation, routes resync.
    k3 = await node('k3', 1);
    const s3b = await clients.mqtt(k3.port, { protocolVersion: 5 });
    await subscribeOk(s3b.client, { [topic]: { qos: 1 } });
    await until(k1, 'the restarted k3\'s route at k1', (v) => v === 2, 'fleetmq_cluster_routes_remote');
    await until(k3, 'k1\'s and k2\'s routes at the restarted k3', (v) => v >= 1, 'fleetmq_cluster_routes_remote');
    await publish(pub.client, topic, 'after restart', { qos: 1 });
    await s3b.inbox.waitForPayload('after restart', 20_000);
    await s2.inbox.waitForPayload('after restart', 20_000);
    for (const s of [s2, s3b, pub]) await end(s.client);
  });
});

describe('3z cluster: forwarded QoS 1 to a persistent session (real etcd, --durability process)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const clients = new Clients();

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(() => tearDownCluster({ clients, brokers, etcd }));

  it('messages forwarded while the subscriber is offline wait in its session on its node, in order', async () => {
    const common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', `durable${process.pid}`, '--lease-ttl', String(TTL_SEC), '--durability', 'process'];
    const p1 = await launchBroker(1, [...common, '--node-id', 'p1']);
    brokers.push(p1);
    const p2 = await launchBroker(3, [...common, '--node-id', 'p2']);
    brokers.push(p2);
    const p1Http = Number((await p1.waitForOutput(HTTP_LISTEN_RE))[2]);
    const topic = utopic('durable');
    const clientId = uid('keep');
    const opts = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 300 } };
    const sub = await clients.mqtt(p2.port, opts);
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    const deadline = Date.now() + 30_000;
    while (sampleValue(parsePromText((await request(p1Http, '/metrics')).body), 'fleetmq_cluster_routes_remote') < 1) {
      if (Date.now() > deadline) throw new Error('p2\'s route never reached p1');
      await delay(50);
    }
    const pub = await clients.mqtt(p1.port, { protocolVersion: 5 });
    await publish(pub.client, topic, 'online', { qos: 1 });
    await sub.inbox.waitFor(1, topic, 20_000);
    await end(sub.client);
    // Offline: the route stays (the session keeps its subscription); each PUBACK means p2 has it.
    for (let i = 0; i < 5; i++) await publish(pub.client, topic, `offline${i}`, { qos: 1 });
    const back = await clients.mqtt(p2.port, { ...opts });
    assert.equal(back.connack.sessionPresent, true);
    const got = await back.inbox.waitFor(5, topic, 20_000);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['offline0', 'offline1', 'offline2', 'offline3', 'offline4']);
    for (const s of [back, pub]) await end(s.client);
  });
});
