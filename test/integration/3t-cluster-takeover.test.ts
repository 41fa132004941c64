// 3t a session follows its client id across nodes (src/cluster/handover.ts): two real broker
// processes (n1: 1 worker, n2: 2 workers) in one cluster on a real etcd (--lease-ttl 3), real
// gRPC between them, mqtt.js and raw clients.
//  - a persistent QoS 1 subscriber (v5 with a subscription identifier, and v3.1.1) goes offline
//    on n1, messages queue there, it reconnects on n2: session present = 1, the queued messages
//    arrive in order, its subscriptions work on n2 (a publish on either node arrives), nothing
//    arrives twice without DUP, and n1 holds no session any more (counters);
//  - a message in flight (no PUBACK) on n1 when the client connects to n2: the old connection
//    gets DISCONNECT 0x8E [MQTT5-3.1.4-3], n2 resends it with DUP and the same packet id
//    [MQTT-4.4.0-1];
//  - clean start on n2: session present = 0, nothing of n1's session arrives, and n1's session
//    is gone (a later clean start 0 CONNECT there finds none);
//  - will on takeover [MQTT5-3.1.2-8]: delay 0 -> published at once; delay > 0 and the session
//    resumed on n2 -> never published; delay > 0 and clean start on n2 -> published at once;
//  - under load: a persistent QoS 1 subscriber moves between the nodes every second while 1,000
//    numbered messages flow at ~1 kHz: every number arrives, first arrivals in order, every
//    repeat has DUP set; again with every call n2 makes to n1 delayed by a proxy (Release,
//    Finish, routes and forwarding: the phases of the moves both ways);
//  - the new node SIGKILLed between the phases (its Finish held in a delaying proxy and lost with
//    it): the old node gives the handover up and the session is whole there again (session
//    present = 1 on reconnecting to it, its queue, and what arrived meanwhile, in order);
//  - with --durability process: the old node's stored copy is deleted once the new node has the
//    session (restarted with its data dir, it restores none), and the new node stores it (record
//    and subscription: restarted, it restores it and its subscription works).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import { startEtcdRetrying, type EtcdCluster } from '../helpers/etcd';
import { launchBroker, freePort, makeTempDir, HTTP_LISTEN_RE, type Broker } from '../helpers/broker';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { Clients, subscribeOk, publish, end, type Connected, type Received } from '../helpers/clients';
import { RawClient } from '../helpers/raw-client';
import { request } from '../helpers/http';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { waitUntil, delay } from '../helpers/wait';
import { metricAtLeast } from '../helpers/metrics';
import { utopic, uid } from '../helpers/ids';
import { tearDownCluster } from '../helpers/cluster-teardown';

const TTL_SEC = 3;

interface Node { id: string; b: Broker; http: number }

