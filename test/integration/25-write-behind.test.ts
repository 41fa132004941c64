// 25 write-behind for QoS 1 to persistent sessions (workers/README.md, "Persistence and write-behind"):
//   - the message is routed at once and its store write waits --commit-linger-ms; a message
//     every persistent subscriber acknowledged meanwhile is never written (store/held/unwritten)
//     and nothing of it comes back after kill -9;
//   - a PUBACK given for a message whose subscriber has not acknowledged it means the message
//     is in the store: after kill -9 it is redelivered with DUP and its packet id [MQTT-4.4.0-1];
//   - a message for an offline session is written without waiting the linger (store/held/forced);
//   - PUBACKs keep the order of their PUBLISHes while one waits for the store [MQTT-4.6.0-2].
// The linger is long here (1 s) so that "within the linger" holds on a slow machine too; no
// assertion depends on how long anything took.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt-packet';
import * as mqtt from 'mqtt';
import { waitUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { RawClient } from '../helpers/raw-client';
import { Clients, subscribeOk, publish, end } from '../helpers/clients';
import { withDeployment, persistentOpts, persistentConnect } from '../helpers/persist';

const LINGER = ['--commit-linger-ms', '1000', '--sys-interval', '1'];

/** A raw persistent session (clean start) subscribed at QoS 1 to `filters`, SUBACK received. */
async function persistentRawSubscriber(c: Clients, port: number, v: 4 | 5, id: string, filters: string[]): Promise<RawClient> {
  const { raw } = await c.raw(port, v, persistentConnect(v, id, false));
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) });
  await raw.expect('suback');
  return raw;
}

/** Latest values of $SYS/broker/store/held/... (retained, republished every second). */
async function heldCounters(c: Clients, port: number): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  const s = await c.mqtt(port, { protocolVersion: 4, clientId: uid('sys') });
  s.client.on('message', (topic, payload) => values.set(topic.replace('$SYS/broker/', ''), Number(payload.toString())));
  await subscribeOk(s.client, { '$SYS/broker/store/#': { qos: 0 } });
  return values;
}

/** Waits until the broker's $SYS uptime has advanced by `n` seconds: a lower bound, not a sleep. */
async function brokerSecondsPass(c: Clients, port: number, n: number): Promise<void> {
  const seen: number[] = [];
  const s = await c.mqtt(port, { protocolVersion: 4, clientId: uid('uptime') });
  s.client.on('message', (_t, payload) => seen.push(parseInt(payload.toString(), 10)));
  await subscribeOk(s.client, { '$SYS/broker/uptime': { qos: 0 } });
  await waitUntil(() => seen.length > 0 && seen[seen.length - 1] - seen[0] >= n, `$SYS uptime to advance ${n} s (seen ${seen.join(', ')})`, 15000);
  await end(s.client);
}

async function counterAtLeast(values: Map<string, number>, name: string, n: number): Promise<void> {
  await waitUntil(() => (values.get(name) ?? -1) >= n, `$SYS/broker/${name} >= ${n} (now ${values.get(name)})`, 15000);
}

// Scenarios run with the publisher and the persistent subscriber on one worker and on two
// (sequential connections are placed least-loaded: with two workers they land on different
// ones). `counters` are $SYS/broker/store/... counters the scenario must have moved.

/** Messages the subscriber acknowledged within the linger are never written; nothing comes back after kill -9. */
async function neverWritten(workers: number, v: 4 | 5, tag: string, counters: string[]): Promise<void> {
  await withDeployment(workers, { args: LINGER }, async (d, c) => {
    await d.start();
    const base = utopic(tag);
    const id = uid(`${tag}${v}`);
    const sub = await c.mqtt(d.port, persistentOpts(v, id, false));
    await subscribeOk(sub.client, { [`${base}/a`]: { qos: 1 } });
    const pub = await c.mqtt(d.port, { protocolVersion: v, clientId: uid(`${tag}p`) });
    // One at a time: each PUBACK comes once the subscriber's (automatic) PUBACK cancelled the write.
    for (let i = 0; i < 20; i++) await publish(pub.client, `${base}/a`, `m${i}`, { qos: 1 });
    await sub.inbox.waitFor(20, `${base}/a`);
    const sys = await heldCounters(c, d.port);
    for (const name of counters) await counterAtLeast(sys, name, 20);

    await d.restart('SIGKILL');
    const again = await c.mqtt(d.port, persistentOpts(v, id, true));
    assert.equal(again.connack.sessionPresent, true, 'the session itself was stored');
    const pub2 = await c.mqtt(d.port, { protocolVersion: v, clientId: uid(`${tag}p2`) });
    await publish(pub2.client, `${base}/a`, 'marker', { qos: 1 });
    const before = await again.inbox.waitForPayload('marker');
    assert.deepEqual(before.map((m) => m.payload.toString()), [], 'delivered and acknowledged messages must not be redelivered after the restart');
  });
}

