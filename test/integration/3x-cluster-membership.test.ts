// 3x cluster membership on a real 1-member etcd (Debian's etcd 3.4, data on /dev/shm): two nodes
// see each other; a duplicate node id is refused naming the other incarnation; leave() removes
// the key at once; a SIGKILLed member process leaves the view within TTL + 1 s (+ slack);
// unreachable etcd at start waits with log lines, then exits 1; a garbage or wrong endpoint is a
// clear error. TTL 2 s unless stated. Timing assertions compare timestamps of one monotonic clock
// (performance.now() in this process); the slack for this loaded 2-core machine is stated.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { startEtcdRetrying, EtcdCluster, freePort } from '../helpers/etcd';
import { startTcpProxy } from '../helpers/tcp-proxy';
import { member, spawnMember, waitFor, now, Recorded, MemberProc } from '../cluster/helpers';
import { DuplicateNodeError, EtcdUnreachableError, membersPrefix, parseMember } from '../../src/cluster/membership';
import { Etcd3Client } from '../../src/cluster/etcd-client';

/** Extra time allowed on top of the protocol's own bound, for a loaded 2-core machine. */
const SLACK_MS = 1500;

describe('3x cluster membership (real etcd, 1 member)', () => {
  let etcd: EtcdCluster;
  const open: Recorded[] = [];
  const procs: MemberProc[] = [];
  const track = (r: Recorded) => { open.push(r); return r; };

  before(async () => { etcd = await startEtcdRetrying(1); });
  after(async () => {
    for (const p of procs) await p.kill();
    for (const r of open) await r.close();
    await etcd?.stop();
  });

  it('two nodes join and see each other, with their incarnations, at the same revision', async () => {
    const a = track(member(etcd.endpoints(), 'a1', { cluster: 'c1' }));
    const b = track(member(etcd.endpoints(), 'b1', { cluster: 'c1' }));
    await a.m.join();
    await b.m.join();
    await waitFor('both views to hold a1 and b1', 5000, () => a.ids().join() === 'a1,b1' && b.ids().join() === 'a1,b1');
    assert.equal(a.m.view().revision, b.m.view().revision);
    const incA = a.m.self()!.incarnation;
    const incB = b.m.self()!.incarnation;
    assert.notEqual(incA, incB);
    for (const r of [a, b]) {
      const got = Object.fromEntries(r.m.view().members.map((x) => [x.nodeId, x]));
      assert.equal(got.a1.incarnation, incA);
      assert.equal(got.b1.incarnation, incB);
      assert.equal(got.a1.advertise, '127.0.0.1');
      assert.equal(got.a1.clusterPort, 7000);
    }
    assert.equal(a.joined.length, 1);
    assert.equal(a.joined[0].rejoin, false);
    // Keepalives keep both alive well past the TTL.
    await new Promise((r) => setTimeout(r, 2 * a.m.ttlMs));
    assert.equal(a.fenced.length + b.fenced.length, 0, [...a.logs, ...b.logs].join('\n'));
    assert.deepEqual(b.ids(), ['a1', 'b1']);
    assert.ok(a.m.stats.keepalivesOk >= 4, `a1 sent ${a.m.stats.keepalivesOk} keepalives in 2×TTL`);
  });

  it('a duplicate node id is refused with an error naming the other incarnation; the first keeps its key', async () => {
    const a = track(member(etcd.endpoints(), 'dup', { cluster: 'c2' }));
    await a.m.join();
    const first = a.m.self()!.incarnation;
    const b = track(member(etcd.endpoints(), 'dup', { cluster: 'c2' }));
    await assert.rejects(b.m.join(), (err: Error) => {
      assert.ok(err instanceof DuplicateNodeError, String(err));
      assert.match(err.message, /node id "dup" is already a member of cluster "c2"/);
      assert.ok(err.message.includes(`incarnation ${first}`), err.message);
      return true;
    });
    assert.equal(b.m.state, 'idle');
    const c = new Etcd3Client({ endpoints: etcd.endpoints() });
    try {
      const list = await c.getPrefix(membersPrefix('c2'));
      assert.equal(list.kvs.length, 1);
      assert.equal(parseMember(list.kvs[0], membersPrefix('c2'))!.incarnation, first);
      assert.equal(list.kvs[0].lease, a.m.currentLeaseId());
    } finally { c.close(); }
  });

  it('leave() removes the node from the others\' view at once (well before its TTL of 10 s); a new join is a new incarnation', async () => {
    const a = track(member(etcd.endpoints(), 'a3', { cluster: 'c3', ttlSec: 10 }));
    const b = track(member(etcd.endpoints(), 'b3', { cluster: 'c3', ttlSec: 10 }));
    await a.m.join();
    await b.m.join();
    await waitFor('b3 to see a3', 5000, () => b.ids().includes('a3'));
    const firstInc = a.m.self()!.incarnation;
    const t0 = now();
    await a.m.leave();
    const goneAt = await waitFor('b3 to see a3 gone', 5000, () => b.firstViewAt(t0, 'a3', false));
    assert.ok(goneAt - t0 < 2000, `a3 gone ${Math.round(goneAt - t0)} ms after leave() (TTL 10 s)`);
    assert.equal(a.m.state, 'left');
    const again = track(member(etcd.endpoints(), 'a3', { cluster: 'c3', ttlSec: 10 }));
    await again.m.join();
    assert.notEqual(again.m.self()!.incarnation, firstInc);
    await waitFor('b3 to see a3 back', 5000, () => b.ids().includes('a3'));
    assert.equal(b.m.view().members.find((x) => x.nodeId === 'a3')!.incarnation, again.m.self()!.incarnation);
  });

  it('a member process killed with SIGKILL leaves the view within TTL + 1 s (+ slack)', async (t) => {
    const ttlSec = 2;
    const b = track(member(etcd.endpoints(), 'watcher', { cluster: 'c4', ttlSec }));
    await b.m.join();
    const p = spawnMember({ endpoints: etcd.endpoints(), cluster: 'c4', nodeId: 'victim', ttlSec });
    procs.push(p);
    await waitFor('the member process to join', 10000, () => /"ev":"joined"/.test(p.stdout()));
    await waitFor('watcher to see victim', 5000, () => b.ids().includes('victim'));
    // Let a few keepalives go through so the kill lands at a random point of the keepalive period.
    await new Promise((r) => setTimeout(r, 1000));
    const killAt = now();
    await p.kill();
    const goneAt = await waitFor('victim to leave the view', ttlSec * 1000 + 1000 + SLACK_MS + 3000, () => b.firstViewAt(killAt, 'victim', false));
    const ms = goneAt - killAt;
    t.diagnostic(`SIGKILL -> gone from the view: ${Math.round(ms)} ms (TTL ${ttlSec} s)`);
    assert.ok(ms <= ttlSec * 1000 + 1000 + SLACK_MS, `gone ${Math.round(ms)} ms after SIGKILL; bound TTL + 1 s + ${SLACK_MS} ms slack`);
    // It went by lease expiry, not earlier: its last keepalive was at most ~TTL/3 before the kill.
    assert.ok(ms >= ttlSec * 1000 / 2, `gone only ${Math.round(ms)} ms after SIGKILL: too early for a lease expiry`);
    assert.equal(b.fenced.length, 0);
  });

  it('a member process stopped with SIGTERM leaves (revokes its lease) and exits 0', async () => {
    const b = track(member(etcd.endpoints(), 'watcher', { cluster: 'c5', ttlSec: 10 }));
    await b.m.join();
    const p = spawnMember({ endpoints: etcd.endpoints(), cluster: 'c5', nodeId: 'polite', ttlSec: 10 });
    procs.push(p);
    await waitFor('watcher to see polite', 10000, () => b.ids().includes('polite'));
    const t0 = now();
    p.proc.kill('SIGTERM');
    const ex = await p.exit(10000);
    assert.equal(ex.code, 0, p.stderr());
    const goneAt = await waitFor('polite to leave the view', 5000, () => b.firstViewAt(t0, 'polite', false));
    assert.ok(goneAt - t0 < 5000, `gone ${Math.round(goneAt - t0)} ms after SIGTERM with TTL 10 s`);
  });

  it('unreachable etcd at start: waits, logging every logEveryMs, then exits 1 with a clear error', async () => {
    const port = await freePort(); // nothing listens there
    const t0 = now();
    const p = spawnMember({ endpoints: `http://127.0.0.1:${port}`, cluster: 'c6', nodeId: 'lonely', startTimeoutMs: 3000, logEveryMs: 1000 });
    procs.push(p);
    const ex = await p.exit(15000);
    const took = ex.at - t0;
    assert.equal(ex.code, 1, p.stderr());
    assert.ok(took >= 3000, `exited after ${Math.round(took)} ms, before its 3000 ms start timeout`);
    assert.ok(took < 3000 + 5000, `exited after ${Math.round(took)} ms`);
    const waits = p.stderr().match(new RegExp(`waiting for etcd at http://127\\.0\\.0\\.1:${port} `, 'g')) ?? [];
    assert.ok(waits.length >= 2, `expected >= 2 "waiting for etcd" lines in 3 s at one per second:\n${p.stderr()}`);
    assert.match(p.stderr(), new RegExp(`cannot join: etcd unreachable at http://127\\.0\\.0\\.1:${port} for 3000 ms; giving up \\(last error: .*ECONNREFUSED`));
    assert.doesNotMatch(p.stdout(), /"ev":"joined"/);
  });

  it('etcd that becomes reachable during the start wait: join() succeeds', async () => {
    const port = Number(new URL(etcd.endpoints()[0]).port);
    const proxy = await startTcpProxy('127.0.0.1', port);
    try {
      proxy.setMode('drop');
      const a = track(member([proxy.url], 'late', { cluster: 'c7', startTimeoutMs: 10000, logEveryMs: 500 }));
      const t0 = now();
      const joining = a.m.join();
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(a.m.state, 'joining');
      proxy.setMode('pass');
      await joining;
      assert.equal(a.m.state, 'joined');
      assert.ok(now() - t0 >= 1500);
      assert.ok(a.logs.some((l) => l.includes(`waiting for etcd at ${proxy.url}`)), a.logs.join('\n'));
      await a.close();
    } finally { await proxy.close(); }
  });

  it('a garbage endpoint is refused at once; a wrong one (not etcd) fails after the bounded wait, saying so', async () => {
    const g = spawnMember({ endpoints: 'not an endpoint', cluster: 'c8', nodeId: 'g' });
    procs.push(g);
    const t0 = now();
    const ge = await g.exit(10000);
    assert.equal(ge.code, 1);
    assert.match(g.stderr(), /cannot join: invalid etcd endpoint "not an endpoint": expected http:\/\/host:port/);
    assert.ok(ge.at - t0 < 5000, `garbage endpoint took ${Math.round(ge.at - t0)} ms to refuse`);

    const srv = http.createServer((_q, s) => s.end('not etcd'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const w = spawnMember({ endpoints: `http://127.0.0.1:${port}`, cluster: 'c8', nodeId: 'w', startTimeoutMs: 2000, logEveryMs: 1000 });
      procs.push(w);
      const we = await w.exit(15000);
      assert.equal(we.code, 1);
      assert.match(w.stderr(), new RegExp(`etcd unreachable at http://127\\.0\\.0\\.1:${port} for 2000 ms`));
      assert.match(w.stderr(), /not etcd's gRPC: is this an etcd client URL\?/);
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }

    // The same refusal in-process: the constructor throws, join() is never reached.
    assert.throws(() => new Etcd3Client({ endpoints: 'http://127.0.0.1' }), /explicit port/);
    assert.throws(() => new Etcd3Client({ endpoints: '' }), /no etcd endpoint/);
  });

  it('rejects an unreachable start with EtcdUnreachableError in-process too', async () => {
    const port = await freePort();
    const a = member([`http://127.0.0.1:${port}`], 'x', { cluster: 'c9', startTimeoutMs: 1000, logEveryMs: 400 });
    try {
      await assert.rejects(a.m.join(), (err: Error) => err instanceof EtcdUnreachableError && /for 1000 ms/.test(err.message));
      assert.equal(a.m.state, 'idle');
    } finally { await a.close(); }
  });
});
