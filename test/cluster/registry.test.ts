// The client-id registry's logic without processes: rendezvous homes (balance, and only ~1/N of
// the ids move when a member joins), the home's serialisation and barrier, and three
// ClusterRegistry instances talking through an in-process transport (every call crosses a
// setImmediate, so answers interleave as they would on a network). The real thing, with broker
// processes, gRPC and etcd: test/integration/3w-cluster-registry.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { homes, primary, salted } from '../../src/cluster/rendezvous';
import { RegistryHome } from '../../src/cluster/registry-home';
import { ClusterRegistry, ClaimRefused, type LocalSessions } from '../../src/cluster/registry';
import { registryView, type RegistryTransport, type RegistryView } from '../../src/cluster/registry-wire';
import { waitUntil } from '../helpers/wait';

const ids = Array.from({ length: 20_000 }, (_, i) => `client-${i}`);

describe('rendezvous homes', () => {
  it('spread ids evenly: each of 3 nodes is the primary of a third (±5%)', () => {
    const m = salted(['n1', 'n2', 'n3']);
    const count = new Map<string, number>();
    for (const id of ids) { const p = primary(id, m)!; count.set(p, (count.get(p) ?? 0) + 1); }
    for (const [n, c] of count) assert.ok(Math.abs(c / ids.length - 1 / 3) < 0.05, `${n}: ${c} of ${ids.length}`);
  });

  it('a fourth node takes about a quarter of the ids, every moved id moves to it, none moves between the others', () => {
    const before = salted(['n1', 'n2', 'n3']);
    const after = salted(['n1', 'n2', 'n3', 'n4']);
    let moved = 0;
    for (const id of ids) {
      const a = primary(id, before);
      const b = primary(id, after);
      if (a !== b) { moved++; assert.equal(b, 'n4', `${id} moved from ${a} to ${b}`); }
    }
    const share = moved / ids.length;
    assert.ok(share > 0.2 && share < 0.3, `moved ${moved} of ${ids.length} (${share})`);
  });

  it('a node leaving: only its ids move, each to its former replica', () => {
    const all = salted(['n1', 'n2', 'n3']);
    const without = salted(['n1', 'n3']);
    for (const id of ids.slice(0, 5000)) {
      const [p, r] = homes(id, all);
      const now = primary(id, without);
      if (p === 'n2') assert.equal(now, r, id);
      else assert.equal(now, p, id);
    }
  });

  it('homes() and primary() agree, and the answer does not depend on the order of the member list', () => {
    const a = salted(['n1', 'n2', 'n3']);
    const b = salted(['n3', 'n1', 'n2']);
    for (const id of ids.slice(0, 2000)) {
      assert.equal(homes(id, a)[0], primary(id, a));
      assert.deepEqual(homes(id, a), homes(id, b));
    }
  });
});

function view(rev: number, members: Array<[string, string]>): RegistryView {
  return registryView(BigInt(rev), members.map(([nodeId, incarnation]) => ({ nodeId, incarnation })));
}

/** An id whose primary over `members` is `node`. */
function idHomedAt(node: string, members: string[], prefix = 'id'): string {
  const s = salted(members);
  for (let i = 0; ; i++) if (primary(`${prefix}-${i}`, s) === node) return `${prefix}-${i}`;
}