/** A PUBACK for a message the subscriber has not acknowledged means it is stored: redelivered after kill -9 with DUP and its packet id. */
async function pubackMeansStored(workers: number, v: 4 | 5, tag: string, counter: string): Promise<void> {
  await withDeployment(workers, { args: LINGER }, async (d, c) => {
    await d.start();
    const base = utopic(tag);
    const id = uid(tag);
    const raw = await persistentRawSubscriber(c, d.port, v, id, [`${base}/k`]);
    const pub = await c.mqtt(d.port, { protocolVersion: v, clientId: uid(`${tag}p`) });
    const acked = publish(pub.client, `${base}/k`, 'kept', { qos: 1 });
    const first = await raw.expect<IPublishPacket>('publish');
    assert.equal(first.payload.toString(), 'kept');
    assert.equal(first.dup, false);
    await acked; // the subscriber never acknowledges: this PUBACK followed the store write
    const sys = await heldCounters(c, d.port);
    await counterAtLeast(sys, counter, 1);

    await d.restart('SIGKILL');
    const again = await c.raw(d.port, v, persistentConnect(v, id, true));
    assert.equal(again.connack.sessionPresent, true);
    const p = await again.raw.expect<IPublishPacket>('publish');
    assert.equal(p.payload.toString(), 'kept');
    assert.equal(p.dup, true, 'a re-delivery carries DUP 1 [MQTT-3.3.1-1]');
    assert.equal(p.messageId, first.messageId, 'and its original packet id [MQTT-4.4.0-1]');
  });
}

/**
 * A clean stop (SIGTERM) within the linger writes held messages: one still in flight is
 * redelivered after the restart. No counter check here: waiting for one would outwait the linger.
 */
async function sigtermWritesHeld(workers: number, tag: string): Promise<void> {
  await withDeployment(workers, { args: LINGER }, async (d, c) => {
    await d.start();
    const base = utopic(tag);
    const id = uid(tag);
    const raw = await persistentRawSubscriber(c, d.port, 4, id, [`${base}/t`]);
    const { raw: pub } = await c.raw(d.port, 4, { clientId: uid(`${tag}p`), clean: true });
    pub.send({ cmd: 'publish', topic: `${base}/t`, payload: Buffer.from('in-flight'), qos: 1, messageId: 1, retain: false, dup: false });
    const first = await raw.expect<IPublishPacket>('publish'); // never acknowledged
    await d.restart('SIGTERM');
    const again = await c.raw(d.port, 4, persistentConnect(4, id, true));
    const p = await again.raw.expect<IPublishPacket>('publish');
    assert.equal(p.payload.toString(), 'in-flight');
    assert.equal(p.messageId, first.messageId);
  });
}