describe('3t cluster: a session follows its client id across nodes (real etcd, 2 broker processes)', () => {
  let etcd: EtcdCluster;
  const nodes: Node[] = [];
  const clients = new Clients();
  const raws: RawClient[] = [];
  const cluster = `takeover${process.pid}`;
  let proxy: TcpProxy | undefined;

  before(async () => {
    etcd = await startEtcdRetrying(1);
    // n1 announces a proxy's port: every call n2 makes to n1 (registry, handover, routes,
    // forwarding) goes through it, so a test can delay the phases of a takeover.
    const n1Port = await freePort();
    proxy = await startTcpProxy('127.0.0.1', n1Port);
    for (const [id, workers, extra] of [['n1', 1, ['--cluster-port', String(n1Port), '--cluster-advertise-port', String(proxy.port)]], ['n2', 2, []]] as const) {
      const b = await launchBroker(workers, ['--etcd', etcd.endpoints().join(','), '--node-id', id, '--cluster-name', cluster,
        '--lease-ttl', String(TTL_SEC), '--durability', 'none', ...extra]);
      nodes.push({ id, b, http: Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]) });
    }
    await waitUntil(() => nodes.every((n) => /members: n1, n2/.test(n.b.output())), 'both nodes to see n1, n2', 20_000);
  });

  after(async () => {
    for (const r of raws) r.destroy();
    await clients.closeAll();
    if (process.env.DUMP_3T) for (const n of nodes) console.error(n.b.output());
    for (const n of nodes) await n.b.kill();
    await proxy?.close();
    await etcd?.stop();
  });

  const [n1, n2] = [0, 1].map((i) => () => nodes[i]);

  async function metrics(n: Node) {
    const r = await request(n.http, '/metrics');
    assert.equal(r.status, 200);
    return parsePromText(r.body);
  }
  const gauge = async (n: Node, family: string, labels: Record<string, string> = {}) => sampleValue(await metrics(n), family, labels);

  /** Each node's remote route hash is the other's local one. */
  async function routesConverged(what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = await Promise.all(nodes.map((n) => metrics(n)));
      const local = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'local' }));
      const remote = m.map((f) => sampleValue(f, 'fleetmq_cluster_routes_hash', { table: 'remote' }));
      if (remote[0] === local[1] && remote[1] === local[0]) return;
      if (Date.now() > deadline) throw new Error(`route tables did not converge after ${what} within ${ms} ms: ${JSON.stringify({ local, remote })}`);
      await delay(50);
    }
  }

  async function raw(n: Node, version: 4 | 5): Promise<RawClient> {
    const r = await RawClient.open(n.b, version);
    raws.push(r);
    return r;
  }

  /** Repeats must carry DUP; returns the payloads in first-arrival order. */
  function firstArrivals(msgs: Received[]): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const m of msgs) {
      const p = m.payload.toString();
      if (seen.has(p)) { assert.equal(m.packet.dup, true, `${p} arrived again without DUP`); continue; }
      seen.add(p);
      out.push(p);
    }
    return out;
  }

  for (const version of [5, 4] as const) {
    it(`MQTT ${version === 5 ? '5' : '3.1.1'}: the session moves to n2 with its subscription and its queue (session present = 1)`, async () => {
      const id = uid('mv');
      const topic = utopic('mv');
      const persistent = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 600 } } : { clean: false };
      const first = await clients.mqtt(n1().b.port, { protocolVersion: version, clientId: id, ...persistent });
      await subscribeOk(first.client, { [topic]: { qos: 1 } }, version === 5 ? { subscriptionIdentifier: 7 } : undefined);
      await routesConverged(`subscribing ${topic}`);
      await end(first.client);
      const pub = await clients.mqtt(n2().b.port, { protocolVersion: version });
      const N = 10;
      // Published on n2, forwarded to n1 (the PUBACK waits for n1), queued in the offline session there.
      for (let i = 0; i < N; i++) await publish(pub.client, topic, `q${i}`, { qos: 1 });
      const in0 = await gauge(n2(), 'fleetmq_cluster_handovers_total', { dir: 'in' });
      const out0 = await gauge(n1(), 'fleetmq_cluster_handovers_total', { dir: 'out' });
      const moved = await clients.mqtt(n2().b.port, { protocolVersion: version, clientId: id, ...persistent });
      assert.equal(moved.connack.sessionPresent, true, 'session present = 1 on n2');
      const queued = await moved.inbox.waitFor(N, topic, 20_000);
      assert.deepEqual(firstArrivals(queued), Array.from({ length: N }, (_, i) => `q${i}`), 'the queue, in order');
      for (const m of queued) {
        assert.equal(m.packet.qos, 1);
        if (version === 5) assert.deepEqual(m.packet.properties?.subscriptionIdentifier, 7, 'its subscription identifier came along');
      }
      assert.equal(await gauge(n2(), 'fleetmq_cluster_handovers_total', { dir: 'in' }), in0 + 1, 'n2 took one session');
      assert.equal(await gauge(n1(), 'fleetmq_cluster_handovers_total', { dir: 'out' }), out0 + 1, 'n1 handed one session');
      // The subscription lives on n2 now: a publish on either node arrives (once).
      await routesConverged('the handover');
      const pub1 = await clients.mqtt(n1().b.port, { protocolVersion: version });
      await publish(pub1.client, topic, 'from-n1', { qos: 1 });
      await publish(pub.client, topic, 'from-n2', { qos: 1 });
      await moved.inbox.waitForPayload('from-n2', 20_000);
      await moved.inbox.waitForPayload('from-n1', 20_000);
      await delay(300);
      const all = moved.inbox.on(topic);
      const firsts = firstArrivals(all);
      assert.equal(firsts.length, N + 2, `each message once (repeats only with DUP): ${JSON.stringify(all.map((m) => m.payload.toString()))}`);
      await end(moved.client);
      for (const c of [pub, pub1]) await end(c.client);
    });
  }

  it('a message in flight on n1 is resent by n2 with DUP and its packet id; the old connection gets 0x8E', async () => {
    const id = uid('inf');
    const topic = utopic('inf');
    const old = await raw(n1(), 5);
    const ack = await old.handshake({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    assert.equal(ack.reasonCode ?? 0, 0);
    await old.subscribe(topic, 1);
    await routesConverged(`subscribing ${topic}`);
    const pub = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    await publish(pub.client, topic, 'unacked', { qos: 1 });
    const sent = await old.waitFor<IPublishPacket>((p) => p.cmd === 'publish', 'the PUBLISH on n1', 20_000);
    assert.equal(sent.dup, false);
    // Not acknowledged: the client moves to n2.
    const next = await raw(n2(), 5);
    const ack2 = await next.handshake({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } }, 30_000);
    assert.equal(ack2.reasonCode ?? 0, 0);
    assert.equal((ack2 as IConnackPacket).sessionPresent, true);
    const disc = await old.waitFor<IDisconnectPacket>((p) => p.cmd === 'disconnect', 'DISCONNECT on the old connection', 20_000).catch(() => null);
    assert.ok(disc, `the old connection got a DISCONNECT: ${old.describe()}`);
    assert.equal(disc.reasonCode, 0x8e, 'session taken over');
    const again = await next.waitFor<IPublishPacket>((p) => p.cmd === 'publish', 'the resent PUBLISH on n2', 20_000);
    assert.equal(again.payload.toString(), 'unacked');
    assert.equal(again.dup, true, 'resent with DUP [MQTT-4.4.0-1]');
    assert.equal(again.messageId, sent.messageId, 'the same packet id');
    next.send({ cmd: 'puback', messageId: again.messageId! });
    next.send({ cmd: 'disconnect' });
    await end(pub.client);
  });

  it('clean start on n2 discards the session on n1 (session present = 0, nothing of it arrives)', async () => {
    const id = uid('cs');
    const topic = utopic('cs');
    const first = await clients.mqtt(n1().b.port, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    await subscribeOk(first.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic}`);
    await end(first.client);
    const pub = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    for (let i = 0; i < 3; i++) await publish(pub.client, topic, `old${i}`, { qos: 1 });
    const fresh = await clients.mqtt(n2().b.port, { protocolVersion: 5, clientId: id, clean: true, properties: { sessionExpiryInterval: 600 } });
    assert.equal(fresh.connack.sessionPresent, false);
    await routesConverged('the clean start');
    await publish(pub.client, topic, 'after', { qos: 1 });
    // Nothing queued on n1 arrives, and the old subscription is gone with its session (not on n2 either).
    await delay(500);
    assert.deepEqual(fresh.inbox.on(topic).map((m) => m.payload.toString()), []);
    await end(fresh.client);
    // Back on n1 with clean start 0: n2's (empty) session comes over; n1's old one is gone.
    const back = await clients.mqtt(n1().b.port, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    assert.equal(back.connack.sessionPresent, true, "n2's session (the clean one) moved to n1");
    await delay(500);
    assert.deepEqual(back.inbox.on(topic).map((m) => m.payload.toString()), [], 'no message of the discarded session');
    await end(back.client, { reasonCode: 0 });
    await end(pub.client);
  });

  async function willCase(delaySec: number, clean: boolean): Promise<{ got: boolean; watcher: Connected; willTopic: string }> {
    const id = uid('will');
    const willTopic = utopic('will');
    const watcher = await clients.mqtt(n2().b.port, { protocolVersion: 5 });
    await subscribeOk(watcher.client, { [willTopic]: { qos: 1 } });
    await routesConverged(`watching ${willTopic}`);
    const old = await raw(n1(), 5);
    const ack = await old.handshake({
      clientId: id, clean: false, properties: { sessionExpiryInterval: 600 },
      will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: delaySec } },
    });
    assert.equal(ack.reasonCode ?? 0, 0);
    const next = await raw(n2(), 5);
    const ack2 = await next.handshake({ clientId: id, clean, properties: { sessionExpiryInterval: 600 } }, 30_000);
    assert.equal(ack2.reasonCode ?? 0, 0);
    assert.equal((ack2 as IConnackPacket).sessionPresent, !clean);
    await old.waitClosed(20_000);
    let got = false;
    try { await watcher.inbox.waitFor(1, willTopic, delaySec === 0 || clean ? 20_000 : (delaySec + 2) * 1000); got = true; } catch { got = false; }
    next.send({ cmd: 'disconnect', reasonCode: 0 });
    return { got, watcher, willTopic };
  }

  it('will delay 0: published at once when the session moves [MQTT5-3.1.2-8]', async () => {
    const r = await willCase(0, false);
    assert.equal(r.got, true, 'the will was published');
    await end(r.watcher.client);
  });

  it('will delay > 0 and the session resumed on n2: never published', async () => {
    const r = await willCase(2, false);
    assert.equal(r.got, false, `no will (got ${r.watcher.inbox.describe()})`);
    await end(r.watcher.client);
  });

  it('will delay > 0 and clean start on n2: published at once', async () => {
    const r = await willCase(30, true);
    assert.equal(r.got, true, 'the will was published');
    await end(r.watcher.client);
  });

  for (const delayMs of [0, 40]) {
    it(`under load${delayMs ? `, every call n2 makes to n1 delayed ${delayMs} ms` : ''}: a QoS 1 subscriber moving between the nodes every second loses nothing, keeps order, repeats only with DUP`, async () => {
      proxy!.setMode(delayMs ? 'delay' : 'pass', delayMs);
      try { await loadRun(); } finally { proxy!.setMode('pass'); }
    });
  }

  async function loadRun(): Promise<void> {
    const id = uid('load');
    const topic = utopic('load');
    const N = Number(process.env.FLEETMQ_3T_MESSAGES ?? 1000);
    const MOVES = 8;
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } };
    const got: Received[] = [];
    const onto = async (n: Node): Promise<Connected> => {
      const c = await clients.mqtt(n.b.port, opts, (client) => client.on('message', (t, payload, packet) => { if (t === topic) got.push({ topic: t, payload, packet: packet as IPublishPacket }); }));
      return c;
    };
    let sub = await onto(n1());
    await subscribeOk(sub.client, { [topic]: { qos: 1 } });
    await routesConverged(`subscribing ${topic}`);
    const pub = await clients.mqtt(n1().b.port, { protocolVersion: 5 });
    // ~1 kHz: 10 messages every 10 ms, each batch acknowledged before the next (bounded in flight).
    let published = 0;
    const publishing = (async () => {
      while (published < N) {
        const batch: Promise<unknown>[] = [];
        for (let k = 0; k < 10 && published < N; k++) batch.push(publish(pub.client, topic, String(published++), { qos: 1 }));
        await Promise.all([...batch, delay(10)]);
      }
    })();
    for (let i = 1; i <= MOVES; i++) {
      await delay(1000);
      const next = await onto(nodes[i % 2]);
      assert.equal(next.connack.sessionPresent, true, `move ${i}: session present = 1`);
      sub = next;
    }
    await publishing;
    await waitUntil(() => new Set(got.map((m) => m.payload.toString())).size >= N,
      () => `all ${N} numbers (got ${new Set(got.map((m) => m.payload.toString())).size} distinct of ${got.length})`, 60_000);
    const firsts = firstArrivals(got).map(Number);
    console.log(`# 3t: ${got.length - N} repeat(s) with DUP over ${MOVES} moves`);
    assert.deepEqual(firsts, Array.from({ length: N }, (_, i) => i), 'every number, first arrivals in order');
    await end(sub.client, { reasonCode: 0 });
    await end(pub.client);
  }
});

describe('3t cluster: the stored copy follows the session (real etcd, --durability process)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const dirs: string[] = [];
  const clients = new Clients();

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(() => tearDownCluster({ clients, brokers, etcd, dirs }));

  it("the old node's store forgets the session once the new node has it; the new node's store keeps it", async () => {
    const common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', `stored${process.pid}`, '--lease-ttl', String(TTL_SEC), '--durability', 'process'];
    const dir1 = makeTempDir('fleetmq-3t-');
    const dir2 = makeTempDir('fleetmq-3t-');
    dirs.push(dir1, dir2);
    const start = async (id: string, dir: string) => { const b = await launchBroker(1, [...common, '--node-id', id, '--data-dir', dir]); brokers.push(b); return b; };
    let d1 = await start('d1', dir1);
    let d2 = await start('d2', dir2);
    await waitUntil(() => [d1, d2].every((b) => /members: d1, d2/.test(b.output())), 'd1 and d2 to see each other', 30_000);
    const id = uid('stored');
    const topic = utopic('stored');
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } };
    const first = await clients.mqtt(d1.port, opts);
    await subscribeOk(first.client, { [topic]: { qos: 1 } });
    await end(first.client);
    const moved = await clients.mqtt(d2.port, opts);
    assert.equal(moved.connack.sessionPresent, true);
    // The handover is complete once d1 counted it (its copy is deleted before it answers the queue).
    await metricAtLeast(d1, 'fleetmq_cluster_handovers_total', { dir: 'out' }, 1);
    await end(moved.client);
    // Both stop (SIGTERM: the lease goes at once) and restart with their data dirs.
    assert.equal(await d1.stop(), 0);
    assert.equal(await d2.stop(), 0);
    d1 = await start('d1', dir1);
    assert.match((await d1.waitForOutput(/store: restored (\d+) sessions/))[0], /restored 0 sessions/, 'd1 deleted its copy');
    d2 = await start('d2', dir2);
    assert.match((await d2.waitForOutput(/store: restored (\d+) sessions/))[0], /restored 1 sessions/, 'd2 stored the session it took');
    await waitUntil(() => [d1, d2].every((b) => /members: d1, d2/.test(b.output())), 'd1 and d2 (restarted) to see each other', 30_000);
    // The restored subscription works: a message published on d2 reaches the session on d2.
    const back = await clients.mqtt(d2.port, opts);
    assert.equal(back.connack.sessionPresent, true, 'd2 restored the session');
    const pub = await clients.mqtt(d2.port, { protocolVersion: 5 });
    await publish(pub.client, topic, 'after-restart', { qos: 1 });
    await back.inbox.waitForPayload('after-restart', 20_000);
    for (const c of [back, pub]) await end(c.client);
  });
});

