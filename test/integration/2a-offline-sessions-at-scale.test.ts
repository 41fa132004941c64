// 2a: many offline persistent sessions: their expiries and wills fire on time, across a restart,
// with no timer per session (workers/README.md, "Sessions"; workers/session/deadline-heap.ts).
//
// SESSIONS v5 clients (clean start, Session Expiry EXPIRY_S, a QoS 1 will with Will Delay
// WILL_DELAY_S) connect and drop their connection without DISCONNECT: every session is offline
// with two deadlines pending. SESSIONS is 20,000 (a constant) to keep the test near a minute on
// the loaded 2-core machine (66 s there: making them takes ~25 s, the restart ~15 s); the target
// is 100,000 (bench/offline-queue.ts makes that many).
// - Once they are all offline, the deadlines gauge (fleetmq_session_deadlines) is exactly
//   2 × SESSIONS, and no worker holds more than TIMERS_MAX live Node timers
//   ($fleetmq/test/timers hook): a timer per session would be thousands.
// - The broker is killed (SIGKILL) and restarted on the same store: the gauge is back at
//   2 × SESSIONS minus what fell due while it was down, and no timer per session either.
// - A persistent subscriber (QoS 1, `<base>/w/+`) gets every will exactly once; none before its
//   due time (disconnect + WILL_DELAY_S), and each one due after the restart within
//   TOLERANCE_MS of it. Wills due while the broker was down come at start.
// - Every session is gone (sessions gauge back to the subscriber's) within TOLERANCE_MS of its
//   expiry and no session ended early; sampled clients reconnect to Session Present 0.
// Like test 23 this must wait for the deadlines themselves; all other waits are bounded polls.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mqtt from 'mqtt';
import { uid, utopic } from '../helpers/ids';
import { subscribeOk, end } from '../helpers/clients';
import { withDeployment, persistentOpts, durableBarrier } from '../helpers/persist';
import { burstSessions } from '../helpers/session-burst';
import { metric, metricUntil } from '../helpers/metrics';
import { waitUntil, delay } from '../helpers/wait';

const SESSIONS = 20_000;
const WILL_DELAY_S = 35;
const EXPIRY_S = 50;
/** How late a deadline may fire on this loaded machine (the heap itself fires in the turn it is due). */
const TOLERANCE_MS = 5000;
/** Node timers a worker may hold whatever its sessions: keep-alive sweeps, heartbeats, store flushes, the heap's one. */
const TIMERS_MAX = 64;
const WORKERS = 2;

/**
 * Asks every worker for its heap size and live Node timers. The main thread gives a new
 * connection to the worker with the fewest open, so the probes stay open until all answered.
 */
async function timersPerWorker(port: number): Promise<Map<number, { deadlines: number; timeouts: number }>> {
  const seen = new Map<number, { deadlines: number; timeouts: number }>();
  const open: mqtt.MqttClient[] = [];
  try {
    for (let tries = 0; seen.size < WORKERS && tries < 8 * WORKERS; tries++) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId: uid('timers'), reconnectPeriod: 0 });
      open.push(c);
      const got = new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no answer from the $fleetmq/test/timers hook within 10 s')), 10_000);
        c.on('message', (topic, payload) => { if (topic === '$fleetmq/test/timers') { clearTimeout(t); resolve(payload); } });
      });
      await c.publishAsync('$fleetmq/test/timers', 'x', { qos: 0 });
      const a = JSON.parse((await got).toString()) as { worker: number; deadlines: number; timeouts: number };
      seen.set(a.worker, { deadlines: a.deadlines, timeouts: a.timeouts });
    }
  } finally {
    await Promise.all(open.map((c) => c.endAsync(true)));
  }
  assert.equal(seen.size, WORKERS, `heard from ${seen.size} of ${WORKERS} workers`);
  return seen;
}