describe('registry home', () => {
  const v1 = view(10, [['a', 'a1'], ['b', 'b1']]);
  const at = { vid: v1.vid, rev: '10' };

  function home(): RegistryHome {
    const h = new RegistryHome({ nodeId: 'a', barrierMs: 60_000, catchUpMs: 200, maxParked: 100 });
    h.setView(v1);
    h.synced({ node: 'a', inc: 'a1', ...at });
    h.synced({ node: 'b', inc: 'b1', ...at });
    return h;
  }

  it('serialises registrations of one id: each answer names the owner before it, in one total order', async () => {
    const h = home();
    const id = idHomedAt('a', ['a', 'b']);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      h.register({ id, owner: { node: i % 2 ? 'a' : 'b', inc: i % 2 ? 'a1' : 'b1', seq: i + 1 }, ...at })));
    const prevs = answers.map((a) => (a.s === 'granted' ? a.prev?.seq ?? 0 : -1));
    assert.deepEqual(prevs, Array.from({ length: 50 }, (_, i) => i), 'each registration names the one just before it');
    assert.equal(h.entry(id)?.seq, 50);
    h.close();
  });

  it('answers a sender at an older view "stale", and holds one at a newer view until its own view catches up', async () => {
    const h = home();
    const id = idHomedAt('a', ['a', 'b']);
    const old = await h.register({ id, owner: { node: 'b', inc: 'b1', seq: 1 }, vid: 'a@a0', rev: '9' });
    assert.deepEqual(old, { s: 'stale', rev: '10' });
    const v2 = view(12, [['a', 'a1'], ['b', 'b1'], ['c', 'c1']]);
    const id2 = idHomedAt('a', ['a', 'b', 'c'], 'x');
    const ahead = h.register({ id: id2, owner: { node: 'c', inc: 'c1', seq: 1 }, vid: v2.vid, rev: '12' });
    let answered = false;
    void ahead.then(() => { answered = true; });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(answered, false, 'held while the home is behind');
    h.setView(v2);
    for (const n of ['a', 'b', 'c']) h.synced({ node: n, inc: `${n}1`, vid: v2.vid, rev: '12' });
    assert.deepEqual(await ahead, { s: 'granted', prev: null });
    h.close();
  });

  it('after a view change, holds registrations until every member said "synced" (re-registrations pass)', async () => {
    const h = home();
    const v2 = view(11, [['a', 'a1'], ['b', 'b1'], ['c', 'c1']]);
    h.setView(v2);
    const at2 = { vid: v2.vid, rev: '11' };
    const id = idHomedAt('a', ['a', 'b', 'c'], 'y');
    const reg = h.register({ id, owner: { node: 'c', inc: 'c1', seq: 1 }, ...at2 });
    let answered = false;
    void reg.then(() => { answered = true; });
    // b re-registers what it holds: passes the barrier, and wins over the CONNECT waiting behind it.
    assert.deepEqual(await h.assert({ node: 'b', inc: 'b1', ...at2, items: [{ id, seq: 7 }] }), { s: 'ok', taken: [] });
    h.synced({ node: 'a', inc: 'a1', ...at2 });
    h.synced({ node: 'b', inc: 'b1', ...at2 });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(answered, false, 'still waiting for c');
    h.synced({ node: 'c', inc: 'c1', ...at2 });
    assert.deepEqual(await reg, { s: 'granted', prev: { node: 'b', inc: 'b1', seq: 7 } });
    // An owner that leaves the view loses its entries; the owner its registration replaced (b,
    // which c may not have reached before it left) is the owner again.
    h.setView(view(13, [['a', 'a1'], ['b', 'b1']]));
    assert.deepEqual(h.entry(id), { node: 'b', inc: 'b1', seq: 7 }, "c's entry dropped with c, b's back");
    h.setView(view(14, [['a', 'a1']]));
    assert.equal(h.entry(id), undefined, "b's dropped with b");
    h.close();
  });

  it('the barrier is bounded: a silent member delays registrations by barrierMs, not for ever', async () => {
    const h = new RegistryHome({ nodeId: 'a', barrierMs: 100, catchUpMs: 100, maxParked: 100 });
    h.setView(v1);
    h.synced({ node: 'a', inc: 'a1', ...at });
    const id = idHomedAt('a', ['a', 'b']);
    const t0 = Date.now();
    const ans = await h.register({ id, owner: { node: 'a', inc: 'a1', seq: 1 }, ...at });
    assert.equal(ans.s, 'granted');
    assert.ok(Date.now() - t0 >= 90, 'waited for the barrier');
    h.close();
  });

  it('unregister removes an entry only at the same owner and seq', async () => {
    const h = home();
    const id = idHomedAt('a', ['a', 'b']);
    await h.register({ id, owner: { node: 'b', inc: 'b1', seq: 3 }, ...at });
    h.unregister({ node: 'b', inc: 'b1', items: [{ id, seq: 2 }] });
    assert.equal(h.entry(id)?.seq, 3);
    h.unregister({ node: 'b', inc: 'b1', items: [{ id, seq: 3 }] });
    assert.equal(h.entry(id), undefined);
    h.close();
  });
});

/** Three (or more) registries wired together in this process; each "node" holds a set of ids. */
class Net {
  readonly nodes = new Map<string, { reg: ClusterRegistry; held: Set<string>; evicted: string[] }>();
  readonly down = new Set<string>();

  transport(): RegistryTransport {
    const hop = <T>(node: string, f: (r: ClusterRegistry) => Promise<T> | T): Promise<T> => new Promise<T>((resolve, reject) => setImmediate(() => {
      const n = this.nodes.get(node);
      if (!n || this.down.has(node)) { reject(new Error(`${node} unreachable`)); return; }
      Promise.resolve(f(n.reg)).then((v) => setImmediate(() => resolve(v)), reject);
    }));
    return {
      register: (node, req) => hop(node, (r) => r.onRegister(req)),
      assert: (node, req) => hop(node, (r) => r.onAssert(req)),
      release: (node, req) => hop(node, (r) => r.onRelease(req)),
      synced: (node, req) => hop(node, (r) => r.onSynced(req)),
      unregister: (node, req) => hop(node, (r) => r.onUnregister(req)),
    };
  }

