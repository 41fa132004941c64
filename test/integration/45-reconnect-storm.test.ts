// 45 reconnect storm: 3,000 persistent sessions (half MQTT 3.1.1, half 5) spread over 2 workers,
// each with a QoS 1 subscription and 2 QoS 1 messages queued while offline; the broker is
// restarted on its data dir (SIGTERM) and every client reconnects at the same moment, as a fleet
// does after a broker restart. Every CONNACK says Session Present 1 [MQTT-3.2.2-2] and every
// queued message arrives, in order [MQTT-4.6.0-6]. Raw clients (test/helpers/raw-client.ts)
// keep 3,000 connections cheap enough for 2 slow cores.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mqttPacket from 'mqtt-packet';
import { uid, utopic } from '../helpers/ids';
import { RawClient, rawSession, connackCode } from '../helpers/raw-client';
import { withDeployment, persistentConnect } from '../helpers/persist';
import { mapLimit, waitUntil } from '../helpers/wait';

const SESSIONS = 3000;
const QUEUED = 2;
/** Connections opened at once while setting up (the storm itself opens all of them together). */
const SETUP_PARALLEL = 100;

interface Client { i: number; v: 4 | 5; id: string; topic: string }

describe('45 reconnect storm after a restart [workers=2]', () => {
  it(`${SESSIONS} persistent sessions reconnecting at once: every session present, every queued QoS 1 message delivered in order`, async () => {
    await withDeployment(2, {}, async (d) => {
      await d.start();
      const base = utopic('storm');
      const clients: Client[] = Array.from({ length: SESSIONS }, (_, i) => ({ i, v: (i % 2 === 0 ? 4 : 5) as 4 | 5, id: uid(`st${i}`), topic: `${base}/s/${i}` }));
      const open: RawClient[] = [];
      try {
        // Sessions with one QoS 1 subscription each, then offline.
        await mapLimit(clients, SETUP_PARALLEL, async (c) => {
          const s = await rawSession(d.port, c.v, persistentConnect(c.v, c.id, false));
          open.push(s);
          const ack = await s.subscribe(c.topic, 1, 1, 30000);
          assert.equal(ack.granted[0], 1, `SUBACK of ${c.id}`);
          s.send({ cmd: 'disconnect' });
          await s.closedP;
        });
        // Messages queued for every offline session; the publisher's PUBACKs say they are stored.
        const pub = await rawSession(d.port, 4, { clientId: uid('stpub') });
        open.push(pub);
        let mid = 0;
        for (const c of clients) {
          for (let k = 1; k <= QUEUED; k++) {
            pub.send({ cmd: 'publish', topic: c.topic, payload: Buffer.from(`${c.i}:${k}`), qos: 1, messageId: (mid++ % 65535) + 1, retain: false, dup: false });
          }
        }
        await waitUntil(() => pub.packets.filter((p) => p.cmd === 'puback').length === SESSIONS * QUEUED,
          () => `PUBACKs for the ${SESSIONS * QUEUED} queued messages (${pub.packets.filter((p) => p.cmd === 'puback').length} so far)`, 60000);
        pub.send({ cmd: 'disconnect' });
        await pub.closedP;

        await d.down('SIGTERM');
        await d.start();

        // The storm: every client connects and sends CONNECT at once.
        const back = await Promise.all(clients.map(async (c) => {
          const s = await RawClient.connect(d.port, c.v);
          s.autoAck = true;
          open.push(s);
          return { c, s, ack: s.handshake(persistentConnect(c.v, c.id, true), 60000) };
        }));
        const problems: string[] = [];
        await Promise.all(back.map(async ({ c, s, ack }) => {
          let connack: mqttPacket.IConnackPacket;
          try { connack = await ack; } catch (err) { problems.push(`${c.id} (v${c.v}): ${(err as Error).message}`); return; }
          if (connackCode(connack) !== 0) { problems.push(`${c.id} (v${c.v}): CONNACK refused ${connackCode(connack)}`); return; }
          if (!connack.sessionPresent) { problems.push(`${c.id} (v${c.v}): Session Present 0`); return; }
          try {
            await s.waitFor((p) => p.cmd === 'publish' && p.payload.toString() === `${c.i}:${QUEUED}`, `queued message ${c.i}:${QUEUED}`, 60000);
          } catch (err) { problems.push(`${c.id} (v${c.v}): ${(err as Error).message}`); return; }
          const got = s.publishes(c.topic).map((p) => p.payload.toString());
          const want = Array.from({ length: QUEUED }, (_, k) => `${c.i}:${k + 1}`);
          if (got.join(' ') !== want.join(' ')) problems.push(`${c.id} (v${c.v}): got ${got.join(' ')}, expected ${want.join(' ')} in order`);
        }));
        assert.deepEqual(problems.slice(0, 10), [], `${problems.length} of ${SESSIONS} sessions wrong after the reconnect storm`);
        // Every restored session is live: its connection is still open and answers a ping.
        const alive = back.filter(({ s }) => !s.closed).length;
        assert.equal(alive, SESSIONS, 'connections still open after the storm');
        await Promise.all(back.slice(0, 50).map(({ s }) => s.ping(30000)));
      } finally {
        for (const s of open) s.destroy();
      }
    });
  });
});