describe('25 write-behind [workers=1]', () => {
  for (const v of [4, 5] as const) {
    it(`v${v}: messages acknowledged by the online subscriber within the linger are never written; nothing comes back after kill -9`, async () => {
      await neverWritten(1, v, 'wb', ['store/held', 'store/held/unwritten']);
    });
  }

  it('a PUBACK for a message the subscriber has not acknowledged means it is stored: redelivered after kill -9 with DUP and its packet id', async () => {
    await pubackMeansStored(1, 4, 'wbk', 'store/held');
  });

  it('a clean stop (SIGTERM) writes held messages: one still in flight is redelivered after the restart', async () => {
    await sigtermWritesHeld(1, 'wbt');
  });

  it('a message for an offline persistent session is written without waiting the linger, and survives kill -9', async () => {
    await withDeployment(1, { args: LINGER }, async (d, c) => {
      await d.start();
      const base = utopic('wbo');
      const id = uid('wbo');
      const sub = await c.mqtt(d.port, persistentOpts(5, id, false));
      await subscribeOk(sub.client, { [`${base}/o`]: { qos: 1 } });
      await end(sub.client);
      const pub = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('wbop') });
      await publish(pub.client, `${base}/o`, 'offline', { qos: 1 });
      const sys = await heldCounters(c, d.port);
      await counterAtLeast(sys, 'store/held/forced', 1);

      await d.restart('SIGKILL');
      const again = await c.mqtt(d.port, persistentOpts(5, id, true));
      await again.inbox.waitForPayload('offline');
    });
  });

  it('a session that gets a message twice (shared and own subscription): acknowledging one copy does not settle the message; it survives kill -9', async () => {
    await withDeployment(1, { args: LINGER }, async (d, c) => {
      await d.start();
      const base = utopic('wbs');
      const id = uid('wbs');
      const raw = await persistentRawSubscriber(c, d.port, 5, id, [`${base}/t`, `$share/g/${base}/t`]);
      // It publishes to itself, so publisher and subscriber share a worker.
      raw.send({ cmd: 'publish', topic: `${base}/t`, payload: Buffer.from('twice'), qos: 1, messageId: 10, retain: false, dup: false });
      const copies: IPublishPacket[] = [];
      while (copies.length < 2) copies.push(await raw.nextMatching<IPublishPacket>((p) => p.cmd === 'publish', 'two copies of the message'));
      raw.send({ cmd: 'puback', messageId: copies[0].messageId! });
      // The PUBACK for its own PUBLISH promises the message is stored for the session.
      await raw.nextMatching((p) => p.cmd === 'puback' && (p as { messageId?: number }).messageId === 10, 'PUBACK for the PUBLISH');
      await d.restart('SIGKILL');
      const again = await c.raw(d.port, 5, persistentConnect(5, id, true));
      assert.equal(again.connack.sessionPresent, true);
      // The message comes again (as the in-flight copy, or as the queued slot both copies share
      // when the kill came before their in-flight records were written): at least once.
      const p = await again.raw.nextMatching<IPublishPacket>((x) => x.cmd === 'publish', 'the never-acknowledged copy re-sent');
      assert.equal(p.payload.toString(), 'twice');
    });
  });

  it('PUBACKs keep the order of their PUBLISHes while the first waits for the store [MQTT-4.6.0-2]', async () => {
    await withDeployment(1, { args: LINGER }, async (d, c) => {
      await d.start();
      const base = utopic('wbr');
      // An online persistent subscriber that never acknowledges: the first PUBACK waits for the write.
      await persistentRawSubscriber(c, d.port, 4, uid('wbrs'), [`${base}/held`]);
      const { raw: pub } = await c.raw(d.port, 4, { clientId: uid('wbrp'), clean: true });
      pub.send({ cmd: 'publish', topic: `${base}/held`, payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false });
      pub.send({ cmd: 'publish', topic: `${base}/nobody`, payload: Buffer.from('2'), qos: 1, messageId: 2, retain: false, dup: false });
      pub.send({ cmd: 'publish', topic: `${base}/held`, payload: Buffer.from('3'), qos: 1, messageId: 3, retain: false, dup: false });
      const order: number[] = [];
      for (let i = 0; i < 3; i++) order.push((await pub.expect<{ cmd: 'puback'; messageId: number }>('puback')).messageId);
      assert.deepEqual(order, [1, 2, 3]);
    });
  });
});

describe('25 write-behind [workers=3]', () => {
  it('a clean-start takeover on another worker while a message to the old session is held: only the new session survives kill -9', async () => {
    await withDeployment(3, { args: LINGER }, async (d, c) => {
      await d.start();
      const base = utopic('wbc');
      const id = uid('wbc');
      // Old session: online, never acknowledges, so the message stays held (linger 1 s) with the
      // old session's delete queued behind it when the takeover comes.
      const old = await persistentRawSubscriber(c, d.port, 5, id, [`${base}/old`]);
      // It publishes to itself: publisher and subscriber on one worker, so the message is held.
      old.send({ cmd: 'publish', topic: `${base}/old`, payload: Buffer.from('held'), qos: 1, messageId: 2, retain: false, dup: false });
      await old.nextMatching((p) => p.cmd === 'publish', 'the held message delivered to the old session');
      // Clean start: the old session ends; the new one (expiry 3600 s) must be the one stored.
      const fresh = await c.mqtt(d.port, persistentOpts(5, id, false));
      assert.equal(fresh.connack.sessionPresent, false);
      await subscribeOk(fresh.client, { [`${base}/new`]: { qos: 1 } });
      await end(fresh.client);
      // Let the held message's linger run out (its write is posted then), by the broker's clock.
      await brokerSecondsPass(c, d.port, 2);
      await d.restart('SIGKILL');
      const again = await c.mqtt(d.port, persistentOpts(5, id, true));
      assert.equal(again.connack.sessionPresent, true, 'the new session survives');
      const pub2 = await c.mqtt(d.port, { protocolVersion: 5, clientId: uid('wbcp2') });
      await publish(pub2.client, `${base}/new`, 'to-new', { qos: 1 });
      const before = await again.inbox.waitForPayload('to-new');
      assert.deepEqual(before.map((m) => m.payload.toString()), [],
        'the old session\'s held message must not turn up in the new one: the old owner\'s store ops (held ones too) land before the new owner\'s');
    });
  });

  it('publishers and persistent subscribers on different workers: acknowledged messages survive kill -9, in order', async () => {
    await withDeployment(3, { args: LINGER }, async (d, c) => {
      await d.start();
      const base = utopic('wb3');
      const ids = [uid('wb3a'), uid('wb3b'), uid('wb3c')];
      for (const id of ids) {
        const s = await c.mqtt(d.port, persistentOpts(4, id, false));
        await subscribeOk(s.client, { [`${base}/#`]: { qos: 1 } });
        await end(s.client);
      }
      const pubs: mqtt.MqttClient[] = [];
      for (let p = 0; p < 3; p++) pubs.push((await c.mqtt(d.port, { protocolVersion: 4, clientId: uid(`wb3p${p}`) })).client);
      await Promise.all(pubs.map(async (client, p) => {
        for (let i = 0; i < 30; i++) await publish(client, `${base}/p${p}`, `p${p}-${i}`, { qos: 1 });
      }));

      await d.restart('SIGKILL');
      for (const id of ids) {
        const s = await c.mqtt(d.port, persistentOpts(4, id, true));
        await s.inbox.waitFor(90);
        for (let p = 0; p < 3; p++) {
          const got = s.inbox.on(`${base}/p${p}`).map((m) => m.payload.toString());
          assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => `p${p}-${i}`), `${id}: every acknowledged message of p${p}, in order`);
        }
      }
    });
  });
});

