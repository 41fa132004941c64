// 3y the broker as a cluster member: real broker processes (bin/fleetmq.js) with --etcd and
// --lease-ttl 2 against a real etcd (test/helpers/etcd.ts), one of them through a fault-injecting
// proxy (test/helpers/tcp-proxy.ts).
//  - two nodes join; the startup line names the cluster and the members; each node's retained
//    $SYS/broker/cluster/members lists both; a node SIGKILLed leaves the other's list within
//    TTL + slack, and the other logs the change;
//  - a second broker with a node id already registered exits 1 naming the other incarnation,
//    while the first keeps serving;
//  - a node cut off from etcd fences itself: its connected v5 client gets DISCONNECT 0x9C, its v3
//    client is closed, a new CONNECT gets 0x89 (v5) / 3 (v3), all before the other node sees its
//    key expire (timestamps from this process's monotonic clock, ordered, not measured against a
//    speed); after healing it rejoins with a new incarnation and accepts CONNECTs again, and
//    $SYS counts the fencing, the refusals and the dropped clients;
//  - unreachable etcd at start: a log line while it waits, then exit 1 with the message;
//  - bad cluster flags (--etcd without --node-id, a bad endpoint, a bad node id) exit 2.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import * as mqtt from 'mqtt';
import { startEtcdRetrying, EtcdCluster } from '../helpers/etcd';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import { launchBroker, runCli, freePort, Broker } from '../helpers/broker';
import { Clients } from '../helpers/clients';
import { connackCode } from '../helpers/raw-client';
import { waitUntil, delay } from '../helpers/wait';
import type { IDisconnectPacket } from 'mqtt-packet';
import { tearDownCluster } from '../helpers/cluster-teardown';

const now = () => performance.now();
const TTL_SEC = 2;

/** Every value a node published on one $SYS topic, with the (monotonic) time it arrived here. */
interface TopicLog { values: Array<{ at: number; value: string }>; last(): string | undefined }

