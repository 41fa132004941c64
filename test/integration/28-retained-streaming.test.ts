// 28: retained messages stream to a new subscription as the client drains them
// (src/coordinator/retained.ts cursors, workers/session/retained-feed.ts): socket back-pressure
// for QoS 0, the in-flight window for QoS >= 1, never copies of the whole set in the session
// queue. A subscriber that keeps reading gets every one [MQTT-3.3.1-9]; one that stops reading
// costs the broker a page or two, not the retained set.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { launchBroker, Broker } from '../helpers/broker';
import { rssBytes } from '../helpers/proc';
import { delay as sleep, waitUntil } from '../helpers/wait';
import { AckingSubscriber, TrackingPublisher, numberedPayload, digest } from '../helpers/delivery-clients';

const MiB = 1024 * 1024;
const WAIT = 120000;

/** Publishes `count` retained messages numbered from 0 on `topicOf(n)`, each acknowledged (QoS 1). */
async function seedRetained(b: Broker, count: number, size: number, topicOf: (n: number) => string): Promise<void> {
  const pub = await TrackingPublisher.connect(b.port, 4, { clientId: `seed-${Math.random().toString(36).slice(2)}` });
  for (let n = 0; n < count; n++) {
    await pub.publish(topicOf(n), n, size, 1, true);
    // Bounded pipelining: the publisher never has more packet ids out than it can track.
    if (pub.unacked > 20000) await waitUntil(() => pub.unacked < 10000, 'PUBACKs while seeding', WAIT, 5);
  }
  await waitUntil(() => pub.unacked === 0, 'PUBACKs of every retained message', WAIT);
  assert.equal(pub.acked().length, count, 'every retained message acknowledged');
  pub.destroy();
}

/** Every message number in [0, count) that `sub` received with `pred`, checked once each, intact. */
function checkAll(sub: AckingSubscriber, count: number, what: string, pick: (n: number) => boolean, size: number, qos: number): void {
  const seen = new Set<number>();
  for (const g of sub.got) {
    assert.ok(pick(g.n), `${what}: message ${g.n} does not match the filter`);
    assert.ok(g.retain, `${what}: retained messages for a new subscription carry RETAIN 1 [MQTT-3.3.1-9]`);
    assert.equal(g.qos, qos, `${what}: message ${g.n} at QoS ${qos}`);
    assert.equal(g.hash, digest(numberedPayload(g.n, size)), `${what}: message ${g.n} intact`);
    seen.add(g.n);
  }
  let expected = 0;
  for (let n = 0; n < count; n++) if (pick(n)) expected++;
  assert.equal(seen.size, expected, `${what}: every matching retained message arrives`);
}

describe('28 retained messages stream to reading subscribers', () => {
  for (const workers of [1, 3]) {
    test(`${workers} worker(s): 100,000 retained to a QoS 0 wildcard subscriber, 50,000 to a QoS 1 one`, { timeout: 300000 }, async () => {
      const b = await launchBroker(workers, ['--durability', 'none']);
      try {
        const N = 100_000;
        await seedRetained(b, N, 16, (n) => `ret/${n % 2 === 0 ? 'even' : 'odd'}/${n}`);
        const q0 = await AckingSubscriber.connect(b.port, 4, { clientId: 'ret-q0' });
        await q0.subscribe('ret/#', 0);
        await waitUntil(() => q0.got.length >= N, () => `QoS 0: ${q0.got.length} of ${N} retained messages`, WAIT);
        const q1 = await AckingSubscriber.connect(b.port, 5, { clientId: 'ret-q1' });
        await q1.subscribe('ret/even/+', 1);
        await waitUntil(() => q1.got.length >= N / 2, () => `QoS 1: ${q1.got.length} of ${N / 2} retained messages`, WAIT);
        // A moment for anything still on its way: a duplicate would show in the counts below.
        await sleep(200);
        checkAll(q0, N, 'QoS 0 subscriber', () => true, 16, 0);
        assert.equal(q0.got.length, N, 'QoS 0: each retained message once');
        checkAll(q1, N, 'QoS 1 subscriber', (n) => n % 2 === 0, 16, 1);
        assert.equal(q1.got.length, N / 2, 'QoS 1: each retained message once');
        q0.destroy();
        q1.destroy();
      } finally { await b.stop(); }
    });
  }

  test('a subscriber that stops reading holds the broker to pages, not the retained set; reading again, it gets them all', { timeout: 300000 }, async (t) => {
    const b = await launchBroker(1, ['--durability', 'none']);
    try {
      const N = 30_000;
      const SIZE = 4096;
      await seedRetained(b, N, SIZE, (n) => `big/${n}`);
      // A first subscriber reads them all: the worker's heap and buffers reach their working size
      // (about 15 MiB here, once per worker) before the measurement starts.
      const warm = await AckingSubscriber.connect(b.port, 4, { clientId: 'warm-up' });
      await warm.subscribe('big/#', 1);
      await waitUntil(() => warm.got.length >= N, () => `warm-up reader: ${warm.got.length} of ${N}`, WAIT);
      checkAll(warm, N, 'reading subscriber', () => true, SIZE, 1);
      warm.destroy();
      await sleep(500);
      const before = rssBytes(b.proc.pid!);
      const subs: AckingSubscriber[] = [];
      for (const qos of [0, 1] as const) {
        const s = await AckingSubscriber.connect(b.port, 4, { clientId: `stalled-${qos}` });
        await s.subscribe('big/#', qos);
        s.stall();
        subs.push(s);
      }
      // Stalled for a while: the broker must not buffer 117 MiB of retained messages per subscriber.
      let peak = before;
      for (let i = 0; i < 30; i++) { await sleep(100); peak = Math.max(peak, rssBytes(b.proc.pid!)); }
      const grew = peak - before;
      t.diagnostic(`${N} × ${SIZE} B retained (${(N * SIZE / MiB).toFixed(0)} MiB); two stalled subscribers grew the broker's RSS by ${(grew / MiB).toFixed(1)} MiB`);
      assert.ok(grew < 32 * MiB, `two stalled subscribers grew RSS by ${(grew / MiB).toFixed(1)} MiB (bound 32 MiB)`);
      for (const s of subs) s.unstall();
      for (const [qos, s] of subs.entries()) {
        await waitUntil(() => s.got.length >= N, () => `stalled QoS ${qos} subscriber, reading again: ${s.got.length} of ${N}`, WAIT);
        checkAll(s, N, `stalled QoS ${qos} subscriber`, () => true, SIZE, qos);
        s.destroy();
      }
    } finally { await b.stop(); }
  });
});
