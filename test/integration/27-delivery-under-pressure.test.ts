// 27: subscribers that keep reading get every acknowledged QoS >= 1 message, whatever passes
// the output high-water mark before it (workers/session/session.ts `pump`, workers/net/
// connection.ts `flush`). The rule under test: acknowledged ⇒ delivered, or dropped by a stated
// policy (queue full, expiry, too large) and counted on $SYS.
//
// - The mixed burst: 5 × 256 KiB QoS 0 (passes the 1 MiB high-water mark: one QoS 0 may be
//   dropped, counted) and at once 5 × 256 KiB QoS 1, then one small QoS 1: all six QoS 1 arrive,
//   and a later QoS 1 on a new subscription too. Once, this wedged the session's queue for good:
//   the kernel took the whole coalesced write, so no 'drain' ever came to send what was queued.
// - A mixed-size (256 KiB – 2 MiB), mixed-QoS stream to three subscribers on three workers:
//   every QoS >= 1 message arrives at each, intact (hash), in the publisher's order.
// - A seeded random mix of sizes, QoS, stalling readers and reconnecting persistent sessions
//   under small limits: what each subscriber misses of the acknowledged QoS >= 1 messages is
//   exactly what the broker counted as dropped.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { launchBroker, Broker } from '../helpers/broker';
import { Rng } from '../helpers/rng';
import { delay as sleep, waitUntil } from '../helpers/wait';
import { AckingSubscriber, TrackingPublisher, Sent, V } from '../helpers/delivery-clients';
import { SysWatcher } from '../helpers/sys-watcher';

const KiB = 1024;
const WAIT = 60000;

/** Every acknowledged QoS >= 1 message of `sent` that `sub` has not received (numbers). */
function missing(sent: Sent[], sub: AckingSubscriber): number[] {
  return sent.filter((s) => s.qos > 0 && s.acked && !sub.qos12.has(s.n)).map((s) => s.n);
}

async function withBroker(args: string[], body: (b: Broker) => Promise<void>): Promise<void> {
  const b = await launchBroker(Number(args[0]), args.slice(1));
  try { await body(b); } finally { await b.stop(); }
}