describe('3y cluster: broker processes as members (real etcd, --lease-ttl 2)', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy | undefined;
  const brokers: Broker[] = [];
  const clients = new Clients();

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(() => tearDownCluster({ clients, brokers, proxies: [proxy], etcd }));

  async function node(cluster: string, nodeId: string, endpoints = etcd.endpoints().join(','), extra: string[] = []): Promise<Broker> {
    const b = await launchBroker(1, ['--etcd', endpoints, '--node-id', nodeId, '--cluster-name', cluster,
      '--lease-ttl', String(TTL_SEC), '--sys-interval', '1', '--durability', 'none', ...extra]);
    brokers.push(b);
    return b;
  }

  /** Subscribes to `$SYS/broker/cluster/<name>` on `b` and records every value with its arrival time. */
  async function watch(b: Broker, name: string): Promise<TopicLog> {
    const log: TopicLog = { values: [], last: () => log.values.at(-1)?.value };
    const topic = `$SYS/broker/cluster/${name}`;
    const { client } = await clients.mqtt(b.port, {}, (c: mqtt.MqttClient) => {
      c.on('message', (t, payload) => { if (t === topic) log.values.push({ at: now(), value: payload.toString() }); });
    });
    await new Promise<void>((resolve, reject) => client.subscribe(topic, { qos: 0 }, (err) => (err ? reject(err) : resolve())));
    return log;
  }

  /** Time of the first value after `after` that satisfies `pred`, waiting (bounded) for it. */
  async function seen(log: TopicLog, after: number, pred: (v: string) => boolean, what: string, ms: number): Promise<number> {
    const find = () => log.values.find((x) => x.at > after && pred(x.value));
    await waitUntil(() => find() !== undefined, () => `${what} (values so far: ${JSON.stringify(log.values.map((x) => x.value))})`, ms, 10);
    return find()!.at;
  }

  it('two nodes join and each lists both; a node SIGKILLed leaves the other\'s list within TTL + slack', async (t) => {
    const a = await node('c1', 'n1');
    assert.match(a.output(), /fleetmq: cluster c1 as n1 \(incarnation [0-9a-z]+-[0-9a-f]{8}\), members: n1(?:"|\n)/); // the end of the record's msg
    const b = await node('c1', 'n2');
    assert.match(b.output(), /fleetmq: cluster c1 as n2 \(incarnation [0-9a-z]+-[0-9a-f]{8}\), members: n1, n2(?:"|\n)/);
    const onA = await watch(a, 'members');
    const onB = await watch(b, 'members');
    await waitUntil(() => onA.last() === 'n1,n2', () => `n1's $SYS members to list n1,n2 (last: ${onA.last()})`);
    await waitUntil(() => onB.last() === 'n1,n2', () => `n2's $SYS members to list n1,n2 (last: ${onB.last()})`);
    await a.waitForOutput(/cluster c1: members: n1, n2 \(\+n2\)/, 5000);
    const nodeB = await watch(b, 'node');
    await waitUntil(() => /^n2 [0-9a-z]+-[0-9a-f]{8}$/.test(nodeB.last() ?? ''), () => `n2's $SYS node (last: ${nodeB.last()})`);

    const killAt = now();
    await b.kill();
    const goneAt = await seen(onA, killAt, (v) => v === 'n1', 'n1\'s $SYS members to drop n2', TTL_SEC * 1000 + 5000);
    t.diagnostic(`SIGKILL of n2 -> gone from n1's $SYS members after ${Math.round(goneAt - killAt)} ms (TTL ${TTL_SEC} s)`);
    await a.waitForOutput(/cluster c1: members: n1 \(-n2\)/, 5000);

    // A node that stops cleanly revokes its lease: the other sees it go without waiting for the TTL.
    const c = await node('c1', 'n3');
    await seen(onA, goneAt, (v) => v === 'n1,n3', 'n1\'s $SYS members to list n3', 10000);
    const stopAt = now();
    assert.equal(await c.stop(), 0);
    const leftAt = await seen(onA, stopAt, (v) => v === 'n1', 'n1\'s $SYS members to drop n3 after its SIGTERM', 10000);
    t.diagnostic(`SIGTERM of n3 -> gone from n1's $SYS members after ${Math.round(leftAt - stopAt)} ms`);
    // (stderr may still be draining after the exit)
    await waitUntil(() => /cluster c1: left the cluster/.test(c.output()), () => `n3 to log that it left; output:\n${c.output()}`, 5000);
  });

  it('a node id already registered: the second broker exits 1 naming the other incarnation; the first keeps serving', async () => {
    const a = await node('c2', 'dup');
    const incarnation = /cluster c2 as dup \(incarnation ([^)]+)\)/.exec(a.output())![1];
    const r = await runCli(['--port', '0', '--workers', '1', '--durability', 'none', '--etcd', etcd.endpoints().join(','),
      '--node-id', 'dup', '--cluster-name', 'c2', '--lease-ttl', String(TTL_SEC)]);
    assert.equal(r.listened, false, 'the duplicate must not start listening');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`fleetmq: cannot start: node id "dup" is already a member of cluster "c2" \\(incarnation ${incarnation},`));
    // The first is untouched: still a member, still serving.
    const { connack } = await clients.mqtt(a.port, { protocolVersion: 5 });
    assert.equal(connack.reasonCode ?? 0, 0);
    const members = await watch(a, 'members');
    await waitUntil(() => members.last() === 'dup', () => `dup's $SYS members (last: ${members.last()})`);
    assert.doesNotMatch(a.output(), /FENCED/);
  });

  it('cut off from etcd: fences (DISCONNECT 0x9C, CONNACK 0x89 / 3) before the other node sees its key expire; rejoins after healing', async (t) => {
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(etcd.endpoints()[0]).port));
    const cut = await node('c3', 'cut', proxy.url);
    const obs = await node('c3', 'obs');
    const onObs = await watch(obs, 'members');
    await waitUntil(() => onObs.last() === 'cut,obs', () => `obs's $SYS members to list cut,obs (last: ${onObs.last()})`);
    const firstInc = /cluster c3 as cut \(incarnation ([^)]+)\)/.exec(cut.output())![1];

    const v5 = await clients.raw(cut.port, 5);
    const v3 = await clients.raw(cut.port, 4);
    assert.equal(connackCode(v5.connack), 0);
    assert.equal(connackCode(v3.connack), 0);
    await delay(1000); // a few keepalives, so the cut lands anywhere in the keepalive period

    const cutAt = now();
    proxy.setMode('blackhole');
    const disc = await v5.raw.waitFor<IDisconnectPacket>((p) => p.cmd === 'disconnect', 'DISCONNECT from the fenced node', 10000);
    const disconnectedAt = now();
    assert.equal(disc.reasonCode, 0x9c, 'DISCONNECT 0x9C, use another server');
    assert.ok(await v5.raw.waitClosed(5000), 'the v5 connection is closed after its DISCONNECT');
    assert.ok(await v3.raw.waitClosed(5000), 'the v3 connection is closed');
    // New CONNECTs are refused while fenced.
    const r5 = await clients.raw(cut.port, 5);
    const refused5At = now();
    const r3 = await clients.raw(cut.port, 4);
    const refused3At = now();
    assert.equal(connackCode(r5.connack), 0x89, 'v5 CONNACK 0x89 server busy');
    assert.equal(connackCode(r3.connack), 3, 'v3 CONNACK 3 server unavailable');
    assert.ok(await r5.raw.waitClosed(5000) && await r3.raw.waitClosed(5000), 'refused connections are closed');

    const expiredAt = await seen(onObs, cutAt, (v) => v === 'obs', 'obs\'s $SYS members to drop cut (its lease expired)', TTL_SEC * 1000 + 5000);
    t.diagnostic(`cut -> DISCONNECT ${Math.round(disconnectedAt - cutAt)} ms, -> CONNACK 0x89 ${Math.round(refused5At - cutAt)} ms, -> 3 ${Math.round(refused3At - cutAt)} ms, -> expiry seen by obs ${Math.round(expiredAt - cutAt)} ms`);
    assert.ok(disconnectedAt < expiredAt, `DISCONNECT at ${Math.round(disconnectedAt - cutAt)} ms must precede the expiry seen at ${Math.round(expiredAt - cutAt)} ms`);
    assert.ok(refused5At < expiredAt && refused3At < expiredAt, 'the refusals precede the expiry');
    assert.match(cut.output(), /cluster c3: FENCED as cut \(incarnation [^)]+\): no keepalive acknowledged/);
    assert.ok(cut.alive());

    // Healed: it rejoins with a new incarnation, and serves again.
    const healAt = now();
    proxy.setMode('pass');
    const m = await cut.waitForOutput(/cluster c3: rejoined as cut \(incarnation ([^)]+)\), members: cut, obs; accepting connections again/, 10000);
    assert.notEqual(m[1], firstInc);
    t.diagnostic(`heal -> rejoin logged ${Math.round(now() - healAt)} ms`);
    const again = await clients.raw(cut.port, 5);
    assert.equal(connackCode(again.connack), 0, 'CONNACK 0 after the rejoin');
    await seen(onObs, healAt, (v) => v === 'cut,obs', 'obs\'s $SYS members to list cut again', 10000);
    const onCut = await watch(cut, 'members');
    await waitUntil(() => onCut.last() === 'cut,obs', () => `cut's $SYS members after the rejoin (last: ${onCut.last()})`);
    const nodeTopic = await watch(cut, 'node');
    await waitUntil(() => nodeTopic.last() === `cut ${m[1]}`, () => `cut's $SYS node to name the new incarnation (last: ${nodeTopic.last()})`);

    // $SYS counts what happened.
    const counters = new Map<string, string>();
    await clients.mqtt(cut.port, {}, (c: mqtt.MqttClient) => {
      c.on('message', (topic, payload) => counters.set(topic, payload.toString()));
      c.on('connect', () => c.subscribe(['$SYS/broker/cluster/fencings', '$SYS/broker/clients/refused/fenced', '$SYS/broker/clients/disconnected/fenced']));
    });
    await waitUntil(() => counters.get('$SYS/broker/cluster/fencings') === '1'
      && Number(counters.get('$SYS/broker/clients/refused/fenced')) >= 2
      && Number(counters.get('$SYS/broker/clients/disconnected/fenced')) >= 2,
    () => `$SYS fencings 1, refused/fenced >= 2, disconnected/fenced >= 2 (got ${JSON.stringify([...counters])})`);
  });

  it('unreachable etcd at start: says what it waits for, then exits 1', async () => {
    const port = await freePort(); // nothing listens there
    const r = await runCli(['--port', '0', '--workers', '1', '--durability', 'none', '--etcd', `http://127.0.0.1:${port}`,
      '--node-id', 'u1', '--cluster-join-timeout-ms', '3500'], { ms: 30000 });
    assert.equal(r.listened, false);
    assert.equal(r.code, 1, r.stderr);
    // A log record (stdout, the one writer); the reason it cannot start is the plain stderr line.
    assert.match(r.stdout, new RegExp(`fleetmq: cluster fleetmq: waiting for etcd at http://127\\.0\\.0\\.1:${port} \\([0-9.]+ s left\\)`));
    assert.match(r.stderr, new RegExp(`fleetmq: cannot start: etcd unreachable at http://127\\.0\\.0\\.1:${port} for 3500 ms; giving up`));
  });

  it('bad cluster flags exit 2 with one line', async () => {
    const ep = etcd.endpoints()[0];
    const noId = await runCli(['--port', '0', '--etcd', ep]);
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /^fleetmq: --etcd needs --node-id/);
    const badEp = await runCli(['--port', '0', '--etcd', '127.0.0.1:2379', '--node-id', 'x']);
    assert.equal(badEp.code, 2);
    assert.match(badEp.stderr, /^fleetmq: --etcd: invalid etcd endpoint "127\.0\.0\.1:2379"/);
    const badId = await runCli(['--port', '0', '--etcd', ep, '--node-id', 'a/b']);
    assert.equal(badId.code, 2);
    assert.match(badId.stderr, /^fleetmq: invalid --node-id "a\/b"/);
  });
});
