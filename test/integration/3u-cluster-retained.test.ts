// 3u retained messages across a cluster: three real broker processes (--durability process, each
// with its own data dir) on a real etcd (--lease-ttl 2), replicating their retained messages
// over real gRPC.
//  - a retained set on one node is given to a new subscriber on every other node; a clear on
//    another node removes it everywhere; message expiry holds on the other nodes too;
//  - concurrent sets (and a set racing a clear) on different nodes converge to one value on
//    every node (last writer by hybrid logical clock);
//  - a node fenced off etcd (a blackholing proxy) while a message is cleared and another set:
//    when it says it accepts connections again, it holds the new state;
//  - a node stopped, the message cleared meanwhile (and another set), the node restarted with
//    its data dir: the cleared message does not come back on any node (its stale copy reaches
//    the others and is refused: counted), and what was set meanwhile is there at once;
//  - a node joining late holds every retained message by the time /readyz first says 200, and a
//    subscriber right then gets them all; its /readyz is never 200 before that.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcdRetrying, EtcdCluster } from '../helpers/etcd';
import { launchBroker, freePort, Broker, HTTP_LISTEN_RE, makeTempDir, removeDir } from '../helpers/broker';
import { Clients, subscribeOk, publish, end } from '../helpers/clients';
import { request } from '../helpers/http';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { delay } from '../helpers/wait';
import { utopic } from '../helpers/ids';
import { tearDownCluster } from '../helpers/cluster-teardown';

const TTL_SEC = 2;
const CONVERGE_MS = 30_000;

interface Node { id: string; b: Broker; http: number; dir: string }

