// 20 restart: what a broker restarted on the same --data-dir (durability
// `process`) must give back, after a clean shutdown (SIGTERM) and after kill -9 (SIGKILL),
// with 1 and 3 workers, for MQTT 3.1.1 and 5 clients side by side:
//   - persistent sessions (v3.1.1 Clean Session 0, v5 Session Expiry > 0) and their subscriptions
//     (exact and wildcard filters, granted QoS, v5 subscription identifier, an unsubscribe):
//     Session Present 1 on reconnect, new publishes arrive without subscribing again;
//   - retained messages: set, replaced, cleared (with v5 properties);
//   - offline-queued QoS 1/2 messages: delivered after the restart, in order, QoS kept,
//     QoS 2 exactly once;
//   - in-flight messages (sent, never acknowledged) re-sent with DUP and the same packet id, in
//     order, before the queued ones; a QoS 2 message whose PUBREC reached the broker is finished
//     with PUBREL, not delivered again;
//   - inbound QoS 2 state: PUBLISH → PUBREC, restart, PUBREL → PUBCOMP, delivered exactly once;
//   - QoS 0 and clean sessions leave nothing behind.
// Every ack the broker gave before the kill is a promise the restarted broker must keep
// ("process" durability: acknowledged means in the WAL).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mqtt from 'mqtt';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { uid, utopic } from '../helpers/ids';
import { RawClient } from '../helpers/raw-client';
import { subscribeOk, publish, end } from '../helpers/clients';
import { withDeployment, sessionStore, persistentOpts, persistentConnect, Down, durableBarrier } from '../helpers/persist';

const WORKERS = [1, 3];
const DOWNS: Down[] = ['SIGTERM', 'SIGKILL'];
const V = [4, 5] as const;

function payloads(msgs: Array<{ payload: Buffer }>): string[] { return msgs.map((m) => m.payload.toString()); }

/** Raw SUBSCRIBE → SUBACK with the granted QoS checked. */
async function rawSubscribe(raw: RawClient, topic: string, qos: 0 | 1 | 2): Promise<void> {
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
  const ack = await raw.expect<Packet & { granted: number[] }>('suback');
  assert.deepEqual(ack.granted, [qos], `SUBACK for ${topic}`);
}

/**
 * Four persistent sessions (v3.1.1 / v5, offline / online at the restart), each with an exact and a
 * wildcard subscription (QoS 1, v5 with subscription identifier 7) and one subscription taken
 * back; then a restart. With `barrier`, an acknowledged QoS 1 message for a persistent session
 * comes between the last (UN)SUBACK and the kill; without it, the kill follows the last UNSUBACK.
 */
