// 23 restart: time counted across downtime (issue 4 "Restart": "sessions (expiry counted across
// downtime)", "wills (a will whose delay or session expired while the broker was down is
// published at start)"), with 1 and 3 workers, restart by SIGTERM and by SIGKILL:
//   - a v5 session with Session Expiry 2 s whose broker is down for more than that is gone after
//     the restart (Session Present 0, its queued message gone); a 1 h v5 session and a 3.1.1
//     persistent session are still there;
//   - a v5 client with Will Delay 60 s and Session Expiry 3 s loses its connection (socket
//     destroyed, no DISCONNECT), the broker goes down for more than 3 s: the will (QoS 1,
//     retained) is published after the restart, exactly once, to a persistent subscriber that
//     was offline and to a new subscriber (retained or live).
// These are the only tests here that must wait for a fixed time: the expiry itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { uid, utopic, delay } from '../helpers/mqtt-helpers';
import { withDeployment, persistentOpts, subscribeOk, publishOk, endOk, rawPing, Down, durableBarrier } from '../helpers/persist-helpers';

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
          await Promise.all([endOk(l.client), endOk(f.client)]);
          await endOk(s.client);
          const disconnectedAt = Date.now();
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('ep') });
          for (const t of ['short', 'long', 'v4']) await publishOk(pub.client, `${base}/${t}`, `queued-${t}`, { qos: 1 });
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
          await publishOk(pub2.client, `${base}/short`, 'after', { qos: 1 });
          await publishOk(pub2.client, `${base}/mark-short`, 'mark', { qos: 1 });
          const before = await s2.inbox.waitForPayload('mark');
          assert.deepEqual(before.map((m) => m.payload.toString()), [], 'neither the expired session\'s queued message nor its subscription survive');
          for (const [v, id, t] of [[5, longId, 'long'], [4, v4Id, 'v4']] as const) {
            const x = await c.mqtt(d.port, persistentOpts(v, id, true, 3600));
            assert.equal(x.connack.sessionPresent, true, `v${v} ${t} session must survive the downtime`);
            await x.inbox.waitForPayload(`queued-${t}`);
          }
        });
      });

      it('will with delay 60 s and session expiry 3 s, connection lost, broker down > 3 s: the will is published after the restart, exactly once', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('will');
          const willTopic = `${base}/w`;
          const subId = uid('wsub');
          const s = await c.mqtt(d.port, persistentOpts(5, subId, false, 3600));
          await subscribeOk(s.client, { [willTopic]: { qos: 1 } });
          await endOk(s.client);
          const willerId = uid('willer');
          const { raw, connack } = await c.raw(d.port, 5, {
            clientId: willerId, clean: true, keepalive: 60,
            properties: { sessionExpiryInterval: 3 },
            will: { topic: willTopic, payload: Buffer.from('will-payload'), qos: 1, retain: true, properties: { willDelayInterval: 60 } },
          });
          assert.equal(connack.reasonCode ?? 0, 0);
          await rawPing(raw);
          raw.destroy(); // abnormal: no DISCONNECT
          const lostAt = Date.now();
          // A round trip on another connection, so the broker has had a turn to see the close.
          const probe = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('probe') });
          await publishOk(probe.client, `${base}/probe`, 'x', { qos: 1 });
          await durableBarrier(c, d.port, base);
          await d.down(down);
          const downAt = Date.now();
          await waitSince(downAt, 3500);
          await waitSince(lostAt, 3500);
          await d.start();
          const startedAt = Date.now();
          const s2 = await c.mqtt(d.port, persistentOpts(5, subId, true, 3600));
          assert.equal(s2.connack.sessionPresent, true, 'the will subscriber\'s 1 h session survives');
          // Published at start (expired while down), or at the latest when the session expires
          // counted from the restart: bounded at 3 s + margin.
          const gotWill = await s2.inbox.waitForPayload('will-payload', 15000).then(() => true, () => false);
          if (!gotWill) {
            // Say what state the broker is in: retained will? the will client's session still there?
            const look = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wlook') });
            await subscribeOk(look.client, { [willTopic]: { qos: 1 } });
            const retained = await look.inbox.waitForPayload('will-payload', 3000).then(() => true, () => false);
            const w = await c.mqtt(d.port, { protocolVersion: 5, clientId: willerId, clean: false, properties: { sessionExpiryInterval: 0 } });
            const state = retained
              ? 'the will WAS published (a new subscriber gets it retained) but never reached the persistent subscriber\'s restored session (published before that session/subscription was restored?)'
              : `no retained will exists, and the will client's session (expiry 3 s) ${w.connack.sessionPresent ? 'still exists: it never expired' : 'is gone: it expired without publishing its will'}`;
            throw new Error(`the will did not reach the offline persistent subscriber within 15 s of the restart (${down}, broker down ${startedAt - downAt} ms): ${state}`);
          }
          const publishedAfter = Date.now() - startedAt;
          const fresh = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wnew') });
          await subscribeOk(fresh.client, { [willTopic]: { qos: 1 } });
          await fresh.inbox.waitForPayload('will-payload', 15000).catch((err) => { throw new Error(`a new subscriber got no retained will: ${(err as Error).message}`); });
          // Exactly once: a marker on the same topic after it, nothing in between.
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('wp') });
          await publishOk(pub.client, willTopic, 'after', { qos: 1 });
          await s2.inbox.waitForPayload('after').catch((err) => { throw new Error(`the persistent subscriber got the will but not a live QoS 1 message on the same topic after it (its restored subscription is not active?): ${(err as Error).message}`); });
          const wills = s2.inbox.on(willTopic).filter((m) => m.payload.toString() === 'will-payload');
          assert.equal(wills.length, 1, `the will reached the persistent subscriber ${wills.length} times (published ${publishedAfter} ms after the restart)`);
          assert.equal(fresh.inbox.on(willTopic).filter((m) => m.payload.toString() === 'will-payload').length, 1, 'the new subscriber got the will once');
        });
      });
    });
  }
}
