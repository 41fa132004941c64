// 3w the client-id registry across nodes: real broker processes (bin/fleetmq.js, one worker each)
// with --etcd and --lease-ttl 2 against a real etcd (test/helpers/etcd.ts), raw MQTT clients.
//  - a client id taken on another node: the old v5 connection gets DISCONNECT 0x8E [MQTT5-3.1.4-3]
//    before the new CONNACK, a v3.1.1 one is closed;
//  - claim race: 3 nodes × N ids, each id connecting at once on every node: exactly one live
//    connection per id at the end (the brokers' own clients/connected gauges agree), every loser
//    that got a CONNACK got DISCONNECT 0x8E. N = 200: this machine has 2 cores shared with other
//    jobs, and 600 connections at once is what it takes here without making the test about load;
//  - zero etcd writes per CONNECT: the etcd revision does not move over 100 connects;
//  - flapping: one id connecting alternately to two nodes: every connection but the last ends
//    with 0x8E, no node dies, one owner at the end;
//  - a node joining mid-race: its ids' homes move; exactly one live connection per id at the end,
//    and a second round of claims (on all four nodes) takes every id over cleanly.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { startEtcdRetrying, type EtcdCluster } from '../helpers/etcd';
import { launchBroker, HTTP_LISTEN_RE, type Broker } from '../helpers/broker';
import { RawClient } from '../helpers/raw-client';
import { request } from '../helpers/http';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { waitUntil, mapLimit } from '../helpers/wait';

const TTL_SEC = 2;
const RACE_IDS = 200;

interface Attempt { id: string; node: number; client: RawClient; connack: IConnackPacket | null }

describe('3w cluster: one owner per client id across nodes (real etcd, 3 broker processes)', () => {
  let etcd: EtcdCluster;
  const brokers: Broker[] = [];
  const raws: RawClient[] = [];

  before(async () => {
    etcd = await startEtcdRetrying(1);
    for (const id of ['n1', 'n2', 'n3']) await node(id);
    await waitUntil(() => brokers.every((b) => /members: n1, n2, n3/.test(b.output())), 'every node to see n1, n2, n3', 20_000);
  });
  after(async () => {
    for (const r of raws) r.socket.destroy();
    for (const b of brokers) await b.kill();
    await etcd?.stop();
  });

  async function node(nodeId: string): Promise<Broker> {
    const b = await launchBroker(1, ['--etcd', etcd.endpoints().join(','), '--node-id', nodeId, '--cluster-name', 'reg',
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

  async function metric(b: Broker, family: string, labels: Record<string, string> = {}): Promise<number> {
    const m = b.output().match(HTTP_LISTEN_RE);
    assert.ok(m, 'the broker printed its HTTP address');
    const res = await request(Number(m[2]), '/metrics');
    return sampleValue(parsePromText(res.body), family, labels);
  }

  const ok = (a: Attempt) => a.connack !== null && (a.connack.reasonCode ?? a.connack.returnCode) === 0;
  const taken = (a: Attempt) => a.client.packets.some((p) => p.cmd === 'disconnect' && (p as IDisconnectPacket).reasonCode === 0x8e);

  it('claim race: 3 nodes × N ids connecting at once: one live connection per id, the losers got 0x8E', async () => {
    const ids = Array.from({ length: RACE_IDS }, (_, i) => `race-${i}`);
    const jobs: Array<[number, string]> = [];
    for (const id of ids) for (let n = 0; n < 3; n++) jobs.push([n, id]);
    jobs.sort(() => Math.random() - 0.5);
    const all = await Promise.all(jobs.map(([n, id]) => attempt(brokers[n], n, id)));
    await settleOneEach(all, ids);
    let total = 0;
    for (const b of brokers) total += await metric(b, 'fleetmq_clients_connected');
    // The brokers agree: as many clients connected on the three nodes as ids (the earlier test's two stay).
    assert.equal(total, RACE_IDS + 2, 'clients connected, summed over the nodes');
  });

  it('zero etcd writes per CONNECT: the revision does not move over 100 connects', async () => {
    const client = new Etcd3({ hosts: etcd.endpoints() });
    try {
      const rev = async () => BigInt((await client.maintenance.status()).header.revision);
      const before = await rev();
      const done = await mapLimit(Array.from({ length: 100 }, (_, i) => i), 20, (i) => attempt(brokers[i % 3], i % 3, `w-${i}`));
      assert.ok(done.every(ok), 'every connect succeeded');
      const afterRev = await rev();
      assert.equal(afterRev, before, `etcd revision moved from ${before} to ${afterRev} over 100 connects`);
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
  });

  it('a node joining mid-race: one live connection per id; a second round on four nodes takes each over', async () => {
    const ids = Array.from({ length: RACE_IDS }, (_, i) => `join-${i}`);
    const jobs: Array<[number, string]> = [];
    for (const id of ids) for (let n = 0; n < 3; n++) jobs.push([n, id]);
    jobs.sort(() => Math.random() - 0.5);
    const half = jobs.length >> 1;
    const first = Promise.all(jobs.slice(0, half).map(([n, id]) => attempt(brokers[n], n, id)));
    const joining = node('n4');
    const second = Promise.all(jobs.slice(half).map(([n, id]) => attempt(brokers[n], n, id)));
    const all = [...await first, ...await second];
    await joining;
    await waitUntil(() => brokers.slice(0, 3).every((b) => /members: n1, n2, n3, n4/.test(b.output())), 'every node to see n4', 20_000);
    await settleOneEach(all, ids);
    const again = await Promise.all(ids.map((id, i) => attempt(brokers[i % 4], i % 4, id)));
    assert.ok(again.every(ok), `every second-round connect succeeded: ${again.filter((a) => !ok(a)).map((a) => a.client.describe()).slice(0, 3).join('; ')}`);
    const winners = all.filter((a) => ok(a) && !a.client.closed);
    for (const w of winners) {
      assert.equal(await w.client.waitClosed(10_000), true, `${w.id}'s first-round connection was taken over`);
      assert.ok(taken(w), `${w.id}: ${w.client.describe()}`);
    }
    assert.ok(again.every((a) => !a.client.closed), 'every second-round connection lives');
  });

  /** Waits until each id has exactly one open connection with a successful CONNACK, and checks the losers. */
  async function settleOneEach(all: Attempt[], ids: string[]): Promise<void> {
    const live = (id: string) => all.filter((a) => a.id === id && ok(a) && !a.client.closed).length;
    await waitUntil(() => ids.every((id) => live(id) === 1), () => {
      const bad = ids.filter((id) => live(id) !== 1).slice(0, 5);
      return `one live connection per id (not so for ${bad.map((id) => `${id}: ${live(id)} [${all.filter((a) => a.id === id).map((a) => `n${a.node + 1} ${a.client.describe()}`).join(' | ')}]`).join('; ')})`;
    }, 30_000, 50);
    for (const a of all) {
      if (!ok(a)) assert.fail(`${a.id} on n${a.node + 1} was refused: ${a.client.describe()}`);
      if (a.client.closed) assert.ok(taken(a), `${a.id} on n${a.node + 1} closed without 0x8E: ${a.client.describe()}`);
    }
  }

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