async function sessionsCase(workers: number, down: Down, barrier: boolean): Promise<void> {
  await withDeployment(workers, {}, async (d, c) => {
    await d.start();
    const base = utopic('sess');
    const subs: Array<{ v: 4 | 5; id: string; online: boolean; before: mqtt.MqttClient }> = [];
    for (const v of V) {
      for (const online of [false, true]) {
        const id = uid(`s${v}${online ? 'on' : 'off'}`);
        const a = await c.mqtt(d.port, persistentOpts(v, id, false));
        assert.equal(a.connack.sessionPresent, false, `${id}: fresh data dir, no session yet`);
        await subscribeOk(a.client, {
          [`${base}/${id}/exact`]: { qos: 1 },
          [`${base}/${id}/+/wild`]: { qos: 1 },
          [`${base}/${id}/gone`]: { qos: 1 },
        }, v === 5 ? { subscriptionIdentifier: 7 } : undefined);
        await new Promise<void>((resolve, reject) => a.client.unsubscribe(`${base}/${id}/gone`, (err) => (err ? reject(err) : resolve())));
        if (!online) await end(a.client);
        subs.push({ v, id, online, before: a.client });
      }
    }
    if (barrier) await durableBarrier(c, d.port, base);
    await d.restart(down);
    const pub = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('pub') });
    for (const s of subs) {
      const b = await c.mqtt(d.port, persistentOpts(s.v, s.id, true));
      assert.equal(b.connack.sessionPresent, true, `v${s.v} ${s.online ? 'online' : 'offline'} at the ${down}: Session Present must be 1 after the restart [MQTT-3.2.2-2]`);
      await publish(pub.client, `${base}/${s.id}/gone`, 'gone', { qos: 1 });
      await publish(pub.client, `${base}/${s.id}/exact`, 'exact', { qos: 1 });
      await publish(pub.client, `${base}/${s.id}/x/wild`, 'wild', { qos: 2 });
      const last = s === subs[subs.length - 1] ? ' — its SUBSCRIBE and UNSUBSCRIBE were acknowledged right before the broker went down: a SUBACK/UNSUBACK must not be lost' : '';
      const before = await b.inbox.waitForPayload('wild').catch((err) => { throw new Error(`v${s.v} ${s.online ? 'online' : 'offline'} session ${s.id}: subscription lost across the ${down}${last}: ${(err as Error).message}`); });
      const all = b.inbox.on();
      assert.deepEqual(payloads(all.slice(0, before.length + 1)), ['exact', 'wild'],
        `v${s.v} ${s.id}: after the restart the kept subscriptions (exact, wildcard) deliver and the one unsubscribed before the restart does not${last}`);
      const wild = all[before.length];
      assert.equal(wild.packet.qos, 1, `v${s.v}: granted QoS 1 kept across the restart (QoS 2 publish delivered at ${wild.packet.qos})`);
      if (s.v === 5) {
        const exact = all[0];
        assert.equal(exact.packet.properties?.subscriptionIdentifier, 7, `v5: subscription identifier kept across the restart (got ${JSON.stringify(exact.packet.properties)})`);
      }
    }
  });
}

/**
 * Retained messages set (QoS 1), replaced (with v5 properties), cleared, and set at QoS 2, then a
 * restart. With `barrier`, an acknowledged QoS 1 message for a persistent session comes between
 * the last retained PUBACK/PUBCOMP and the kill; without it the kill follows at once.
 */
async function retainedCase(workers: number, down: Down, barrier: boolean): Promise<void> {
  await withDeployment(workers, {}, async (d, c) => {
    await d.start();
    const base = utopic('ret');
    const p4 = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('rp4') });
    const p5 = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('rp5') });
    await publish(p4.client, `${base}/one`, 'one', { qos: 1, retain: true });
    await publish(p5.client, `${base}/two`, 'two-old', { qos: 1, retain: true });
    await publish(p5.client, `${base}/two`, 'two-new', { qos: 1, retain: true, properties: { contentType: 'text/x-two', userProperties: { k: 'v' } } });
    await publish(p4.client, `${base}/three`, 'three', { qos: 1, retain: true });
    await publish(p4.client, `${base}/three`, '', { qos: 1, retain: true });
    await publish(p4.client, `${base}/four`, 'four', { qos: 2, retain: true });
    if (barrier) await durableBarrier(c, d.port, base);
    await d.restart(down);
    const mk = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('mk') });
    const last = barrier ? '' : ' (the clear of three and the set of four were acknowledged right before the kill: an acknowledged QoS 1/2 retained publish must not be lost)';
    const expect = new Map([[`${base}/one`, ['one', 1]], [`${base}/two`, ['two-new', 1]], [`${base}/four`, ['four', 2]]]);
    for (const v of V) {
      const s = await c.mqtt(d.port, { protocolVersion: v, clientId: uid(`rs${v}`) });
      await subscribeOk(s.client, { [`${base}/#`]: { qos: 2 } });
      await s.inbox.waitFor(3, undefined).catch((err) => { throw new Error(`v${v}: retained messages after the ${down}${last}: ${(err as Error).message}`); });
      // A live marker: any further retained message would have been sent before it.
      await publish(mk.client, `${base}/zz-marker`, 'marker', { qos: 1 });
      const before = await s.inbox.waitForPayload('marker');
      const got = new Map(before.map((m) => [m.topic, m]));
      assert.deepEqual([...got.keys()].sort(), [...expect.keys()].sort(), `v${v}: retained topics after the restart (set, replaced, cleared)${last} — got ${before.map((m) => `${m.topic}=${m.payload}`).join(', ')}`);
      assert.equal(before.length, 3, `v${v}: each retained message exactly once`);
      for (const [topic, [payload, qos]] of expect) {
        const m = got.get(topic)!;
        assert.equal(m.payload.toString(), payload, `v${v}: ${topic} payload`);
        assert.equal(m.packet.retain, true, `v${v}: ${topic} delivered with RETAIN 1 on subscribe [MQTT-3.3.1-8]`);
        assert.equal(m.packet.qos, qos, `v${v}: ${topic} QoS (min of stored ${qos} and subscription 2)`);
      }
      if (v === 5) {
        const two = got.get(`${base}/two`)!;
        assert.equal(two.packet.properties?.contentType, 'text/x-two', 'v5: retained content type kept');
        assert.deepEqual({ ...two.packet.properties?.userProperties }, { k: 'v' }, 'v5: retained user properties kept');
      }
    }
  });
}

