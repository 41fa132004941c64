// 44: many retained messages through the real broker (src/coordinator/retained.ts, a trie by
// topic level). N retained messages (32-byte payloads, FLEETMQ_RETAINED_N, default 200,000)
// arrive over raw pipelined QoS 0 connections; a wildcard SUBSCRIBE matching 1% of them gets
// exactly that set, each message once and intact [MQTT-3.3.1-9]; filters that match nothing get
// nothing; after a restart on the same --data-dir the index is rebuilt from the store and
// answers the same. FLEETMQ_RETAINED_N=1000000 runs the issue's 1M case: it passed here in
// 96 s (load 22 s, each 1% SUBSCRIBE under 1 s, restart 56 s of which 14 s reading the store)
// on this shared 2-core machine, too long for the default suite; speed and memory figures are
// bench/retained-scale.ts.
//
// "Nothing more arrives" is not a wait: a retained-only marker topic is the last filter of the
// same SUBSCRIBE, and a session sends each subscription's retained messages in SUBSCRIBE order,
// so when the marker arrives every message of the filters before it has arrived.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { launchBroker, makeTempDir, removeDir, type Broker } from '../helpers/broker';
import { connectClient, subscribe, type Connected } from '../helpers/clients';
import { publishRetainedBulk } from '../helpers/bulk-publish';
import { rssBytes } from '../helpers/proc';
import { waitUntil } from '../helpers/wait';

const N = Number(process.env.FLEETMQ_RETAINED_N ?? 200_000);
const WAIT = 300_000;
const BUCKETS = 100;
const topicOf = (i: number) => `scale/${i % BUCKETS}/${i}`;
/** 32 bytes naming the message, so a wrong or corrupted payload shows. */
const payloadOf = (i: number) => Buffer.from(`retained-${String(i).padStart(12, '0')}-payload.`.padEnd(32, '.'));

/** Subscribes `filters` then a marker in one SUBSCRIBE; resolves with what arrived before the marker, and the time it took. */
async function retainedFor(broker: Broker, filters: string[]): Promise<{ got: Map<string, Buffer>; dup: number; ms: number; conn: Connected }> {
  const conn = await connectClient(broker.port, { protocolVersion: 5 });
  const started = process.hrtime.bigint();
  const map: Record<string, { qos: 0 }> = {};
  for (const f of [...filters, 'scale-marker']) map[f] = { qos: 0 };
  await subscribe(conn.client, map);
  await waitUntil(() => conn.inbox.msgs.some((m) => m.topic === 'scale-marker'), () => `the marker after ${conn.inbox.msgs.length} retained messages`, WAIT, 20);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const got = new Map<string, Buffer>();
  let dup = 0;
  for (const m of conn.inbox.msgs) {
    if (m.topic === 'scale-marker') break;
    assert.equal(m.packet.retain, true, `${m.topic}: sent because of the new subscription, so RETAIN 1 [MQTT-3.3.1-9]`);
    if (got.has(m.topic)) dup++;
    got.set(m.topic, m.payload);
  }
  return { got, dup, ms, conn };
}

function checkExactly(got: Map<string, Buffer>, dup: number, pick: (i: number) => boolean, what: string): number {
  assert.equal(dup, 0, `${what}: each retained message once`);
  let expected = 0;
  for (let i = 0; i < N; i++) {
    if (!pick(i)) continue;
    expected++;
    const p = got.get(topicOf(i));
    assert.ok(p, `${what}: ${topicOf(i)} missing (${got.size} arrived)`);
    assert.ok(p.equals(payloadOf(i)), `${what}: ${topicOf(i)} intact`);
  }
  assert.equal(got.size, expected, `${what}: nothing but the matching set`);
  return expected;
}

/**
 * The retained set, then the marker on a connection of its own: its CONNACK also says the
 * broker has caught up with storing the set (a CONNECT waits for the store requests before it).
 */
async function load(b: Broker): Promise<void> {
  await publishRetainedBulk(b.port, N, topicOf, payloadOf, 2, WAIT);
  await publishRetainedBulk(b.port, 1, () => 'scale-marker', () => Buffer.from('end'), 1, WAIT);
}

describe(`44 ${N.toLocaleString('en')} retained messages`, () => {
  test('a wildcard matching 1% gets exactly its set; filters that match nothing get nothing; restart rebuilds the index', { timeout: 900_000 }, async (t) => {
    const dir = makeTempDir('fleetmq-retained-scale-');
    const conns: Connected[] = [];
    let b: Broker | null = await launchBroker(1, ['--durability', 'process', '--data-dir', dir, '--sys-interval', '0']);
    try {
      const rss0 = rssBytes(b.proc.pid!);
      const t0 = Date.now();
      await load(b);
      const loadMs = Date.now() - t0;
      const rss1 = rssBytes(b.proc.pid!);
      t.diagnostic(`loaded ${N} retained (32 B) over 2 raw QoS 0 connections in ${loadMs} ms (${Math.round(N / (loadMs / 1000))}/s); ` +
        `broker RSS +${((rss1 - rss0) / 1048576).toFixed(1)} MiB (${((rss1 - rss0) / N).toFixed(0)} B per message, store included)`);

      // 1%: `scale/7/+`; and the same set through `+/7/#` (a leading wildcard, a `#` that also matches the parent level).
      for (const f of ['scale/7/+', '+/7/#']) {
        const r = await retainedFor(b, [f]);
        conns.push(r.conn);
        const n = checkExactly(r.got, r.dup, (i) => i % BUCKETS === 7, f);
        t.diagnostic(`'${f}': ${n} retained messages, SUBSCRIBE to the last one in ${r.ms.toFixed(0)} ms`);
      }
      const none = await retainedFor(b, ['scale/100/+', 'scale/7/x/+', 'scale/+/x', 'nomatch/#', '$SYS/scale/#']);
      conns.push(none.conn);
      assert.deepEqual([...none.got.keys()], [], 'filters that match no retained topic get nothing');
      for (const c of conns.splice(0)) c.client.end(true);

      // Restart on the same store: the index is rebuilt from it.
      assert.equal(await b.stop(), 0);
      b = null;
      const started = Date.now();
      b = await launchBroker(1, ['--durability', 'process', '--data-dir', dir, '--sys-interval', '0'], { ms: WAIT });
      const restored = /restored .*?(\d+) retained.* in (\d+) ms/.exec(b.output());
      t.diagnostic(`restart to listening: ${Date.now() - started} ms; ${restored ? `store read: ${restored[2]} ms` : b.output().slice(-300)}`);
      const r = await retainedFor(b, ['scale/42/+']);
      conns.push(r.conn);
      checkExactly(r.got, r.dup, (i) => i % BUCKETS === 42, 'scale/42/+ after the restart');
    } finally {
      for (const c of conns) c.client.end(true);
      if (b) await b.stop().catch(() => b?.kill());
      removeDir(dir);
    }
  });
});