// With two workers, sequential connections are placed least-loaded: the subscriber on one
// worker, the publisher on the other. `store/held/remote` counts messages whose persistent
// sessions another worker held, so each test proves the crossing it relies on.
describe('25 write-behind [workers=2]: publisher and persistent subscriber on different workers', () => {
  it('messages the subscriber acknowledged within the linger are held by its worker and never written; nothing comes back after kill -9', async () => {
    await neverWritten(2, 5, 'wbx', ['store/held/remote', 'store/held/unwritten']);
  });

  it('a PUBACK for a message the subscriber on the other worker has not acknowledged means that worker stored it: redelivered after kill -9 with DUP and its packet id', async () => {
    await pubackMeansStored(2, 5, 'wbxk', 'store/held/remote');
  });

  it('a clean stop (SIGTERM) writes what the subscriber\'s worker holds: the message still in flight is redelivered after the restart', async () => {
    await sigtermWritesHeld(2, 'wbxt');
  });

  it('the holding worker dies while the publisher waits for it: the publisher is answered (PUBACK only if the message was stored, else its connection closes), never left hanging', async () => {
    await withDeployment(2, { args: LINGER, env: { FLEETMQ_TEST_HOOKS: '1' } }, async (d, c) => {
      await d.start();
      const base = utopic('wbxd');
      const id = uid('wbxd');
      const raw = await persistentRawSubscriber(c, d.port, 5, id, [`${base}/d`]);
      const { raw: pub } = await c.raw(d.port, 5, { clientId: uid('wbxdp'), clean: true });
      pub.send({ cmd: 'publish', topic: `${base}/d`, payload: Buffer.from('orphan'), qos: 1, messageId: 7, retain: false, dup: false });
      await raw.expect<IPublishPacket>('publish'); // held by the subscriber's worker, never acknowledged
      // The subscriber's worker crashes (test hook, see 12-worker-crash).
      raw.send({ cmd: 'publish', topic: '$fleetmq/test/crash-worker', payload: Buffer.from('boom'), qos: 0, retain: false, dup: false });
      await raw.expectClose('the subscriber\'s worker to crash');
      const answer = await pub.nextMatching((p) => p.cmd === 'puback' || p.cmd === 'disconnect', 'a PUBACK, or a DISCONNECT because the holding worker died')
        .catch((err: Error) => { if (pub.closed) return null; throw err; });
      const sys = await heldCounters(c, d.port);
      await counterAtLeast(sys, 'store/held/remote', 1);
      if (answer?.cmd === 'puback') {
        // The other worker's write landed before it died: then the message must be stored.
        await d.restart('SIGKILL');
        const again = await c.raw(d.port, 5, persistentConnect(5, id, true));
        const p = await again.raw.expect<IPublishPacket>('publish');
        assert.equal(p.payload.toString(), 'orphan');
      } else {
        await pub.expectClose('the publisher\'s connection to close without a PUBACK');
        assert.equal(pub.packets.some((p) => p.cmd === 'puback'), false, 'no PUBACK for a message the dead worker may not have stored');
      }
    });
  });
});