describe('3u cluster: retained messages replicated to every node (real etcd, real gRPC, real RocksDB)', () => {
  let etcd: EtcdCluster;
  const nodes = new Map<string, Node>();
  const extra: Broker[] = [];
  const dirs: string[] = [];
  const clients = new Clients();
  const cluster = `retained${process.pid}`;
  /** A retained topic every node holds: its arrival ends a subscriber's retained messages (below). */
  const SENTINEL = utopic('sentinel');
  let common: string[];

  async function start(id: string, dir: string): Promise<Node> {
    const b = await launchBroker(1, [...common, '--node-id', id, '--data-dir', dir]);
    const n = { id, b, http: Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]), dir };
    nodes.set(id, n);
    return n;
  }

  const node = (id: string) => nodes.get(id)!;

  before(async () => {
    etcd = await startEtcdRetrying(1);
    common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', cluster, '--lease-ttl', String(TTL_SEC), '--durability', 'process'];
    for (const id of ['r1', 'r2', 'r3']) {
      const dir = makeTempDir('fleetmq-3u-');
      dirs.push(dir);
      await start(id, dir);
    }
    const p = await clients.mqtt(node('r1').b.port, { protocolVersion: 5 });
    await publish(p.client, SENTINEL, 'end', { qos: 1, retain: true });
    await end(p.client);
    for (const id of ['r1', 'r2', 'r3']) await sentinelAt(id);
  });

  /** Polls new subscribers on `id` until one gets the sentinel (bounded). */
  async function sentinelAt(id: string): Promise<void> {
    const deadline = Date.now() + CONVERGE_MS;
    for (;;) {
      const c = await clients.mqtt(node(id).b.port, { protocolVersion: 5 });
      await subscribeOk(c.client, { [SENTINEL]: { qos: 1 } });
      const got = await c.inbox.waitFor(1, SENTINEL, 2_000).then(() => true, () => false);
      await end(c.client, {}, true);
      if (got) return;
      if (Date.now() > deadline) throw new Error(`${id} never gave the sentinel retained message`);
    }
  }

  after(async () => {
    await clients.closeAll();
    for (const n of nodes.values()) await n.b.kill();
    for (const b of extra) await b.kill();
    await etcd?.stop();
    for (const d of dirs) removeDir(d);
  });

  /**
   * The retained messages a new subscriber on `id` gets for `filter`: subscribes to `filter`, then
   * (a second SUBSCRIBE) to the sentinel; a session sends one subscription's retained messages
   * after the other's, so the sentinel's arrival means `filter`'s are all in.
   */
  async function retainedAt(id: string, filter: string): Promise<Array<{ topic: string; payload: string }>> {
    const c = await clients.mqtt(node(id).b.port, { protocolVersion: 5 });
    try {
      await subscribeOk(c.client, { [filter]: { qos: 1 } });
      await subscribeOk(c.client, { [SENTINEL]: { qos: 1 } });
      await c.inbox.waitFor(1, SENTINEL, 20_000);
      return c.inbox.msgs.filter((m) => m.topic !== SENTINEL).map((m) => ({ topic: m.topic, payload: m.payload.toString() }));
    } finally {
      await end(c.client, {}, true);
    }
  }

  async function payloadAt(id: string, topic: string): Promise<string | null> {
    const got = await retainedAt(id, topic);
    assert.ok(got.length <= 1, `at most one retained message on ${topic} at ${id}: ${JSON.stringify(got)}`);
    return got.length ? got[0].payload : null;
  }

  /** Polls new subscribers on `id` until `topic`'s retained payload is `want` (null: none). */
  async function eventually(id: string, topic: string, want: string | null, ms = CONVERGE_MS): Promise<void> {
    const deadline = Date.now() + ms;
    let got: string | null = null;
    while ((got = await payloadAt(id, topic)) !== want) {
      if (Date.now() > deadline) throw new Error(`${id}: retained on ${topic} is ${JSON.stringify(got)}, want ${JSON.stringify(want)} after ${ms} ms`);
      await delay(100);
    }
  }

  /** Polls until every running node gives the same payload for `topic`; returns it. */
  async function converged(topic: string, ms = CONVERGE_MS): Promise<string | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const seen = await Promise.all([...nodes.keys()].map((id) => payloadAt(id, topic)));
      if (seen.every((p) => p === seen[0])) return seen[0];
      if (Date.now() > deadline) throw new Error(`${topic} did not converge within ${ms} ms: ${JSON.stringify(seen)}`);
      await delay(100);
    }
  }

  async function metric(n: Node, family: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await request(n.http, '/metrics');
    assert.equal(r.status, 200);
    return sampleValue(parsePromText(r.body), family, labels);
  }

  async function pub(id: string, topic: string, payload: string, props: Record<string, unknown> = {}): Promise<void> {
    const c = await clients.mqtt(node(id).b.port, { protocolVersion: 5 });
    await publish(c.client, topic, payload, { qos: 1, retain: true, properties: props });
    await end(c.client);
  }

  it('a set on r1 reaches new subscribers on r2 and r3; a clear on r2 removes it everywhere', async () => {
    const topic = utopic('set');
    await pub('r1', topic, 'v1');
    await eventually('r2', topic, 'v1');
    await eventually('r3', topic, 'v1');
    await pub('r2', topic, '');
    for (const id of ['r1', 'r2', 'r3']) await eventually(id, topic, null);
    assert.ok(await metric(node('r1'), 'fleetmq_cluster_retained_sent_total') > 0, 'r1 counted what it sent');
    assert.ok(await metric(node('r1'), 'fleetmq_cluster_retained_received_total', { result: 'applied' }) > 0, 'r1 applied r2\'s clear');
    assert.ok(await metric(node('r1'), 'fleetmq_cluster_retained_tombstones') >= 1, 'r1 keeps a tombstone for the clear');
  });

  it('a wildcard subscriber on r3 gets every topic set on r1 and r2, each once', async () => {
    const base = utopic('wild');
    for (let i = 0; i < 20; i++) await pub(i % 2 ? 'r1' : 'r2', `${base}/${i}`, `w${i}`);
    const deadline = Date.now() + CONVERGE_MS;
    let got: Array<{ topic: string; payload: string }> = [];
    while ((got = await retainedAt('r3', `${base}/#`)).length < 20 && Date.now() < deadline) await delay(100);
    assert.deepEqual(got.map((m) => m.payload).sort(), Array.from({ length: 20 }, (_, i) => `w${i}`).sort());
  });

  it('message expiry holds on every node: a retained message with an expiry is gone on r2 and r3 after it', async () => {
    const topic = utopic('exp');
    await pub('r1', topic, 'short', { messageExpiryInterval: 3 });
    await eventually('r2', topic, 'short');
    // [MQTT-3.3.2-5]: once expired it is not sent to a new subscriber, on any node.
    for (const id of ['r2', 'r3', 'r1']) await eventually(id, topic, null, 20_000);
  });

  it('concurrent sets on three nodes, and a set racing a clear, converge to one value on every node', async () => {
    for (let round = 0; round < 5; round++) {
      const topic = utopic(`race${round}`);
      await Promise.all([pub('r1', topic, `a${round}`), pub('r2', topic, `b${round}`), pub('r3', topic, `c${round}`)]);
      const v = await converged(topic);
      assert.ok(v !== null && [`a${round}`, `b${round}`, `c${round}`].includes(v), `one of the sets won: ${v}`);
      // The same topic again, a set on r3 racing a clear on r1.
      await Promise.all([pub('r3', topic, `d${round}`), pub('r1', topic, '')]);
      const w = await converged(topic);
      assert.ok(w === null || w === `d${round}`, `the set or the clear won: ${w}`);
    }
  });

  it('a stale node restarted with its data dir does not bring back a message cleared while it was down', async () => {
    const gone = utopic('gone');
    const kept = utopic('kept');
    const later = utopic('later');
    await pub('r1', gone, 'old');
    await pub('r1', kept, 'k1');
    for (const id of ['r2', 'r3']) { await eventually(id, gone, 'old'); await eventually(id, kept, 'k1'); }
    const r3 = node('r3');
    assert.equal(await r3.b.stop(), 0, 'r3 stopped cleanly (its store holds "old")');
    nodes.delete('r3');
    // Meanwhile: cleared on r1, updated and set on r2.
    await pub('r1', gone, '');
    await pub('r2', kept, 'k2');
    await pub('r2', later, 'L');
    for (const id of ['r1', 'r2']) { await eventually(id, gone, null); await eventually(id, kept, 'k2'); }
    const staleBefore = (await metric(node('r1'), 'fleetmq_cluster_retained_received_total', { result: 'stale' })) +
      (await metric(node('r2'), 'fleetmq_cluster_retained_received_total', { result: 'stale' }));
    const back = await start('r3', r3.dir);
    assert.match(back.b.output(), /retained messages caught up with every peer/, 'r3 caught up before it listened');
    // Right after it listens: the clear, the update and the new set are there, nothing stale.
    assert.equal(await payloadAt('r3', gone), null, 'r3 does not serve the cleared message');
    assert.equal(await payloadAt('r3', kept), 'k2', 'r3 has the update made while it was down');
    assert.equal(await payloadAt('r3', later), 'L', 'r3 has the message set while it was down');
    // Its stale copies went to r1 and r2 in its snapshot and were refused there.
    const deadline = Date.now() + CONVERGE_MS;
    while ((await metric(node('r1'), 'fleetmq_cluster_retained_snapshots_total')) < 1 && Date.now() < deadline) await delay(100);
    for (;;) {
      const stale = (await metric(node('r1'), 'fleetmq_cluster_retained_received_total', { result: 'stale' })) +
        (await metric(node('r2'), 'fleetmq_cluster_retained_received_total', { result: 'stale' }));
      if (stale >= staleBefore + 2) break;
      if (Date.now() > deadline) throw new Error(`r3's stale entries were not refused by r1 and r2 (stale ${staleBefore} -> ${stale})`);
      await delay(100);
    }
    for (const id of ['r1', 'r2', 'r3']) {
      assert.equal(await payloadAt(id, gone), null, `${id}: the cleared message stays cleared`);
      assert.equal(await payloadAt(id, kept), 'k2', `${id}: the newer value stays`);
    }
  });

  it('a node joining late holds every retained message when /readyz first says 200, and a subscriber then gets them all', async () => {
    const base = utopic('late');
    const N = 300;
    const c = await clients.mqtt(node('r1').b.port, { protocolVersion: 5 });
    await Promise.all(Array.from({ length: N }, (_, i) => publish(c.client, `${base}/${i}`, `p${i}`, { qos: 1, retain: true })));
    await end(c.client);
    const dir = makeTempDir('fleetmq-3u-');
    dirs.push(dir);
    // /readyz is polled from before the broker starts: never 200 before it caught up.
    const http = await freePort();
    const starting = launchBroker(1, [...common, '--node-id', 'r4', '--data-dir', dir, '--http-port', String(http)]);
    starting.then((x) => extra.push(x), () => undefined);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await request(http, '/readyz').catch(() => ({ status: 0, body: '' }));
      if (r.status === 200) break;
      if (Date.now() > deadline) throw new Error(`r4 not ready within 60 s: ${r.status} ${r.body}`);
      await delay(20);
    }
    const r4 = await starting;
    nodes.set('r4', { id: 'r4', b: r4, http, dir });
    const got = await retainedAt('r4', `${base}/#`).catch((err: Error) => { throw new Error(`${err.message}; r4 printed:\n${r4.output()}`); });
    assert.equal(got.length, N, `r4 gave all ${N} retained messages to a subscriber right after /readyz said 200`);
    assert.deepEqual(new Set(got.map((m) => m.payload)), new Set(Array.from({ length: N }, (_, i) => `p${i}`)));
  });
});

