// The contract every Store passes (after aedes-persistence/abstract.js). A store that can be
// reopened (RocksDB) checks every case across a close/open as well, which is what a restart
// of the broker does.
import { describe, test, beforeEach, afterEach } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Store } from '../../src/store/store';
import { NEVER_EXPIRES } from '../../src/store/types';
import { fullProps, message, session, snapshot, Snapshot, sub } from './helpers';

export interface StoreSuiteOptions {
  /** A new, empty store (not loaded yet). */
  create(): Promise<Store>;
  /** Closes `store` and opens the same data again; absent when the store cannot (memory). */
  reopen?(store: Store): Promise<Store>;
  /** Releases whatever create() made (e.g. its temp dir). */
  dispose?(store: Store): Promise<void>;
}

export function abstractStoreSuite(name: string, opts: StoreSuiteOptions): void {
  describe(`${name}: Store contract`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await opts.create();
      await store.loadAll({});
    });

    afterEach(async () => {
      await store.close();
      await opts.dispose?.(store);
    });

    /** What a restarted broker would see: reopened if the store can be, else reloaded. */
    async function reload(): Promise<Snapshot> {
      if (opts.reopen) store = await opts.reopen(store);
      return snapshot(store);
    }

    test('an empty store loads nothing', async () => {
      const s = await reload();
      assert.equal(s.sessions.size + s.subs.size + s.retained.size + s.messages.size, 0);
      assert.equal(s.queues.size + s.inflight.size + s.inbound.size, 0);
    });

    test('commit before loadAll is rejected', async () => {
      const fresh = await opts.create();
      try {
        await assert.rejects(fresh.commit(fresh.batch().putSession(session('c'))), /loadAll/);
      } finally {
        await fresh.close();
        await opts.dispose?.(fresh);
      }
    });

    test('sessions round-trip with wills and properties, and are replaced and deleted', async () => {
      const will = { topic: 'last/will', payload: Buffer.from('bye'), qos: 2 as const, retain: true, properties: fullProps, delayInterval: 30 };
      await store.commit(store.batch()
        .putSession(session('v5', { will, disconnectedAt: 1_700_000_000_123 }))
        .putSession(session('v3', { protocolVersion: 4, sessionExpiryInterval: NEVER_EXPIRES }))
        .putSession(session('gone')));
      await store.commit(store.batch().putSession(session('v3', { protocolVersion: 3, sessionExpiryInterval: NEVER_EXPIRES })).deleteSession('gone'));
      const s = await reload();
      assert.deepEqual([...s.sessions.keys()].sort(), ['v3', 'v5']);
      assert.deepEqual(s.sessions.get('v5'), session('v5', { will, disconnectedAt: 1_700_000_000_123 }));
      assert.deepEqual(s.sessions.get('v3'), session('v3', { protocolVersion: 3, sessionExpiryInterval: NEVER_EXPIRES }));
      assert.deepEqual(store.getSession('v5'), s.sessions.get('v5'));
      assert.equal(store.getSession('gone'), undefined);
    });

    test('subscriptions keep every option, shared filters included; unsubscribe removes one', async () => {
      const a = sub('c', '$share/g1/sensors/+/temp', { qos: 2, retainHandling: 2, subscriptionIdentifier: 268435455 });
      const b = sub('c', 'a/#', { qos: 0, noLocal: true, retainAsPublished: true, retainHandling: 1 });
      await store.commit(store.batch().putSession(session('c')).putSubscription(a).putSubscription(b)
        .putSubscription(sub('c', 'x/y')).putSubscription(sub('d', 'x/y')));
      await store.commit(store.batch().deleteSubscription('c', 'x/y').putSubscription({ ...b, qos: 1 }));
      const s = await reload();
      assert.deepEqual([...s.subs.keys()].sort(), ['c $share/g1/sensors/+/temp', 'c a/#', 'd x/y']);
      assert.deepEqual(s.subs.get('c $share/g1/sensors/+/temp'), a);
      assert.deepEqual(s.subs.get('c a/#'), { ...b, qos: 1 });
      assert.equal('subscriptionIdentifier' in s.subs.get('d x/y')!, false);
    });

    test('a message queued for many sessions is stored once and freed with its last reference', async () => {
      const b = store.batch();
      const id = b.addMessage(message('t', 'shared', { properties: fullProps, qos: 2 }));
      const seqs = ['a', 'b', 'c'].map((c) => b.enqueue(c, { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [7] }));
      await store.commit(b);
      let s = await reload();
      assert.equal(s.messages.size, 1);
      assert.deepEqual(s.messages.get(id), { ...message('t', 'shared', { properties: fullProps, qos: 2 }), id });
      assert.deepEqual(s.queues.get('b'), [{ seq: seqs[1], messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [7] }]);

      await store.commit(store.batch().dequeue('a', seqs[0]).dequeue('b', seqs[1]));
      assert.ok(await store.getMessage(id), 'still referenced by c');
      await store.commit(store.batch().dequeue('c', seqs[2]));
      assert.equal(await store.getMessage(id), undefined);
      s = await reload();
      assert.equal(s.messages.size, 0);
      assert.equal(s.queues.size, 0);
    });

    test('one message added by two batches under the same id (two workers\' sessions) is stored once and freed with the last reference of either', async () => {
      const m = message('t', 'from one publisher');
      const id = 4242n;
      const b1 = store.batch();
      b1.addMessage(m, id);
      const s1 = b1.enqueue('a', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] }, 5000n);
      await store.commit(b1);
      const b2 = store.batch();
      b2.addMessage(m, id);
      b2.putInflight('b', { packetId: 3, messageId: id, qos: 1, state: 'publish', dup: false, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b2);
      await store.commit(store.batch().dequeue('a', s1));
      assert.ok(await store.getMessage(id), 'still referenced by b\'s in-flight entry: the second add must not reset the count');
      let s = await reload();
      assert.equal(s.messages.size, 1);
      assert.equal(s.inflight.get('b')?.[0]?.messageId, id);
      await store.commit(store.batch().deleteInflight('b', 3));
      assert.equal(await store.getMessage(id), undefined);
      s = await reload();
      assert.equal(s.messages.size, 0);
    });

    test('a message nothing references is never written', async () => {
      const b = store.batch();
      const id = b.addMessage(message('t', 'nobody wants me'));
      await store.commit(b);
      assert.equal(await store.getMessage(id), undefined);
      assert.equal((await reload()).messages.size, 0);
    });

    test('queues keep order; dropOldest trims from the head; queueLength follows', async () => {
      const seqs: bigint[] = [];
      for (let i = 0; i < 5; i++) {
        const b = store.batch();
        const id = b.addMessage(message('q', `m${i}`));
        seqs.push(b.enqueue('c', { messageId: id, qos: 1, retain: i === 0, subscriptionIdentifiers: [] }));
        await store.commit(b);
      }
      assert.equal(store.queueLength('c'), 5);
      await store.commit(store.batch().dropOldest('c', 2));
      assert.equal(store.queueLength('c'), 3);
      const s = await reload();
      const q = s.queues.get('c')!;
      assert.deepEqual(q.map((e) => e.seq), seqs.slice(2));
      assert.deepEqual(q.map((e) => s.messages.get(e.messageId)!.payload.toString()), ['m2', 'm3', 'm4']);
      assert.equal(s.messages.size, 3, 'dropped messages are freed');
      assert.equal(store.queueLength('c'), 3);
    });

    test('moving a queued message in flight keeps it; pubrel releases it; the ack removes the entry', async () => {
      const b = store.batch();
      const id = b.addMessage(message('q2', 'exactly once', { qos: 2 }));
      const seq = b.enqueue('c', { messageId: id, qos: 2, retain: false, subscriptionIdentifiers: [1, 2] });
      await store.commit(b);
      const entry = { packetId: 10, messageId: id as bigint | null, qos: 2 as const, state: 'publish' as const, dup: false, retain: false, subscriptionIdentifiers: [1, 2] };
      await store.commit(store.batch().dequeue('c', seq).putInflight('c', entry));
      let s = await reload();
      assert.deepEqual(s.inflight.get('c'), [entry]);
      assert.equal(s.messages.size, 1);
      assert.equal(s.queues.size, 0);

      await store.commit(store.batch().putInflight('c', { ...entry, dup: true }));
      const pubrel = { ...entry, messageId: null, state: 'pubrel' as const, dup: false };
      await store.commit(store.batch().putInflight('c', pubrel));
      s = await reload();
      assert.deepEqual(s.inflight.get('c'), [pubrel]);
      assert.equal(s.messages.size, 0, 'pubrel needs no body');

      await store.commit(store.batch().deleteInflight('c', 10));
      s = await reload();
      assert.equal(s.inflight.size, 0);
    });

    test('in-flight entries come back in packet id order', async () => {
      const b = store.batch();
      const id = b.addMessage(message('t', 'x'));
      for (const p of [300, 2, 65535, 1]) {
        b.putInflight('c', { packetId: p, messageId: id, qos: 1, state: 'publish', dup: true, retain: true, subscriptionIdentifiers: [] });
      }
      await store.commit(b);
      const s = await reload();
      assert.deepEqual(s.inflight.get('c')!.map((e) => e.packetId), [1, 2, 300, 65535]);
    });

    test('inbound QoS 2 packet ids are kept until PUBREL', async () => {
      await store.commit(store.batch().addInboundQos2('c', 1).addInboundQos2('c', 500).addInboundQos2('d', 7));
      await store.commit(store.batch().deleteInboundQos2('c', 1));
      const s = await reload();
      assert.deepEqual(s.inbound.get('c'), [500]);
      assert.deepEqual(s.inbound.get('d'), [7]);
    });

    test('retained messages are set, replaced and cleared per topic', async () => {
      await store.commit(store.batch()
        .putRetained(message('a/b', 'one', { retain: true, properties: fullProps }))
        .putRetained(message('a/c', 'two', { retain: true }))
        .putRetained(message('$SYS/x', 'sys', { retain: true, qos: 0 })));
      await store.commit(store.batch().putRetained(message('a/c', 'three', { retain: true })).deleteRetained('$SYS/x'));
      const s = await reload();
      assert.deepEqual([...s.retained.keys()].sort(), ['a/b', 'a/c']);
      assert.deepEqual(s.retained.get('a/b'), message('a/b', 'one', { retain: true, properties: fullProps }));
      assert.equal(s.retained.get('a/c')!.payload.toString(), 'three');
    });

    test('retained stamps and tombstones are kept apart from the messages, replaced and deleted per topic', async () => {
      await store.commit(store.batch()
        .putRetained(message('s/live', 'v', { retain: true }))
        .putRetainedStamp('s/live', { t: 1_700_000_000_000, c: 3 * 2 ** 32 + 0xdeadbeef, tombstone: false })
        .putRetainedStamp('s/gone', { t: 1_700_000_000_001, c: 7, tombstone: true })
        .putRetainedStamp('s/drop', { t: 5, c: 5, tombstone: true }));
      await store.commit(store.batch().deleteRetainedStamp('s/drop').deleteRetained('s/live'));
      if (opts.reopen) store = await opts.reopen(store);
      const stamps = new Map<string, unknown>();
      const retained: string[] = [];
      await store.loadAll({ retained: (m) => retained.push(m.topic), retainedStamp: (topic, st) => stamps.set(topic, st) });
      assert.deepEqual(retained, [], 'deleting the message leaves its stamp');
      assert.deepEqual(Object.fromEntries(stamps), {
        's/live': { t: 1_700_000_000_000, c: 3 * 2 ** 32 + 0xdeadbeef, tombstone: false },
        's/gone': { t: 1_700_000_000_001, c: 7, tombstone: true },
      });
    });

    test('deleteSession removes everything of that client and only that client', async () => {
      const b = store.batch();
      const shared = b.addMessage(message('t', 'shared'));
      const own = b.addMessage(message('t', 'own'));
      b.putSession(session('x')).putSubscription(sub('x', 'a')).putSubscription(sub('x', 'b'))
        .addInboundQos2('x', 3)
        .putInflight('x', { packetId: 1, messageId: own, qos: 1, state: 'publish', dup: false, retain: false, subscriptionIdentifiers: [] });
      b.enqueue('x', { messageId: shared, qos: 1, retain: false, subscriptionIdentifiers: [] });
      b.enqueue('x', { messageId: own, qos: 1, retain: false, subscriptionIdentifiers: [] });
      b.putSession(session('y')).putSubscription(sub('y', 'a'));
      b.enqueue('y', { messageId: shared, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b);
      await store.commit(store.batch().deleteSession('x'));
      const s = await reload();
      assert.deepEqual([...s.sessions.keys()], ['y']);
      assert.deepEqual([...s.subs.keys()], ['y a']);
      assert.deepEqual([...s.queues.keys()], ['y']);
      assert.equal(s.inflight.size + s.inbound.size, 0);
      assert.deepEqual([...s.messages.keys()], [shared]);
      assert.equal(await store.getMessage(own), undefined);
      assert.equal(store.queueLength('x'), 0);
    });

    test('expiredSessions lists offline sessions past their expiry, never online or never-expiring ones', async () => {
      const t0 = 1_700_000_000_000;
      await store.commit(store.batch()
        .putSession(session('online', { sessionExpiryInterval: 1 }))
        .putSession(session('short', { sessionExpiryInterval: 10, disconnectedAt: t0 }))
        .putSession(session('long', { sessionExpiryInterval: 100, disconnectedAt: t0 }))
        .putSession(session('zero', { sessionExpiryInterval: 0, disconnectedAt: t0 }))
        .putSession(session('never', { sessionExpiryInterval: NEVER_EXPIRES, disconnectedAt: 0 })));
      if (opts.reopen) await reload();
      const names = (now: number) => store.expiredSessions(now).map((s) => s.clientId).sort();
      assert.deepEqual(names(t0), ['zero']);
      assert.deepEqual(names(t0 + 10_000), ['short', 'zero']);
      assert.deepEqual(names(t0 + 100_000), ['long', 'short', 'zero']);
    });

    test('commits issued together all land, later ones winning', async () => {
      const commits: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const b = store.batch();
        const id = b.addMessage(message('t', `m${i}`));
        b.enqueue('c', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] });
        b.putSession(session('c', { sessionExpiryInterval: i }));
        commits.push(store.commit(b, { sync: i % 50 === 0 }));
      }
      const order: number[] = [];
      await Promise.all(commits.map((p, i) => p.then(() => order.push(i))));
      assert.deepEqual(order, [...order].sort((a, b) => a - b), 'commits resolve in order');
      const s = await reload();
      assert.equal(s.sessions.get('c')!.sessionExpiryInterval, 199);
      assert.deepEqual(s.queues.get('c')!.map((e) => s.messages.get(e.messageId)!.payload.toString()),
        Array.from({ length: 200 }, (_, i) => `m${i}`));
    });

    test('a batch naming an unknown message is rejected whole and the store stays usable', async () => {
      const b = store.batch().putSession(session('c'));
      b.enqueue('c', { messageId: 123456n, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await assert.rejects(store.commit(b), /unknown message 123456/);
      await store.commit(store.batch().putSession(session('d')));
      const s = await reload();
      assert.deepEqual([...s.sessions.keys()], ['d']);
    });

    test('a batch is single-use: committing it again or changing it afterwards throws', async () => {
      const b = store.batch();
      const id = b.addMessage(message('t', 'x'));
      b.enqueue('c', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b);
      await assert.rejects(async () => store.commit(b), /committed twice/);
      assert.throws(() => b.putSession(session('c')), /changed after commit/);
      await store.commit(store.batch().putSession(session('c')));
      const s = await reload();
      assert.equal(s.queues.get('c')!.length, 1);
      assert.ok(s.messages.has(id));
    });

    test('stored values are copies: changing the caller\'s buffers later changes nothing', async () => {
      const payload = Buffer.from('original');
      const b = store.batch();
      const id = b.addMessage(message('t', '', { payload }));
      b.enqueue('c', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b);
      payload.fill(0x21);
      assert.equal((await store.getMessage(id))!.payload.toString(), 'original');
      assert.equal((await reload()).messages.get(id)!.payload.toString(), 'original');
    });

    test('ids and queue order continue after a reload', async () => {
      const b = store.batch();
      const first = b.addMessage(message('t', 'before'));
      const seq1 = b.enqueue('c', { messageId: first, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b);
      await reload();
      const b2 = store.batch();
      const second = b2.addMessage(message('t', 'after'));
      const seq2 = b2.enqueue('c', { messageId: second, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b2);
      assert.ok(second > first && seq2 > seq1);
      const s = await reload();
      assert.deepEqual(s.queues.get('c')!.map((e) => s.messages.get(e.messageId)!.payload.toString()), ['before', 'after']);
    });

    test('loadAll emits kinds in the documented order and reports progress', async () => {
      const b = store.batch();
      const id = b.addMessage(message('t', 'x'));
      b.putSession(session('c')).putSubscription(sub('c', 'f')).putRetained(message('r', 'x', { retain: true }))
        .addInboundQos2('c', 1)
        .putInflight('c', { packetId: 1, messageId: id, qos: 1, state: 'publish', dup: false, retain: false, subscriptionIdentifiers: [] });
      for (let i = 0; i < 25; i++) b.enqueue('c', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] });
      await store.commit(b);
      if (opts.reopen) store = await opts.reopen(store);
      const s = await snapshot(store);
      assert.deepEqual(s.order, ['session', 'subscription', 'retained', 'message', 'queued', 'inflight', 'inbound']);
      if (opts.reopen) store = await opts.reopen(store);
      const reports: string[] = [];
      const sum = await store.loadAll({}, { progressEvery: 10, onProgress: (p) => reports.push(`${p.phase}:${p.records}:${p.phaseDone}`) });
      assert.equal(sum.queued, 25);
      assert.ok(reports.includes('inbound:1:true'), reports.join(' '));
      if (opts.reopen) assert.ok(reports.includes('queues:20:false') && reports.includes('queues:25:true'), reports.join(' '));
    });

    test('use after close is rejected with a StoreError', async () => {
      await store.close();
      await assert.rejects(async () => store.commit(store.batch().putSession(session('c'))), { name: 'StoreError', code: 'CLOSED' });
      await opts.dispose?.(store);
      store = await opts.create();
      await store.loadAll({});
    });
  });
}
