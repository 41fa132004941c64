// 23 restart: time counted across downtime ("sessions (expiry counted across
// downtime)", "wills (a will whose delay or session expired while the broker was down is
// published at start)"), with 1 and 3 workers, restart by SIGTERM and by SIGKILL:
//   - a v5 session with Session Expiry 2 s whose broker is down for more than that is gone after
//     the restart (Session Present 0, its queued message gone); a 1 h v5 session and a 3.1.1
//     persistent session are still there;
//   - v5 clients lose their connection (socket destroyed, no DISCONNECT): A with Will Delay 60 s
//     and Session Expiry 3 s, B with Will Delay 2 s and Session Expiry 1 h; the broker goes down
//     for more than 3 s: both wills (QoS 1, retained) are published after the restart, exactly
//     once, to a persistent subscriber that was offline and to a new subscriber (retained or
//     live); A's session is gone, B's is kept.
//   - v5 Message Expiry on queued and retained messages counts the downtime too.
// These are the only tests here that must wait for a fixed time: the expiry itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { delay } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { subscribeOk, publish, end } from '../helpers/clients';
import { withDeployment, persistentOpts, Down, durableBarrier } from '../helpers/persist';

/** Waits until at least `ms` have passed since `since` (the one place a fixed wait is the point). */
async function waitSince(since: number, ms: number): Promise<void> {
  const left = since + ms - Date.now();
  if (left > 0) await delay(left);
}

