// Retained replication between two in-process nodes (src/cluster/retained-sync.ts) over real
// gRPC on loopback: a node linking up gets a whole snapshot (frames kept under the message
// limit, a message too large for any frame counted and left out), last writer wins by stamp
// whatever the order of arrival (a clock ahead wins concurrent sets; a node that has seen a
// stamp stamps above it), and a clear travels as a tombstone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerServer } from '../../src/cluster/peer-server';
import { PeerLinks } from '../../src/cluster/peer-links';
import type { MemberInfo } from '../../src/cluster/membership';
import { RetainedSync } from '../../src/cluster/retained-sync';
import { RetainedStore } from '../../src/coordinator/retained';
import type { RetainedWrite } from '../../src/coordinator/persistence';
import type { WireMessage } from '../../src/shared/messages';
import * as K from '../../src/shared/counters';
import { waitUntil, within } from '../helpers/wait';

const msg = (topic: string, payload: string | Buffer): WireMessage =>
  ({ topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos: 1, retain: true, props: null, expiryAt: 0 });

interface Node { id: string; server: PeerServer; links: PeerLinks; store: RetainedStore; sync: RetainedSync; gauges: Float64Array; writes: RetainedWrite[]; port: number }

async function node(id: string, wall: () => number = Date.now): Promise<Node> {
  const server = new PeerServer();
  const links = new PeerLinks(id);
  const store = new RetainedStore();
  const gauges = new Float64Array(K.COUNTERS_PER_WORKER);
  const writes: RetainedWrite[] = [];
  const sync = new RetainedSync({
    selfId: id, incarnation: () => `${id}-inc`, links, store, persist: (w) => writes.push(...w),
    tombstoneTtlMs: 3_600_000, maxTombstones: 1000, gauges, log: () => undefined, now: wall,
  });
  server.addService(...sync.service());
  links.on('up', (l) => sync.linkUp(l));
  links.on('down', (l, why) => sync.linkDown(l, why));
  const port = await server.start('127.0.0.1', 0);
  return { id, server, links, store, sync, gauges, writes, port };
}

const member = (n: Node): MemberInfo => ({ nodeId: n.id, incarnation: `${n.id}-inc`, advertise: '127.0.0.1', clusterPort: n.port, startedAt: 0 });

async function close(...ns: Node[]): Promise<void> {
  for (const n of ns) { n.sync.close(); n.links.closeAll(); await n.server.stop(); }
}

const payloadAt = (n: Node, topic: string): string | null => {
  const m = n.store.get(topic, Date.now());
  return m ? Buffer.from(m.payload).toString() : null;
};

test('a node linking up catches up with a whole snapshot; a message too large for a frame is counted and left out', async () => {
  const a = await node('a');
  const b = await node('b');
  try {
    for (let i = 0; i < 2000; i++) a.sync.local(msg(`s/${i}`, `v${i}`.repeat(50)));
    // Several MiB-sized messages: frames must split between them.
    for (let i = 0; i < 6; i++) a.sync.local(msg(`big/${i}`, Buffer.alloc(4 * 1024 * 1024, i)));
    a.sync.local(msg('huge', Buffer.alloc(17 * 1024 * 1024, 1)));
    a.sync.local(msg('gone', 'x'));
    a.sync.local(msg('gone', ''));
    a.links.update([member(a), member(b)]);
    b.links.update([member(a), member(b)]);
    const r = await within(b.sync.catchUp(30_000), 35_000, 'b catching up');
    assert.deepEqual(r.missing, []);
    assert.equal(b.store.size, 2006, 'every message but the huge one');
    assert.equal(payloadAt(b, 's/1999'), 'v1999'.repeat(50));
    assert.equal(b.store.get('big/5', Date.now())!.payload.byteLength, 4 * 1024 * 1024);
    assert.equal(payloadAt(b, 'huge'), null);
    assert.equal(a.gauges[K.C_CLUSTER_RETAINED_TOO_LARGE], 1);
    assert.equal(b.sync.tombstones, 1, 'the clear came as a tombstone');
    assert.ok(b.writes.some((w) => w.topic === 'gone' && w.stamp?.tombstone === true), 'and is persisted as one');
    assert.equal(b.gauges[K.C_CLUSTER_RETAINED_SNAPSHOTS], 1);
  } finally {
    await close(a, b);
  }
});

test('last writer wins by stamp on both nodes whatever the order; a clear travels as a tombstone', async () => {
  let wallA = 1_000_000;
  const a = await node('a', () => wallA);
  const b = await node('b', () => 1_030_000); // b's clock is 30 s ahead (within MAX_DRIFT_MS): its concurrent sets win
  try {
    a.links.update([member(a), member(b)]);
    b.links.update([member(a), member(b)]);
    await within(Promise.all([a.sync.catchUp(30_000), b.sync.catchUp(30_000)]), 35_000, 'initial snapshots');
    a.sync.local(msg('t', 'from-a'));
    b.sync.local(msg('t', 'from-b'));
    await waitUntil(() => payloadAt(a, 't') === 'from-b' && payloadAt(b, 't') === 'from-b', 'both hold b\'s later set', 20_000);
    assert.ok(a.gauges[K.C_CLUSTER_RETAINED_APPLIED] >= 1 && b.gauges[K.C_CLUSTER_RETAINED_STALE] >= 1, 'a applied b\'s, b refused a\'s');
    // a has now seen b's stamp: its next set is later than it, whatever a's wall clock says.
    a.sync.local(msg('t', 'a-again'));
    await waitUntil(() => payloadAt(b, 't') === 'a-again', 'b takes a\'s later set', 20_000);
    // A clear on b reaches a as a tombstone.
    b.sync.local(msg('u', 'u1'));
    await waitUntil(() => payloadAt(a, 'u') === 'u1', 'a has u', 20_000);
    b.sync.local(msg('u', ''));
    await waitUntil(() => payloadAt(a, 'u') === null, 'the clear reaches a', 20_000);
    wallA = 1_000_001;
    assert.equal(b.sync.tombstones, 1);
    assert.equal(a.sync.tombstones, 1);
  } finally {
    await close(a, b);
  }
});
