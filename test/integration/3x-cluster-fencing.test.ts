// 3x cluster fencing on real etcd. A node reaches etcd through a TCP proxy (test/helpers/
// tcp-proxy.ts); the other node goes direct and watches.
//  - blackhole (a partition): the cut-off node emits 'fenced' before etcd expires its lease, i.e.
//    fencedAt < leaseExpiredAt where leaseExpiredAt is when the other node's watch saw its key
//    deleted; after healing it rejoins with a new incarnation and holds exactly one key;
//  - healed right after fencing, before etcd expired the old lease: the rejoin removes its own
//    old key (revoking its own old lease) and registers the new incarnation;
//  - its own key deleted by someone else: fences on the watch event and rejoins;
//  - cut connections and a 100 ms delay each way do not fence (TTL 2 s tolerates a keepalive round
//    trip up to TTL − margin − TTL/3 ≈ 830 ms; a delay of 200 ms each way costs ~800 ms on a
//    stream's first round trip and does fence, as it should);
//  - killing the leader of a 3-member etcd fences nobody and changes no view.
// All timestamps come from performance.now() in this one process.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcdRetrying, EtcdCluster } from '../helpers/etcd';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import { member, waitFor, now, sleep, Recorded } from '../cluster/helpers';
import { membersPrefix, parseMember } from '../../src/cluster/membership';
import { Etcd3Client } from '../../src/cluster/etcd-client';