for (const workers of [1, 3]) {
  for (const down of ['SIGTERM', 'SIGKILL'] as Down[]) {
    describe(`23 restart after ${down}, time counted across downtime [workers=${workers}]`, () => {
      it('a v5 session with Session Expiry 2 s is gone after the broker was down for longer; longer sessions are kept', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('exp');
          const shortId = uid('short');
          const longId = uid('long');
          const v4Id = uid('v4');
          const s = await c.mqtt(d.port, persistentOpts(5, shortId, false, 2));
          await subscribeOk(s.client, { [`${base}/short`]: { qos: 1 } });
          const l = await c.mqtt(d.port, persistentOpts(5, longId, false, 3600));
          await subscribeOk(l.client, { [`${base}/long`]: { qos: 1 } });
          const f = await c.mqtt(d.port, persistentOpts(4, v4Id, false));
          await subscribeOk(f.client, { [`${base}/v4`]: { qos: 1 } });
          await Promise.all([end(l.client), end(f.client)]);
          await end(s.client);
          const disconnectedAt = Date.now();
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('ep') });
          for (const t of ['short', 'long', 'v4']) await publish(pub.client, `${base}/${t}`, `queued-${t}`, { qos: 1 });
          await d.down(down);
          const downAt = Date.now();
          // Down for longer than the 2 s expiry, which also ran out counted from the disconnect.
          await waitSince(downAt, 3000);
          await waitSince(disconnectedAt, 3000);
          await d.start();
          const s2 = await c.mqtt(d.port, persistentOpts(5, shortId, true, 2));
          assert.equal(s2.connack.sessionPresent, false, `the 2 s session expired while the broker was down (${Date.now() - disconnectedAt} ms since its disconnect): Session Present must be 0`);
          await subscribeOk(s2.client, { [`${base}/mark-short`]: { qos: 1 } });
          const pub2 = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('ep2') });
          await publish(pub2.client, `${base}/short`, 'after', { qos: 1 });
          await publish(pub2.client, `${base}/mark-short`, 'mark', { qos: 1 });
          const before = await s2.inbox.waitForPayload('mark');
          assert.deepEqual(before.map((m) => m.payload.toString()), [], 'neither the expired session\'s queued message nor its subscription survive');
          for (const [v, id, t] of [[5, longId, 'long'], [4, v4Id, 'v4']] as const) {
            const x = await c.mqtt(d.port, persistentOpts(v, id, true, 3600));
            assert.equal(x.connack.sessionPresent, true, `v${v} ${t} session must survive the downtime`);
            await x.inbox.waitForPayload(`queued-${t}`);
          }
        });
      });

      it('v5 message expiry is counted across downtime: queued and retained messages that expired while down are gone, the others arrive with the interval reduced', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('mexp');
          const subId = uid('mxs');
          const s = await c.mqtt(d.port, persistentOpts(5, subId, false, 3600));
          await subscribeOk(s.client, { [`${base}/q`]: { qos: 1 } });
          await end(s.client);
          const pub = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('mxp') });
          await publish(pub.client, `${base}/q`, 'q-short', { qos: 1, properties: { messageExpiryInterval: 2 } });
          await publish(pub.client, `${base}/q`, 'q-long', { qos: 1, properties: { messageExpiryInterval: 600 } });
          await publish(pub.client, `${base}/r1`, 'r-short', { qos: 1, retain: true, properties: { messageExpiryInterval: 2 } });
          await publish(pub.client, `${base}/r2`, 'r-long', { qos: 1, retain: true, properties: { messageExpiryInterval: 600 } });
          await durableBarrier(c, d.port, `${base}/barrier`);
          const publishedAt = Date.now();
          await d.down(down);
          await waitSince(publishedAt, 3500);
          await d.start();
          const s2 = await c.mqtt(d.port, persistentOpts(5, subId, true, 3600));
          assert.equal(s2.connack.sessionPresent, true);
          await subscribeOk(s2.client, { [`${base}/mark`]: { qos: 1 } });
          const pub2 = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('mxp2') });
          await publish(pub2.client, `${base}/mark`, 'mark', { qos: 1 });
          const queued = await s2.inbox.waitForPayload('mark');
          assert.deepEqual(queued.map((m) => m.payload.toString()), ['q-long'], 'after the restart: the queued message whose 2 s expiry ran out while the broker was down is gone, the 600 s one arrives [MQTT-3.3.2-5]');
          const left = queued[0].packet.properties?.messageExpiryInterval;
          assert.ok(left !== undefined && left > 0 && left <= 597, `q-long: Message Expiry Interval must be 600 minus the >= 3.5 s it waited (downtime included), got ${left} [MQTT-3.3.2-6]`);
          const fresh = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('mxr') });
          await subscribeOk(fresh.client, { [`${base}/r1`]: { qos: 1 }, [`${base}/r2`]: { qos: 1 } });
          await fresh.inbox.waitFor(1, undefined).catch((err) => { throw new Error(`no retained message after the restart: ${(err as Error).message}`); });
          await subscribeOk(fresh.client, { [`${base}/mark`]: { qos: 1 } });
          await publish(pub2.client, `${base}/mark`, 'mark2', { qos: 1 });
          const ret = await fresh.inbox.waitForPayload('mark2');
          assert.deepEqual(ret.map((m) => m.payload.toString()), ['r-long'], 'after the restart: the retained message whose 2 s expiry ran out while the broker was down is gone, the 600 s one is kept');
          const rleft = ret[0].packet.properties?.messageExpiryInterval;
          assert.ok(rleft !== undefined && rleft > 0 && rleft <= 597, `r-long: Message Expiry Interval must be reduced by the time it waited (downtime included), got ${rleft}`);
        });
      });

      it('wills whose session (expiry 3 s, delay 60 s) or delay (2 s, expiry 1 h) ran out while the broker was down are published after the restart, exactly once', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('will');
          const subId = uid('wsub');
          const s = await c.mqtt(d.port, persistentOpts(5, subId, false, 3600));
          await subscribeOk(s.client, { [`${base}/+`]: { qos: 1 } });
          await end(s.client);
          // A: the session expires first (3 s < 60 s delay). B: the delay runs out, the session stays.
          const willers = [
            { name: 'A', id: uid('willA'), expiry: 3, delay: 60, topic: `${base}/a`, payload: 'will-A' },
            { name: 'B', id: uid('willB'), expiry: 3600, delay: 2, topic: `${base}/b`, payload: 'will-B' },
          ];
          for (const w of willers) {
            const { raw, connack } = await c.raw(d.port, 5, {
              clientId: w.id, clean: true, keepalive: 60,
              properties: { sessionExpiryInterval: w.expiry },
              will: { topic: w.topic, payload: Buffer.from(w.payload), qos: 1, retain: true, properties: { willDelayInterval: w.delay } },
            });
            assert.equal(connack.reasonCode ?? 0, 0);
            await raw.ping();
            raw.destroy(); // abnormal: no DISCONNECT
          }
          const lostAt = Date.now();
          // A round trip on another connection, so the broker has had a turn to see the closes.
          const probe = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('probe') });
          await publish(probe.client, `${base}/probe/x`, 'x', { qos: 1 });
          await durableBarrier(c, d.port, `${base}/barrier`);
          await d.down(down);
          const downAt = Date.now();
          await waitSince(downAt, 3500);
          await waitSince(lostAt, 3500);
          await d.start();
          const startedAt = Date.now();
          const s2 = await c.mqtt(d.port, persistentOpts(5, subId, true, 3600));
          assert.equal(s2.connack.sessionPresent, true, 'the will subscriber\'s 1 h session survives');
          for (const w of willers) {
            // Published at start (ran out while down), or at the latest when the time runs out
            // counted from the restart: bounded at 3 s + margin.
            const gotWill = await s2.inbox.waitForPayload(w.payload, 15000).then(() => true, () => false);
            if (!gotWill) {
              // Say what state the broker is in: retained will? the will client's session still there?
              const look = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wlook') });
              await subscribeOk(look.client, { [w.topic]: { qos: 1 } });
              const retained = await look.inbox.waitForPayload(w.payload, 3000).then(() => true, () => false);
              const wc = await c.mqtt(d.port, { protocolVersion: 5, clientId: w.id, clean: false, properties: { sessionExpiryInterval: 0 } });
              const state = retained
                ? 'the will WAS published (a new subscriber gets it retained) but never reached the persistent subscriber\'s restored session (published before that session/subscription was restored?)'
                : `no retained will exists, and the will client's session (expiry ${w.expiry} s) ${wc.connack.sessionPresent ? 'still exists' : 'is gone'}`;
              throw new Error(`will ${w.name} (delay ${w.delay} s, session expiry ${w.expiry} s) did not reach the offline persistent subscriber within 15 s of the restart (${down}, broker down ${startedAt - downAt} ms): ${state}`);
            }
          }
          const publishedAfter = Date.now() - startedAt;
          const fresh = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wnew') });
          await subscribeOk(fresh.client, { [`${base}/+`]: { qos: 1 } });
          for (const w of willers) {
            await fresh.inbox.waitForPayload(w.payload, 15000).catch((err) => { throw new Error(`a new subscriber got no retained will ${w.name}: ${(err as Error).message}`); });
          }
          // Exactly once: a marker on the same topics after them, nothing in between.
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wp') });
          for (const w of willers) {
            await publish(pub.client, w.topic, `after-${w.name}`, { qos: 1 });
            await s2.inbox.waitForPayload(`after-${w.name}`).catch((err) => { throw new Error(`the persistent subscriber got will ${w.name} but not a live QoS 1 message on the same topic after it (its restored subscription is not active?): ${(err as Error).message}`); });
            const n = s2.inbox.on(w.topic).filter((m) => m.payload.toString() === w.payload).length;
            assert.equal(n, 1, `will ${w.name} reached the persistent subscriber ${n} times (all wills in within ${publishedAfter} ms of the restart)`);
            assert.equal(fresh.inbox.on(w.topic).filter((m) => m.payload.toString() === w.payload).length, 1, `the new subscriber got will ${w.name} once`);
          }
          // A's session ended with its expiry; B's session (1 h) is still there.
          const a = await c.mqtt(d.port, persistentOpts(5, willers[0].id, true, 0));
          assert.equal(a.connack.sessionPresent, false, 'will A\'s session (expiry 3 s) must be gone after the restart');
          const b = await c.mqtt(d.port, persistentOpts(5, willers[1].id, true, 3600));
          assert.equal(b.connack.sessionPresent, true, 'will B\'s session (expiry 1 h) must survive: only its will delay ran out');
        });
      });
    });
  }
}