describe('3t cluster: the new node dies between the phases (real etcd, a proxy in front of the old node)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const clients = new Clients();
  let proxy: TcpProxy | undefined;

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(() => tearDownCluster({ clients, brokers, proxies: [proxy], etcd }));

  it('the old node keeps the whole session when the new one dies before asking for its queue', async () => {
    const common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', `diehalf${process.pid}`, '--lease-ttl', String(TTL_SEC), '--durability', 'none'];
    const aPort = await freePort();
    proxy = await startTcpProxy('127.0.0.1', aPort);
    const a = await launchBroker(1, [...common, '--node-id', 'a', '--cluster-port', String(aPort), '--cluster-advertise-port', String(proxy.port)]);
    brokers.push(a);
    const b = await launchBroker(1, [...common, '--node-id', 'b']);
    brokers.push(b);
    await waitUntil(() => [a, b].every((x) => /members: a, b/.test(x.output())), 'a and b to see each other', 30_000);
    const id = uid('half');
    const topic = utopic('half');
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } };
    const first = await clients.mqtt(a.port, opts);
    await subscribeOk(first.client, { [topic]: { qos: 1 } });
    await end(first.client);
    const pub = await clients.mqtt(a.port, { protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await publish(pub.client, topic, `m${i}`, { qos: 1 });
    // Every call b makes to a waits 1 s in the proxy: b's Finish is still there when b dies.
    proxy.setMode('delay', 1000);
    const moved = await clients.mqtt(b.port, opts);
    assert.equal(moved.connack.sessionPresent, true, 'b took the snapshot');
    await b.kill();
    proxy.setMode('pass');
    for (let i = 5; i < 8; i++) await publish(pub.client, topic, `m${i}`, { qos: 1 });
    await waitUntil(() => /members: a \(-b\)/.test(a.output()), "b to leave a's view", 30_000);
    // a gives the handover up (no Finish within 2 x TTL + 2 s): the session is a's again, whole.
    await waitUntil(() => /not finished: the session is offline here again/.test(a.output()), 'a to give the handover up', 30_000);
    await metricAtLeast(a, 'fleetmq_cluster_handovers_total', { dir: 'failed' }, 1);
    const back = await clients.mqtt(a.port, opts);
    assert.equal(back.connack.sessionPresent, true, "a's session is back");
    const got = await back.inbox.waitFor(8, topic, 20_000);
    assert.deepEqual(got.map((m) => m.payload.toString()), Array.from({ length: 8 }, (_, i) => `m${i}`), 'its queue and what arrived meanwhile, in order');
    for (const c of [back, pub]) await end(c.client);
  });
});