  add(nodeId: string): void {
    const held = new Set<string>();
    const evicted: string[] = [];
    const local: LocalSessions = {
      evict: async (id) => { if (held.delete(id)) evicted.push(id); },
      held: () => held.values(),
    };
    const counts = { registered() {}, takeover() {}, refused() {}, timedOut() {}, reasserted() {}, lost() {} };
    const reg = new ClusterRegistry({ nodeId, transport: this.transport(), local, counts, barrierMs: 500, claimTimeoutMs: 3000 });
    this.nodes.set(nodeId, { reg, held, evicted });
  }

  setView(rev: number): void {
    const v = registryView(BigInt(rev), [...this.nodes.keys()].map((n) => ({ nodeId: n, incarnation: `${n}-1` })));
    for (const [n, x] of this.nodes) x.reg.setView(v, `${n}-1`);
  }

  /** A CONNECT of `id` on `node`: the local claim holds the id. */
  claim(node: string, id: string): Promise<boolean> {
    const x = this.nodes.get(node)!;
    return x.reg.claim(id, ({ superseded }) => { x.held.add(id); if (superseded) x.held.delete(id); })
      .then(() => true, (e) => { if (e instanceof ClaimRefused) return false; throw e; });
  }

  holders(id: string): string[] { return [...this.nodes].filter(([, x]) => x.held.has(id)).map(([n]) => n); }

  close(): void { for (const x of this.nodes.values()) x.reg.close(); }
}

describe('cluster registry (three instances, in-process transport)', () => {
  it('claim race: every id claimed on every node at once ends with exactly one holder', async () => {
    const net = new Net();
    for (const n of ['n1', 'n2', 'n3']) net.add(n);
    net.setView(5);
    const raceIds = Array.from({ length: 300 }, (_, i) => `r-${i}`);
    const jobs = raceIds.flatMap((id) => ['n1', 'n2', 'n3'].map((n) => [n, id] as const)).sort(() => Math.random() - 0.5);
    const results = await Promise.all(jobs.map(([n, id]) => net.claim(n, id)));
    assert.ok(results.every((r) => r), 'no claim refused');
    for (const id of raceIds) assert.equal(net.holders(id).length, 1, `${id}: ${net.holders(id).join(', ')}`);
    net.close();
  });

  it('flapping between two nodes: one holder after every claim', async () => {
    const net = new Net();
    for (const n of ['n1', 'n2', 'n3']) net.add(n);
    net.setView(5);
    for (let i = 0; i < 100; i++) {
      const n = i % 2 ? 'n1' : 'n2';
      assert.equal(await net.claim(n, 'flap'), true);
      assert.deepEqual(net.holders('flap'), [n], `after claim ${i}`);
    }
    net.close();
  });

  it('a node joining: held ids are re-registered with their new homes, and a later claim takes them over', async () => {
    const net = new Net();
    for (const n of ['n1', 'n2', 'n3']) net.add(n);
    net.setView(5);
    const held = Array.from({ length: 200 }, (_, i) => `j-${i}`);
    await Promise.all(held.map((id, i) => net.claim(['n1', 'n2', 'n3'][i % 3], id)));
    net.add('n4');
    net.setView(6);
    const four = salted(['n1', 'n2', 'n3', 'n4']);
    const moved = held.filter((id) => primary(id, four) === 'n4');
    assert.ok(moved.length > 0);
    await waitUntil(() => moved.every((id) => net.nodes.get('n4')!.reg.home.entry(id) !== undefined), 'n4 to be the home of its ids', 5000);
    // Claimed again on n4 itself: the old holder (found through the new home) lets go.
    await Promise.all(moved.map((id) => net.claim('n4', id)));
    for (const id of moved) assert.deepEqual(net.holders(id), ['n4'], id);
    for (const id of held) assert.equal(net.holders(id).length, 1, id);
    net.close();
  });

  it('a member that joins and leaves at once: ids whose home flickered to it are re-registered with their home again', async () => {
    const net = new Net();
    for (const n of ['n1', 'n2', 'n3']) net.add(n);
    net.setView(5);
    const held = Array.from({ length: 200 }, (_, i) => `f-${i}`);
    await Promise.all(held.map((id) => net.claim('n1', id)));
    // n4 appears (its ids' old homes drop their entries) and is gone before anyone re-registered.
    net.add('n4');
    net.setView(6);
    net.nodes.get('n4')!.reg.close();
    net.nodes.delete('n4');
    net.setView(7);
    const flickered = held.filter((id) => primary(id, salted(['n1', 'n2', 'n3', 'n4'])) === 'n4');
    assert.ok(flickered.length > 0);
    await Promise.all(held.map((id) => net.claim(id.length % 2 ? 'n2' : 'n3', id)));
    for (const id of held) assert.equal(net.holders(id).length, 1, `${id}: ${net.holders(id).join(', ')}`);
    net.close();
  });

  it('a home that cannot be reached: the claim is refused after its timeout, nothing is held', async () => {
    const net = new Net();
    for (const n of ['n1', 'n2']) net.add(n);
    net.setView(5);
    const id = idHomedAt('n2', ['n1', 'n2'], 'u');
    net.down.add('n2');
    assert.equal(await net.claim('n1', id), false);
    assert.deepEqual(net.holders(id), []);
    net.close();
  });
});