describe('3x cluster fencing (real etcd behind a fault-injecting proxy)', () => {
  let etcd: EtcdCluster | undefined;
  let proxy: TcpProxy | undefined;
  const open: Recorded[] = [];
  const track = (r: Recorded) => { open.push(r); return r; };

  after(async () => {
    for (const r of open) await r.close();
    await proxy?.close();
    await etcd?.stop();
  });

  async function setup(cluster: string, ttlSec = 2) {
    if (!etcd) etcd = await startEtcdRetrying(1);
    if (!proxy) proxy = await startTcpProxy('127.0.0.1', Number(new URL(etcd.endpoints()[0]).port));
    proxy.setMode('pass');
    const cut = track(member([proxy.url], 'cutoff', { cluster, ttlSec }));
    const obs = track(member(etcd.endpoints(), 'observer', { cluster, ttlSec }));
    await cut.m.join();
    await obs.m.join();
    await waitFor('observer to see cutoff', 5000, () => obs.ids().includes('cutoff'));
    return { cut, obs, proxy };
  }

  async function keysOf(cluster: string) {
    const c = new Etcd3Client({ endpoints: etcd!.endpoints() });
    try { return (await c.getPrefix(membersPrefix(cluster))).kvs; } finally { c.close(); }
  }

  it('blackholed: fenced before etcd expires the lease; after healing, rejoins with a new incarnation and one key', async (t) => {
    const { cut, obs, proxy } = await setup('f1');
    const firstInc = cut.m.self()!.incarnation;
    const firstLease = cut.m.currentLeaseId()!;
    await sleep(1000); // a few keepalives, so the cut lands anywhere in the period
    const cutAt = now();
    proxy.setMode('blackhole');
    const fenced = await waitFor('cutoff to fence', 10000, () => cut.fenced[0]);
    const leaseExpiredAt = await waitFor('observer to see cutoff\'s key deleted', 10000, () => obs.firstViewAt(cutAt, 'cutoff', false));
    t.diagnostic(`TTL 2 s, margin ${cut.m.marginMs} ms: cut -> fenced ${Math.round(fenced.at - cutAt)} ms, cut -> expiry seen by the other node ${Math.round(leaseExpiredAt - cutAt)} ms, fenced ${Math.round(leaseExpiredAt - fenced.at)} ms ahead`);
    assert.ok(fenced.lastAckSentAt <= cutAt, 'the last acknowledged keepalive was sent before the cut');
    assert.ok(fenced.at > cutAt, 'fenced after the cut');
    assert.ok(fenced.at >= fenced.deadline, 'fenced no earlier than its own deadline');
    assert.ok(fenced.at < leaseExpiredAt, `fenced at ${Math.round(fenced.at - cutAt)} ms must precede the lease expiry seen at ${Math.round(leaseExpiredAt - cutAt)} ms`);
    assert.equal(fenced.incarnation, firstInc);
    assert.equal(cut.m.state, 'fenced');
    assert.equal(cut.m.self(), null);
    assert.equal(obs.fenced.length, 0);

    // Still cut off: no rejoin can happen.
    await sleep(1000);
    assert.equal(cut.joined.length, 1);
    assert.equal(cut.m.state, 'fenced');

    const healAt = now();
    proxy.setMode('pass');
    const rejoined = await waitFor('cutoff to rejoin', 10000, () => cut.joined[1]);
    t.diagnostic(`heal -> rejoined ${Math.round(rejoined.at - healAt)} ms`);
    assert.equal(rejoined.rejoin, true);
    assert.notEqual(rejoined.incarnation, firstInc);
    assert.notEqual(rejoined.leaseId, firstLease);
    assert.equal(cut.m.state, 'joined');
    await waitFor('observer to see the new incarnation', 5000, () =>
      obs.m.view().members.find((x) => x.nodeId === 'cutoff')?.incarnation === rejoined.incarnation);
    const kvs = (await keysOf('f1')).filter((kv) => kv.key === membersPrefix('f1') + 'cutoff');
    assert.equal(kvs.length, 1);
    assert.equal(parseMember(kvs[0], membersPrefix('f1'))!.incarnation, rejoined.incarnation);
    assert.equal(kvs[0].lease, rejoined.leaseId);
    // The rejoined node's own view is whole again, and it keeps its lease.
    await waitFor('cutoff\'s view to hold both', 5000, () => cut.ids().join() === 'cutoff,observer');
    await sleep(2 * cut.m.ttlMs);
    assert.equal(cut.fenced.length, 1, cut.logs.join('\n'));
    assert.ok(obs.m.view().members.some((x) => x.nodeId === 'cutoff'));
  });

  it('healed right after fencing, before etcd expired the old lease: the old key goes, the new incarnation registers', async () => {
    const { cut, obs, proxy } = await setup('f2');
    const firstInc = cut.m.self()!.incarnation;
    const cutAt = now();
    proxy.setMode('blackhole');
    await waitFor('cutoff to fence', 10000, () => cut.fenced[0]);
    proxy.setMode('pass');
    const rejoined = await waitFor('cutoff to rejoin', 10000, () => cut.joined[1]);
    assert.notEqual(rejoined.incarnation, firstInc);
    await waitFor('observer to see the new incarnation', 5000, () =>
      obs.m.view().members.find((x) => x.nodeId === 'cutoff')?.incarnation === rejoined.incarnation);
    // The observer saw the old incarnation go (revoked or expired) before the new one came.
    const seen = obs.views.filter((v) => v.at > cutAt).map((v) => v.view.members.find((x) => x.nodeId === 'cutoff')?.incarnation ?? '-');
    assert.deepEqual([...new Set(seen)].filter((s) => s !== firstInc), ['-', rejoined.incarnation], seen.join(' '));
    const kvs = (await keysOf('f2')).filter((kv) => kv.key.endsWith('/cutoff'));
    assert.equal(kvs.length, 1);
    assert.equal(kvs[0].lease, rejoined.leaseId);
  });

  it('its own key deleted behind its back (lease still alive): fences at once and rejoins with a new incarnation', async () => {
    const { cut, obs } = await setup('f5');
    const firstInc = cut.m.self()!.incarnation;
    const kv = (await keysOf('f5')).find((x) => x.key.endsWith('/cutoff'))!;
    const c = new Etcd3Client({ endpoints: etcd!.endpoints() });
    const delAt = now();
    try { assert.equal(await c.deleteIfUnchanged(kv.key, kv.modRevision), true); } finally { c.close(); }
    const fenced = await waitFor('cutoff to fence', 5000, () => cut.fenced[0]);
    assert.match(fenced.reason, /our key was deleted in etcd/);
    assert.ok(fenced.at - delAt < cut.m.ttlMs - cut.m.marginMs, 'fenced on the watch event, not by the deadline');
    const rejoined = await waitFor('cutoff to rejoin', 10000, () => cut.joined[1]);
    assert.notEqual(rejoined.incarnation, firstInc);
    await waitFor('observer to see the new incarnation', 5000, () =>
      obs.m.view().members.find((x) => x.nodeId === 'cutoff')?.incarnation === rejoined.incarnation);
  });

  it('cut connections and a 100 ms delay each way do not fence', async (t) => {
    const { cut, obs, proxy } = await setup('f3');
    const viewsBefore = obs.views.length;
    for (let i = 0; i < 4; i++) { proxy.cut(); await sleep(500); }
    proxy.setMode('delay', 100);
    await sleep(2 * cut.m.ttlMs);
    proxy.setMode('pass');
    await sleep(500);
    t.diagnostic(`4 cuts + 100 ms delay: max gap between acknowledged keepalives ${Math.round(cut.m.stats.maxAckGapMs)} ms (fence window ${cut.m.ttlMs - cut.m.marginMs} ms)`);
    assert.equal(cut.fenced.length, 0, cut.logs.join('\n'));
    assert.equal(cut.m.state, 'joined');
    assert.equal(obs.views.length, viewsBefore, 'the observer saw no view change');
    assert.deepEqual(cut.ids(), ['cutoff', 'observer']);
  });

  it('killing the leader of a 3-member etcd fences no node and changes no view', async (t) => {
    // TTL 5 s (the default is 10 s): fence window 4 s against the ~2 s stall of a leader change.
    const ttlSec = 5;
    const three = await startEtcdRetrying(3);
    try {
      const a = track(member(three.endpoints(), 'a', { cluster: 'f4', ttlSec }));
      const b = track(member(three.endpoints(), 'b', { cluster: 'f4', ttlSec }));
      await a.m.join();
      await b.m.join();
      await waitFor('both views to hold a and b', 5000, () => a.ids().join() === 'a,b' && b.ids().join() === 'a,b');
      await sleep(1000);
      const leader = await three.leader();
      const viewsBefore = [a.views.length, b.views.length];
      const okBefore = [a.m.stats.keepalivesOk, b.m.stats.keepalivesOk];
      const killAt = now();
      await three.kill(leader);
      const next = await three.leader(15000);
      const electedAt = now();
      assert.notEqual(next.name, leader.name);
      // At least one full TTL after the kill, and every node renewed several times since.
      await sleep(Math.max(0, killAt + ttlSec * 1000 + 1000 - now()));
      await waitFor('both nodes to renew after the kill', 10000, () =>
        a.m.stats.keepalivesOk >= okBefore[0] + 3 && b.m.stats.keepalivesOk >= okBefore[1] + 3);
      t.diagnostic(`leader ${leader.name} killed; new leader ${next.name} seen after ${Math.round(electedAt - killAt)} ms; max gap between acknowledged keepalives: a ${Math.round(a.m.stats.maxAckGapMs)} ms, b ${Math.round(b.m.stats.maxAckGapMs)} ms (fence window ${a.m.ttlMs - a.m.marginMs} ms)`);
      assert.equal(a.fenced.length + b.fenced.length, 0, [...a.logs, ...b.logs].join('\n'));
      assert.deepEqual([a.views.length, b.views.length], viewsBefore, 'no view changed');
      assert.deepEqual(a.ids(), ['a', 'b']);
      assert.deepEqual(b.ids(), ['a', 'b']);
      assert.ok(a.m.stats.maxAckGapMs < a.m.ttlMs - a.m.marginMs);
      // The cluster still works for membership: a third node joins and both see it.
      const c = track(member(three.endpoints(), 'c', { cluster: 'f4', ttlSec }));
      await c.m.join();
      await waitFor('a and b to see c', 5000, () => a.ids().includes('c') && b.ids().includes('c'));
      for (const r of [a, b, c]) await r.close();
    } finally {
      await three.stop();
    }
  });
});