describe('3u cluster: a node fenced off etcd catches up with the retained messages changed meanwhile before it takes clients again', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy | undefined;
  const brokers: Broker[] = [];
  const clients = new Clients();
  const cluster = `retfence${process.pid}`;
  const SENTINEL = utopic('fsentinel');

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(() => tearDownCluster({ clients, brokers, proxies: [proxy], etcd }));

  async function node(id: string, endpoint: string): Promise<Broker> {
    const b = await launchBroker(1, ['--etcd', endpoint, '--cluster-name', cluster, '--node-id', id, '--lease-ttl', String(TTL_SEC), '--durability', 'none']);
    brokers.push(b);
    return b;
  }

  /** What a new subscriber on `b` gets for `topic` (the sentinel's arrival ends the retained messages). */
  async function payloadOn(b: Broker, topic: string): Promise<string | null> {
    const c = await clients.mqtt(b.port, { protocolVersion: 5 });
    try {
      await subscribeOk(c.client, { [topic]: { qos: 1 } });
      await subscribeOk(c.client, { [SENTINEL]: { qos: 1 } });
      await c.inbox.waitFor(1, SENTINEL, 20_000);
      const got = c.inbox.on(topic);
      return got.length ? got[0].payload.toString() : null;
    } finally {
      await end(c.client, {}, true);
    }
  }

  async function pubOn(b: Broker, topic: string, payload: string): Promise<void> {
    const c = await clients.mqtt(b.port, { protocolVersion: 5 });
    await publish(c.client, topic, payload, { qos: 1, retain: true });
    await end(c.client);
  }

  it('cleared and set while it was fenced: right after it accepts connections again, it holds the new state', async () => {
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(etcd.endpoints()[0]).port));
    const cut = await node('f1', proxy.url);
    const other = await node('f2', etcd.endpoints()[0]);
    const x = utopic('fx');
    const y = utopic('fy');
    await pubOn(other, SENTINEL, 'end');
    await pubOn(other, x, 'x1');
    const deadline = Date.now() + CONVERGE_MS;
    while ((await payloadOn(cut, x).catch(() => null)) !== 'x1') {
      if (Date.now() > deadline) throw new Error('f1 never got x1');
      await delay(100);
    }
    proxy.setMode('blackhole');
    await cut.waitForOutput(/FENCED as f1/, 20_000);
    // f2 sees f1 gone (its lease expired), then changes what f1 holds.
    await other.waitForOutput(/members: f2 \(-f1\)/, 20_000);
    await pubOn(other, x, '');
    await pubOn(other, y, 'y1');
    proxy.setMode('pass');
    await cut.waitForOutput(/rejoined as f1 \(incarnation [^)]+\), members: f1, f2; accepting connections again/, 40_000);
    assert.equal((cut.output().match(/retained messages caught up with every peer/g) ?? []).length, 2, 'caught up at start and at the rejoin');
    assert.equal(await payloadOn(cut, x), null, 'the clear made while f1 was fenced is there at once');
    assert.equal(await payloadOn(cut, y), 'y1', 'the set made while f1 was fenced is there at once');
  });
});