describe('27 delivery under pressure', () => {
  for (const workers of [1, 3]) {
    for (const version of [4, 5] as V[]) {
      test(`mixed burst, ${workers} worker(s), v${version === 5 ? 5 : '3.1.1'}: every acknowledged QoS 1 message arrives, repeated`, { timeout: 240000 }, async () => {
        await withBroker([String(workers), '--durability', 'none'], async (b) => {
          for (let round = 0; round < 3; round++) {
            const tag = `r${round}`;
            const sub = await AckingSubscriber.connect(b.port, version, { clientId: `mix-sub-${tag}` });
            await sub.subscribe(`mix${tag}/#`, 1);
            const pub = await TrackingPublisher.connect(b.port, version, { clientId: `mix-pub-${tag}` });
            let n = 0;
            for (let i = 0; i < 5; i++) await pub.publish(`mix${tag}/a`, n++, 256 * KiB, 0);
            for (let i = 0; i < 5; i++) await pub.publish(`mix${tag}/b`, n++, 256 * KiB, 1);
            await waitUntil(() => pub.unacked === 0, 'PUBACKs for the five 256 KiB QoS 1 messages', WAIT);
            await pub.publish(`mix${tag}/c`, n++, 16, 1);
            await waitUntil(() => pub.unacked === 0, 'the PUBACK of the small QoS 1 message', WAIT);
            assert.equal(pub.acked().length, 6, 'the broker acknowledges all six QoS 1 messages');
            await waitUntil(() => missing(pub.sent, sub).length === 0,
              () => `round ${round}: acknowledged QoS 1 messages never delivered: ${missing(pub.sent, sub).join(', ')} (the subscriber got ${sub.got.length} PUBLISHes)`, WAIT);
            for (const g of sub.got) assert.equal(g.hash, pub.sent[g.n].hash, `message ${g.n} arrives intact`);
            // The session is not wedged: a new subscription's QoS 1 flows too.
            await sub.subscribe(`later${tag}/#`, 1);
            await pub.publish(`later${tag}/x`, n++, 64, 1);
            await waitUntil(() => sub.qos12.has(n - 1), `round ${round}: a QoS 1 message on a new subscription after the burst`, WAIT);
            sub.destroy();
            pub.destroy();
          }
        });
      });
    }
  }

  test('mixed sizes (256 KiB – 2 MiB) and QoS to three subscribers on three workers: nothing lost at QoS >= 1, payloads intact, in order', { timeout: 300000 }, async () => {
    const rng = new Rng(27);
    await withBroker(['3', '--durability', 'none'], async (b) => {
      // Three subscribers first: the main thread gives each new connection the least-loaded worker.
      const subs: AckingSubscriber[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await AckingSubscriber.connect(b.port, i === 1 ? 5 : 4, { clientId: `stream-sub-${i}` });
        await s.subscribe('stream/#', 2);
        subs.push(s);
      }
      const pub = await TrackingPublisher.connect(b.port, 5, { clientId: 'stream-pub' });
      for (let n = 0; n < 45; n++) {
        await pub.publish(`stream/${n % 3}`, n, rng.range(256 * KiB, 2048 * KiB), (n % 3) as 0 | 1 | 2);
      }
      await waitUntil(() => pub.unacked === 0, 'acknowledgements of every QoS 1 and 2 message', WAIT);
      const qos12 = pub.sent.filter((s) => s.qos > 0);
      assert.equal(pub.acked().length, qos12.length, 'every QoS >= 1 message is acknowledged');
      for (const [i, s] of subs.entries()) {
        await waitUntil(() => missing(pub.sent, s).length === 0,
          () => `subscriber ${i}: acknowledged QoS >= 1 messages not delivered: ${missing(pub.sent, s).join(', ')}`, WAIT);
        const order = s.got.filter((g) => g.qos > 0 && !g.dup).map((g) => g.n);
        assert.deepEqual(order, qos12.map((m) => m.n), `subscriber ${i}: QoS >= 1 messages in the publisher's order`);
        for (const g of s.got) assert.equal(g.hash, pub.sent[g.n].hash, `subscriber ${i}: message ${g.n} (${pub.sent[g.n].size} bytes) intact`);
      }
      for (const s of subs) s.destroy();
      pub.destroy();
    });
  });

  test('a burst larger than a peer ring reaches a subscriber on another worker, after the publisher goes quiet', { timeout: 180000 }, async () => {
    // 48 × 512 KiB = 24 MiB through a 4 MiB ring between two workers: records spill to the
    // publisher worker's overflow queue, which must drain though that worker has nothing else
    // to do once the publisher stops (the subscriber reads but does not acknowledge, so nothing
    // comes back to wake it).
    await withBroker(['2', '--durability', 'none', '--max-inflight', '64'], async (b) => {
      for (let round = 0; round < 3; round++) {
        // The main thread gives each new connection the least-loaded worker: subscriber, then publisher.
        const sub = await AckingSubscriber.connect(b.port, 5, { clientId: `ring-sub-${round}` });
        await sub.subscribe(`ring${round}/#`, 1);
        sub.acking = false;
        const pub = await TrackingPublisher.connect(b.port, 4, { clientId: `ring-pub-${round}` });
        for (let n = 0; n < 48; n++) await pub.publish(`ring${round}/x`, n, 512 * KiB, 1);
        await waitUntil(() => pub.unacked === 0, 'PUBACKs for the burst', WAIT);
        await waitUntil(() => sub.qos12.size === 48, () => `round ${round}: ${sub.qos12.size} of 48 messages reached the subscriber`, WAIT);
        sub.destroy();
        pub.destroy();
      }
    });
  });

  test('random mix with stalls and reconnects: each missing acknowledged message is a counted drop', { timeout: 300000 }, async (t) => {
    const seed = Number(process.env.FLEETMQ_SEED ?? 20261203);
    const rng = new Rng(seed);
    t.diagnostic(`seed ${seed} (FLEETMQ_SEED reproduces a run)`);
    // Small limits, so that stalls overflow the in-flight window, the output mark and the queue.
    await withBroker(['2', '--durability', 'none', '--sys-interval', '1', '--max-inflight', '8',
      '--max-queued-messages', '40', '--output-high-water', String(64 * KiB)], async (b) => {
      const sys = await SysWatcher.start(b.port);
      const dropNames = ['messages/dropped/queue-full', 'messages/dropped/expired', 'messages/dropped/too-large'];
      const before = await Promise.all(dropNames.map((n) => sys.current(n)));
      const N_SUBS = 4;
      const ids = Array.from({ length: N_SUBS }, (_, i) => `rnd-sub-${i}`);
      const versions: V[] = ids.map((_, i) => (i % 2 === 0 ? 4 : 5));
      const connectSub = async (i: number, first: boolean) => {
        const v = versions[i];
        // Persistent from the first connection on (3.1.1: CleanSession 0 on a fresh broker).
        const s = await AckingSubscriber.connect(b.port, v, v === 5
          ? { clientId: ids[i], clean: first, properties: { sessionExpiryInterval: 3600 } }
          : { clientId: ids[i], clean: false });
        if (first) await s.subscribe('rnd/#', (1 + (i % 2)) as 1 | 2);
        return s;
      };
      const subs: AckingSubscriber[] = [];
      for (let i = 0; i < N_SUBS; i++) subs.push(await connectSub(i, true));
      // What each subscriber's earlier connections received, by message number.
      const gotBefore: Set<number>[] = ids.map(() => new Set<number>());
      const pub = await TrackingPublisher.connect(b.port, 5, { clientId: 'rnd-pub' });
      const M = 1500;
      for (let n = 0; n < M; n++) {
        const size = rng.chance(0.05) ? rng.range(64 * KiB, 300 * KiB) : rng.range(8, 2 * KiB);
        await pub.publish(`rnd/${rng.int(4)}`, n, size, rng.int(3) as 0 | 1 | 2);
        if (n % 50 === 0) {
          const i = rng.int(N_SUBS);
          const s = subs[i];
          const what = rng.int(3);
          if (what === 0) s.stall();
          else if (what === 1) s.unstall();
          else {
            for (const x of s.qos12) gotBefore[i].add(x);
            s.destroy();
            subs[i] = await connectSub(i, false);
          }
          if (rng.chance(0.3)) await sleep(rng.int(30));
        }
      }
      // Everyone reads again; a last QoS 1 message per subscriber shows the queues have drained
      // (drop-oldest never drops the newest, and a session delivers its QoS >= 1 messages in order).
      for (const s of subs) s.unstall();
      await waitUntil(() => pub.unacked === 0, 'acknowledgements of every QoS >= 1 message', WAIT);
      const last = await pub.publish('rnd/fence', M, 16, 1);
      await waitUntil(() => pub.unacked === 0, 'the fence PUBACK', WAIT);
      assert.ok(last.acked);
      for (const [i, s] of subs.entries()) {
        await waitUntil(() => s.qos12.has(M), () => `subscriber ${i} (v${versions[i]}): the fence message; connection closed: ${s.closed}, ${s.got.length} PUBLISHes on this connection, the last: ${JSON.stringify(s.got.slice(-3))}; CONNACK ${JSON.stringify(s.connack)}; before: ${gotBefore[i].size}`, WAIT);
      }
      const after = await Promise.all(dropNames.map((n) => sys.current(n)));
      const counted = after.reduce((a, x, k) => a + x - before[k], 0);
      let lost = 0;
      for (const [i, s] of subs.entries()) {
        for (const x of s.qos12) gotBefore[i].add(x);
        const miss = pub.sent.filter((m) => m.qos > 0 && m.acked && !gotBefore[i].has(m.n));
        lost += miss.length;
        for (const g of s.got) assert.equal(g.hash, pub.sent[g.n].hash, `subscriber ${i}: message ${g.n} intact`);
      }
      t.diagnostic(`${pub.acked().length} acknowledged QoS >= 1 messages; missing deliveries ${lost}; counted drops ${counted} (${dropNames.map((n, k) => `${n} +${after[k] - before[k]}`).join(', ')})`);
      assert.equal(lost, counted, 'every acknowledged QoS >= 1 message a subscriber misses is a counted drop, and only those are counted');
      sys.close();
      for (const s of subs) s.destroy();
      pub.destroy();
    });
  });
});