describe('cluster registry under churn', () => {
  it('churn: nodes fenced and rejoining (new incarnations) while every id is claimed again and again on every node: never two holders once it settles', async () => {
    const nodes = new Map<string, { reg: ClusterRegistry; held: Set<string>; inc: number; up: boolean }>();
    const names = ['n1', 'n2', 'n3'];
    // Calls and views arrive with random delays (0–20 ms), so views, claims and releases interleave.
    let rev = 1;
    const hop = <T>(node: string, f: (r: ClusterRegistry) => Promise<T> | T): Promise<T> => new Promise<T>((resolve, reject) => setTimeout(() => {
      const n = nodes.get(node);
      if (!n || !n.up) { reject(new Error('down')); return; }
      Promise.resolve(f(n.reg)).then((v) => setTimeout(() => resolve(v), Math.random() * 3), reject);
    }, Math.random() * 3));
    const transport: RegistryTransport = {
      register: (node, req) => hop(node, (r) => r.onRegister(req)),
      assert: (node, req) => hop(node, (r) => r.onAssert(req)),
      release: (node, req) => hop(node, (r) => r.onRelease(req)),
      synced: (node, req) => hop(node, (r) => r.onSynced(req)),
      unregister: (node, req) => hop(node, (r) => r.onUnregister(req)),
    };
    for (const n of names) {
      const held = new Set<string>();
      const local: LocalSessions = { evict: async (id) => { held.delete(id); }, held: () => held.values() };
      const counts = { registered() {}, takeover() {}, refused() {}, timedOut() {}, reasserted() {}, lost() {} };
      nodes.set(n, { reg: new ClusterRegistry({ nodeId: n, transport, local, counts, barrierMs: 300, claimTimeoutMs: 2000 }), held, inc: 1, up: true });
    }
    const publish = () => {
      rev++;
      const members = [...nodes].filter(([, x]) => x.up).map(([n, x]) => ({ nodeId: n, incarnation: `${n}-${x.inc}` }));
      const v = registryView(BigInt(rev), members);
      for (const [n, x] of nodes) if (x.up) setTimeout(() => x.reg.setView(v, `${n}-${x.inc}`), Math.random() * 20);
    };
    publish();
    const ids = Array.from({ length: 100 }, (_, i) => `c-${i}`);
    let stop = false;
    const clients = ids.flatMap((id) => names.map(async (n) => {
      while (!stop) {
        const x = nodes.get(n)!;
        if (!x.up) { await new Promise((r) => setTimeout(r, 20)); continue; }
        try { await x.reg.claim(id, ({ superseded }) => { if (x.up) x.held.add(id); if (superseded) x.held.delete(id); }); } catch (e) { if (!(e instanceof ClaimRefused)) throw e; }
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 300));
      }
    }));
    for (let k = 0; k < 6; k++) {
      await new Promise((r) => setTimeout(r, 150));
      const victim = nodes.get(names[k % 3])!;
      victim.up = false; victim.held.clear(); victim.reg.fenced(); publish();
      await new Promise((r) => setTimeout(r, 100));
      victim.up = true; victim.inc++; publish();
    }
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(clients);
    await new Promise((r) => setTimeout(r, 1500));
    const bad = ids.filter((id) => names.filter((n) => nodes.get(n)!.held.has(id)).length > 1);
    for (const x of nodes.values()) x.reg.close();
    assert.deepEqual(bad.map((id) => `${id}: ${names.filter((n) => nodes.get(n)!.held.has(id))}`), []);
  });
});