describe(`2a ${SESSIONS} offline sessions: expiries and wills on time across a restart, one timer per worker`, () => {
  it(`${SESSIONS} sessions, will delay ${WILL_DELAY_S} s, expiry ${EXPIRY_S} s, SIGKILL and restart`, { timeout: 600_000 }, async () => {
    await withDeployment(WORKERS, { env: { FLEETMQ_TEST_HOOKS: '1' }, args: ['--max-queued-messages', String(SESSIONS * 2)] }, async (d, c) => {
      await d.start();
      const base = utopic('many');
      const subId = uid('msub');
      const s = await c.mqtt(d.port, persistentOpts(5, subId, false, 3600));
      await subscribeOk(s.client, { [`${base}/w/+`]: { qos: 1 } });

      const disconnectedAt = await burstSessions(d.port, 5, SESSIONS, (i) => ({
        connect: {
          clientId: `${base}-s${i}`,
          properties: { sessionExpiryInterval: EXPIRY_S },
          will: { topic: `${base}/w/${i}`, payload: Buffer.from(String(i)), qos: 1, retain: false, properties: { willDelayInterval: WILL_DELAY_S } },
        },
      }));
      const firstGone = Math.min(...disconnectedAt);
      const lastGone = Math.max(...disconnectedAt);
      await metricUntil(d.b, 'fleetmq_session_deadlines', (v) => v === 2 * SESSIONS, `${2 * SESSIONS}: an expiry and a will per offline session`);
      assert.ok(Date.now() < firstGone + WILL_DELAY_S * 1000, `making ${SESSIONS} sessions took ${Date.now() - firstGone} ms, past the will delay: raise WILL_DELAY_S`);
      for (const [w, t] of await timersPerWorker(d.port)) {
        assert.ok(t.deadlines > 0, `worker ${w} holds none of the deadlines (sessions not spread?)`);
        assert.ok(t.timeouts <= TIMERS_MAX, `worker ${w} has ${t.timeouts} live Node timers for ${t.deadlines} deadlines: a timer per session?`);
      }

      // Arrival time of each will at the subscriber (first one; duplicates counted).
      const arrived = new Float64Array(SESSIONS);
      let duplicates = 0;
      const watch = (client: mqtt.MqttClient) => client.on('message', (topic) => {
        const i = Number(topic.slice(topic.lastIndexOf('/') + 1));
        if (arrived[i] !== 0) duplicates++; else arrived[i] = Date.now();
      });
      await durableBarrier(c, d.port, `${base}/barrier`);
      // The subscriber's and the barrier's sessions: what is left once the offline ones expired.
      const baseSessions = await metric(d.b, 'fleetmq_sessions') - SESSIONS;
      await end(s.client);
      await d.down('SIGKILL');
      await d.start();
      const upAt = Date.now();
      const s2 = await c.mqtt(d.port, persistentOpts(5, subId, true, 3600), watch);
      assert.equal(s2.connack.sessionPresent, true, 'the subscriber\'s session survives the restart');
      const restoredAt = Date.now();
      const after = await metric(d.b, 'fleetmq_session_deadlines');
      // Wills fire on their own meanwhile: at most those due by now (the broker saw each close after we made it).
      const dueBefore = [...disconnectedAt].filter((t) => t + WILL_DELAY_S * 1000 <= Date.now()).length;
      assert.ok(after >= 2 * SESSIONS - dueBefore && after <= 2 * SESSIONS, `after the restart the deadlines gauge is ${after}: expected ${2 * SESSIONS} minus the ${dueBefore} wills due by now`);
      for (const [w, t] of await timersPerWorker(d.port)) {
        assert.ok(t.timeouts <= TIMERS_MAX, `after the restart worker ${w} has ${t.timeouts} live Node timers for ${t.deadlines} deadlines`);
      }

      // Wills: every one, once, never early, on time when due after the restart.
      await waitUntil(() => arrived.every((t) => t !== 0), () => `all ${SESSIONS} wills (got ${arrived.filter((t) => t !== 0).length})`,
        lastGone + WILL_DELAY_S * 1000 + TOLERANCE_MS * 4 - Date.now());
      let early = 0, late = 0, worst = 0;
      const earlyOnes: string[] = [];
      for (let i = 0; i < SESSIONS; i++) {
        const due = disconnectedAt[i] + WILL_DELAY_S * 1000;
        if (arrived[i] < due && early++ < 5) earlyOnes.push(`#${i} ${due - arrived[i]} ms early (gone ${disconnectedAt[i] - firstGone} ms after the first, broker up ${upAt - firstGone})`);
        if (due > restoredAt) { const l = arrived[i] - due; worst = Math.max(worst, l); if (l > TOLERANCE_MS) late++; }
      }
      assert.equal(early, 0, `${early} wills arrived before their delay ran out [MQTT5-3.1.3-9]: ${earlyOnes.join('; ')}`);
      assert.equal(late, 0, `${late} wills due after the restart came more than ${TOLERANCE_MS} ms late (worst ${worst} ms; broker up at ${upAt})`);
      assert.equal(duplicates, 0, `${duplicates} wills arrived twice`);

      // Expiries: none early, all within the tolerance of the last one's.
      const firstExpiry = firstGone + EXPIRY_S * 1000;
      if (Date.now() < firstExpiry - 1000) {
        await delay(firstExpiry - 1000 - Date.now());
        const still = await metric(d.b, 'fleetmq_sessions');
        assert.equal(still, baseSessions + SESSIONS, `1 s before the first expiry ${still - baseSessions} of ${SESSIONS} sessions are left: some ended early`);
      }
      const lastExpiry = lastGone + EXPIRY_S * 1000;
      await metricUntil(d.b, 'fleetmq_sessions', (v) => v === baseSessions, `${baseSessions} (the subscriber's): every offline session expired`,
        Math.max(0, lastExpiry - Date.now()) + TOLERANCE_MS);
      assert.equal(await metric(d.b, 'fleetmq_session_deadlines'), 0, 'no deadline left once every session expired');
      for (const i of [0, 1, SESSIONS >> 1, SESSIONS - 1]) {
        const x = await c.mqtt(d.port, persistentOpts(5, `${base}-s${i}`, true, 0));
        assert.equal(x.connack.sessionPresent, false, `session ${i} must be gone after its expiry`);
      }
    });
  });
});