for (const workers of WORKERS) {
  for (const down of DOWNS) {
    describe(`20 restart after ${down} [workers=${workers}]`, () => {
      it('persistent sessions and their subscriptions survive: Session Present 1, new publishes arrive without subscribing again', async () => {
        await sessionsCase(workers, down, true);
      });

      if (down === 'SIGKILL') {
        it('a SUBSCRIBE and UNSUBSCRIBE acknowledged right before the kill survive it', async () => {
          await sessionsCase(workers, down, false);
        });
      }

      it('retained messages survive: set, replaced and cleared ones, with their v5 properties', async () => {
        await retainedCase(workers, down, true);
      });

      if (down === 'SIGKILL') {
        it('retained messages set and cleared (acknowledged QoS 1/2) right before the kill survive it', async () => {
          await retainedCase(workers, down, false);
        });
      }

      it('offline-queued QoS 1 and QoS 2 messages are delivered after the restart, in order, QoS kept, QoS 2 once', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('queue');
          const ids: Array<[4 | 5, string]> = [];
          for (const v of V) {
            const id = uid(`q${v}`);
            const a = await c.mqtt(d.port, persistentOpts(v, id, false));
            await subscribeOk(a.client, { [`${base}/q1`]: { qos: 1 }, [`${base}/q2`]: { qos: 2 } });
            await end(a.client);
            ids.push([v, id]);
          }
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('qp') });
          const N = 10;
          for (let i = 1; i <= N; i++) {
            await publish(pub.client, `${base}/q1`, `a${i}`, { qos: 1 });
            await publish(pub.client, `${base}/q2`, `b${i}`, { qos: 2 });
          }
          await d.restart(down);
          const pub2 = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('qp2') });
          for (const [v, id] of ids) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            assert.equal(b.connack.sessionPresent, true, `v${v}: Session Present after the restart`);
            await b.inbox.waitForPayload(`a${N}`).catch((err) => { throw new Error(`v${v}: queued QoS 1 after the ${down}: ${(err as Error).message}`); });
            await b.inbox.waitForPayload(`b${N}`).catch((err) => { throw new Error(`v${v}: queued QoS 2 after the ${down}: ${(err as Error).message}`); });
            await publish(pub2.client, `${base}/q1`, 'live', { qos: 1 });
            await b.inbox.waitForPayload('live');
            const q1 = b.inbox.on(`${base}/q1`).filter((m) => m.payload.toString() !== 'live');
            const q2 = b.inbox.on(`${base}/q2`);
            const firsts = [...new Set(payloads(q1))];
            assert.deepEqual(firsts, Array.from({ length: N }, (_, i) => `a${i + 1}`), `v${v}: queued QoS 1 after the restart, in order (first occurrences)`);
            assert.deepEqual(payloads(q2), Array.from({ length: N }, (_, i) => `b${i + 1}`), `v${v}: queued QoS 2 after the restart: each exactly once, in order`);
            assert.ok(q1.every((m) => m.packet.qos === 1) && q2.every((m) => m.packet.qos === 2), `v${v}: queued messages keep their QoS (q1: ${q1.map((m) => m.packet.qos)}, q2: ${q2.map((m) => m.packet.qos)})`);
            const dup = [...q1, ...q2].filter((m) => m.packet.dup).map((m) => m.payload.toString());
            assert.deepEqual(dup, [], `v${v}: messages never sent before carry DUP 0 (only re-deliveries are DUP) [MQTT-3.3.1-1]`);
          }
        });
      });

      it('restored messages, once delivered and acknowledged after the restart, do not come back after the next restart', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('twice');
          const ids: Array<[4 | 5, string]> = [];
          for (const v of V) {
            const id = uid(`tw${v}`);
            const a = await c.mqtt(d.port, persistentOpts(v, id, false));
            await subscribeOk(a.client, { [`${base}/q`]: { qos: 2 } });
            await end(a.client);
            ids.push([v, id]);
          }
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('twp') });
          for (let i = 1; i <= 4; i++) await publish(pub.client, `${base}/q`, `m${i}`, { qos: (i % 2 === 1 ? 1 : 2) as 1 | 2 });
          await d.restart(down);
          for (const [v, id] of ids) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            await b.inbox.waitForPayload('m4').catch((err) => { throw new Error(`v${v}: after the first restart: ${(err as Error).message}`); });
            await end(b.client); // every message acknowledged (PUBACK / PUBCOMP) before the DISCONNECT
          }
          await durableBarrier(c, d.port, base);
          await d.restart(down);
          const pub2 = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('twp2') });
          for (const [v, id] of ids) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            assert.equal(b.connack.sessionPresent, true, `v${v}: Session Present after the second restart`);
            await publish(pub2.client, `${base}/q`, `live-${v}`, { qos: 1 });
            const before = await b.inbox.waitForPayload(`live-${v}`);
            assert.deepEqual(payloads(before).filter((x) => /^m\d$/.test(x)), [], `v${v}: messages acknowledged after the first restart were delivered again after the second one`);
          }
        });
      });

      it('queue bounds apply to stored queues: --max-queued-messages 5 with drop-oldest keeps the newest 5 across the restart', async () => {
        await withDeployment(workers, { args: ['--max-queued-messages', '5', '--queue-policy', 'drop-oldest'] }, async (d, c) => {
          await d.start();
          const base = utopic('bound');
          const ids: Array<[4 | 5, string]> = [];
          for (const v of V) {
            const id = uid(`bd${v}`);
            const a = await c.mqtt(d.port, persistentOpts(v, id, false));
            await subscribeOk(a.client, { [`${base}/q`]: { qos: 1 } });
            await end(a.client);
            ids.push([v, id]);
          }
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('bdp') });
          for (let i = 1; i <= 12; i++) await publish(pub.client, `${base}/q`, `m${i}`, { qos: 1 });
          await d.restart(down);
          for (const [v, id] of ids) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            // Whatever survived arrives in order on q, and m12 is last.
            await b.inbox.waitForPayload('m12').catch((err) => { throw new Error(`v${v}: the newest queued message after the ${down}: ${(err as Error).message}`); });
            const got = [...new Set(payloads(b.inbox.on(`${base}/q`)))];
            assert.deepEqual(got, ['m8', 'm9', 'm10', 'm11', 'm12'], `v${v}: a stored queue bounded at 5 (drop-oldest) must hold the newest 5 after the restart; got ${got.join(', ')}`);
          }
        });
      });

      it('in-flight messages (sent, never acked) are re-sent with DUP and the same packet id, in order, then the queued ones; a PUBREC\'d QoS 2 gets PUBREL, not the message again', async () => {
        // --max-inflight 3: the subscriber holds three messages unacknowledged, three more stay queued.
        await withDeployment(workers, { args: ['--max-inflight', '3'] }, async (d, c) => {
          await d.start();
          const base = utopic('infl');
          const subs: Array<{ v: 4 | 5; id: string; topic: string; raw: RawClient; got: IPublishPacket[]; pubrecd: Set<number> }> = [];
          for (const v of V) {
            const id = uid(`i${v}`);
            const { raw, connack } = await c.raw(d.port, v, persistentConnect(v, id, false));
            assert.equal(connack.sessionPresent, false);
            const topic = `${base}/v${v}`;
            await rawSubscribe(raw, topic, 2);
            subs.push({ v, id, topic, raw, got: [], pubrecd: new Set() });
          }
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('ip') });
          const names = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
          const qosOf = (n: string) => (Number(n.slice(1)) % 2 === 1 ? 1 : 2) as 1 | 2;
          for (const s of subs) for (const n of names) await publish(pub.client, s.topic, n, { qos: qosOf(n) });
          for (const s of subs) {
            // The window of 3 fills: m1, m2, m3. m2 (QoS 2) gets a PUBREC; nothing else is acked.
            for (let i = 0; i < 3; i++) {
              const p = await s.raw.nextMatching<IPublishPacket>((x) => x.cmd === 'publish', `v${s.v}: in-flight PUBLISH #${i + 1} before the restart`);
              s.got.push(p);
            }
            assert.deepEqual(s.got.map((p) => p.payload.toString()), ['m1', 'm2', 'm3'], `v${s.v}: first three messages, in order`);
            const m2 = s.got[1];
            s.raw.send({ cmd: 'pubrec', messageId: m2.messageId! });
            s.pubrecd.add(m2.messageId!);
            await s.raw.nextMatching((x) => x.cmd === 'pubrel' && (x as { messageId?: number }).messageId === m2.messageId, `v${s.v}: PUBREL for m2 before the restart`);
            const extra = await s.raw.ping();
            assert.deepEqual(extra.map((p) => p.cmd), [], `v${s.v}: nothing beyond the window of 3 in flight (broker sent ${extra.map((p) => p.cmd)})`);
          }
          await d.restart(down);
          for (const s of subs) {
            s.raw.destroy();
            const { raw, connack } = await c.raw(d.port, s.v, persistentConnect(s.v, s.id, true));
            assert.equal(connack.sessionPresent, true, `v${s.v}: Session Present after the restart`);
            // Play a correct client now: ack everything, finish QoS 2 flows, until m6 has arrived.
            const after: Packet[] = [];
            const pubs: IPublishPacket[] = [];
            const pending = new Set(s.pubrecd); // our QoS 2 receive state: PUBREC sent, PUBREL awaited
            const deadline = Date.now() + 15000;
            while (!pubs.some((p) => p.payload.toString() === 'm6') || pending.size > 0) {
              const p = await raw.next(`v${s.v}: redelivery after the ${down} (so far: ${after.map((x) => `${x.cmd}${x.cmd === 'publish' ? `(${(x as IPublishPacket).payload}${(x as IPublishPacket).dup ? ',dup' : ''})` : ''}`).join(' ')})`, Math.max(1, deadline - Date.now()));
              after.push(p);
              if (p.cmd === 'publish') {
                pubs.push(p);
                if (p.qos === 1) raw.send({ cmd: 'puback', messageId: p.messageId! });
                if (p.qos === 2) { pending.add(p.messageId!); raw.send({ cmd: 'pubrec', messageId: p.messageId! }); }
              } else if (p.cmd === 'pubrel') {
                pending.delete(p.messageId!);
                raw.send({ cmd: 'pubcomp', messageId: p.messageId! });
              }
            }
            const tail = await raw.ping();
            assert.deepEqual(tail.map((p) => p.cmd), [], `v${s.v}: nothing more after m6 (got ${tail.map((p) => p.cmd)})`);
            const m1 = s.got[0];
            const m2 = s.got[1];
            const m3 = s.got[2];
            const desc = pubs.map((p) => `${p.payload}${p.dup ? '(dup)' : ''}#${p.messageId}`).join(' ');
            // m2 had its PUBREC: finished with PUBREL. After a SIGKILL the broker may not have
            // stored the PUBREC yet and re-send the PUBLISH (DUP, same id) instead: still one
            // delivery, as this client holds the id until PUBREL.
            const m2again = pubs.filter((p) => p.payload.toString() === 'm2');
            const m2rel = after.some((p) => p.cmd === 'pubrel' && (p as { messageId?: number }).messageId === m2.messageId);
            if (down === 'SIGTERM' || m2again.length === 0) {
              assert.ok(m2rel, `v${s.v}: PUBREL for m2 (packet id ${m2.messageId}) re-sent after the restart [MQTT-4.4.0-1]; got ${after.map((p) => p.cmd).join(' ')}`);
              assert.equal(m2again.length, 0, `v${s.v}: m2 got PUBREC before the restart, so it must not be sent again (got: ${desc})`);
            } else {
              assert.ok(m2again.length === 1 && m2again[0].dup && m2again[0].messageId === m2.messageId, `v${s.v}: m2 re-sent after the kill must be DUP with packet id ${m2.messageId} (got: ${desc})`);
            }
            const others = pubs.filter((p) => p.payload.toString() !== 'm2');
            assert.deepEqual(others.map((p) => p.payload.toString()), ['m1', 'm3', 'm4', 'm5', 'm6'], `v${s.v}: after the restart: in-flight m1, m3 re-sent first, then the queued m4..m6, in order (got: ${desc})`);
            for (const [p, orig] of [[others[0], m1], [others[1], m3]] as const) {
              assert.equal(p.dup, true, `v${s.v}: re-sent ${orig.payload} must have DUP 1 [MQTT-3.3.1-1] (got: ${desc})`);
              assert.equal(p.messageId, orig.messageId, `v${s.v}: re-sent ${orig.payload} keeps its packet id ${orig.messageId} [MQTT-4.4.0-1] (got: ${desc})`);
              assert.equal(p.qos, orig.qos, `v${s.v}: re-sent ${orig.payload} keeps its QoS`);
            }
            for (const p of others.slice(2)) assert.equal(p.dup, false, `v${s.v}: ${p.payload} was never sent before the restart: DUP 0 (got: ${desc})`);
            for (const p of others) assert.equal(p.qos, qosOf(p.payload.toString()), `v${s.v}: ${p.payload} QoS`);
          }
        });
      });

      it('inbound QoS 2: PUBLISH → PUBREC, restart, PUBREL → PUBCOMP; the message is delivered exactly once', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('in2');
          // One subscriber online during the restart (its mqtt.js QoS 2 receive state is carried to
          // the next connection, as a persistent client would), one offline.
          const onlineStore = sessionStore();
          const onId = uid('in2on');
          const offId = uid('in2off');
          const on1 = await c.mqtt(d.port, { ...persistentOpts(5, onId, false), incomingStore: onlineStore });
          await subscribeOk(on1.client, { [`${base}/#`]: { qos: 2 } });
          const off1 = await c.mqtt(d.port, persistentOpts(4, offId, false));
          await subscribeOk(off1.client, { [`${base}/#`]: { qos: 2 } });
          await end(off1.client);
          const pubs: Array<{ v: 4 | 5; id: string }> = [];
          for (const v of V) {
            const id = uid(`in2p${v}`);
            const { raw } = await c.raw(d.port, v, persistentConnect(v, id, false));
            raw.send({ cmd: 'publish', topic: `${base}/v${v}`, payload: Buffer.from(`once-v${v}`), qos: 2, messageId: 42, retain: false, dup: false });
            const rec = await raw.expect<Packet & { messageId: number; reasonCode?: number }>('pubrec');
            assert.equal(rec.messageId, 42);
            assert.ok((rec.reasonCode ?? 0) < 0x80, `v${v}: PUBREC reason 0x${(rec.reasonCode ?? 0).toString(16)}`);
            pubs.push({ v, id });
          }
          await d.restart(down);
          for (const p of pubs) {
            const { raw, connack } = await c.raw(d.port, p.v, persistentConnect(p.v, p.id, true));
            assert.equal(connack.sessionPresent, true, `v${p.v} publisher: Session Present after the restart`);
            raw.send({ cmd: 'pubrel', messageId: 42 });
            const comp = await raw.expect<Packet & { messageId: number; reasonCode?: number }>('pubcomp');
            assert.equal(comp.messageId, 42);
            assert.equal(comp.reasonCode ?? 0, 0, `v${p.v}: PUBCOMP reason 0x${(comp.reasonCode ?? 0).toString(16)} (0x92 = the broker forgot the packet id across the restart)`);
            raw.send({ cmd: 'publish', topic: `${base}/v${p.v}`, payload: Buffer.from(`end-v${p.v}`), qos: 2, messageId: 43, retain: false, dup: false });
            await raw.expect('pubrec');
            raw.send({ cmd: 'pubrel', messageId: 43 });
            await raw.expect('pubcomp');
          }
          const on2 = await c.mqtt(d.port, { ...persistentOpts(5, onId, true), incomingStore: onlineStore });
          const off2 = await c.mqtt(d.port, persistentOpts(4, offId, true));
          assert.equal(on2.connack.sessionPresent, true);
          assert.equal(off2.connack.sessionPresent, true);
          for (const [name, inboxes] of [['online at the restart', [on1.inbox, on2.inbox]], ['offline', [off2.inbox]]] as const) {
            for (const v of V) await inboxes[inboxes.length - 1].waitForPayload(`end-v${v}`).catch((err) => { throw new Error(`${name} subscriber: ${(err as Error).message}`); });
            const all = inboxes.flatMap((ib) => payloads(ib.on()));
            for (const v of V) {
              const n = all.filter((x) => x === `once-v${v}`).length;
              assert.equal(n, 1, `${name} subscriber: the v${v} QoS 2 message completed across the restart arrived ${n} times, expected exactly once (got ${all.join(', ')})`);
              assert.ok(all.indexOf(`once-v${v}`) < all.indexOf(`end-v${v}`), `${name} subscriber: order (got ${all.join(', ')})`);
            }
          }
        });
      });

      it('QoS 0 and clean sessions leave nothing behind: no session, no subscription, no queued QoS 0 after the restart', async () => {
        await withDeployment(workers, {}, async (d, c) => {
          await d.start();
          const base = utopic('clean');
          const cleanIds: Array<[4 | 5, string]> = [];
          for (const v of V) {
            const id = uid(`cl${v}`);
            const a = await c.mqtt(d.port, { protocolVersion: v, clientId: id, clean: true });
            await subscribeOk(a.client, { [`${base}/clean`]: { qos: 1 } });
            if (v === 5) await end(a.client); // v4 stays connected through the restart
            cleanIds.push([v, id]);
          }
          const persIds: Array<[4 | 5, string]> = [];
          for (const v of V) {
            const id = uid(`pq${v}`);
            const a = await c.mqtt(d.port, persistentOpts(v, id, false));
            await subscribeOk(a.client, { [`${base}/p`]: { qos: 1 } });
            await end(a.client);
            persIds.push([v, id]);
          }
          const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('cp') });
          await publish(pub.client, `${base}/p`, 'z1', { qos: 0 });
          await publish(pub.client, `${base}/p`, 'o1', { qos: 1 });
          await publish(pub.client, `${base}/p`, 'z2', { qos: 0 });
          await publish(pub.client, `${base}/p`, 'o2', { qos: 1 });
          await publish(pub.client, `${base}/clean`, 'c1', { qos: 1 });
          await d.restart(down);
          const pub2 = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('cp2') });
          for (const [v, id] of cleanIds) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            assert.equal(b.connack.sessionPresent, false, `v${v}: a clean session must not exist after the restart (Session Present 1)`);
            await subscribeOk(b.client, { [`${base}/mark-${id}`]: { qos: 1 } });
            await publish(pub2.client, `${base}/clean`, 'c2', { qos: 1 });
            await publish(pub2.client, `${base}/mark-${id}`, 'mark', { qos: 1 });
            const before = await b.inbox.waitForPayload('mark');
            assert.deepEqual(payloads(before), [], `v${v}: nothing of the clean session (its subscription, c1) after the restart`);
          }
          for (const [v, id] of persIds) {
            const b = await c.mqtt(d.port, persistentOpts(v, id, true));
            assert.equal(b.connack.sessionPresent, true, `v${v}: persistent session present`);
            await publish(pub2.client, `${base}/p`, 'live', { qos: 1 });
            const before = await b.inbox.waitForPayload('live');
            const got = payloads(before);
            assert.deepEqual(got.filter((x) => x.startsWith('z')), [], `v${v}: QoS 0 messages queued before the restart must not survive it (never on disk); got ${got.join(', ')}`);
            assert.deepEqual([...new Set(got)], ['o1', 'o2'], `v${v}: the queued QoS 1 messages survive, in order; got ${got.join(', ')}`);
          }
        });
      });
    });
  }
}
