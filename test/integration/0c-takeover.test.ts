// 0c takeover: a client id that connects again (on any worker) takes over; the old connection
// is closed (5.0: DISCONNECT 0x8E Session taken over). A persistent session moves with its
// subscriptions and in-flight messages. With --workers 3 consecutive connections are on
// different workers, so the takeover crosses workers through the coordinator's registry.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt-packet';
import { waitUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { RawClient } from '../helpers/raw-client';
import { clientPool, subscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('0c takeover', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    it(`v${v}: a second connection with the same client id closes the first [MQTT-3.1.4-2]${v === 5 ? ' with DISCONNECT 0x8E' : ''}`, async () => {
      const id = uid('take');
      const a = await pool.rawConnected(broker(), v, { clientId: id });
      const b = await pool.rawConnected(broker(), v, { clientId: id });
      const rest = await a.raw.expectClose('the broker to close the old connection');
      if (v === 5) {
        assert.equal(rest.length, 1, `old v5 connection gets DISCONNECT, got ${a.raw.describe()}`);
        assert.equal(rest[0].cmd, 'disconnect');
        assert.equal((rest[0] as { reasonCode?: number }).reasonCode, 0x8e, 'Session taken over');
      } else {
        assert.deepEqual(rest, []);
      }
      await b.raw.ping();
    });

    it(`v${v}: takeover of a persistent session keeps its subscriptions and delivers what the old connection left unacknowledged [MQTT-3.1.4-?]`, async () => {
      const id = uid('takesess');
      const t = utopic('takesess');
      const sess = { clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const a = await pool.rawConnected(broker(), v, sess);
      a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
      await a.raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'inflight', { qos: 1 });
      const first = await a.raw.expect<IPublishPacket>('publish'); // not acknowledged
      const b = await pool.rawConnected(broker(), v, sess);
      assert.equal(b.connack.sessionPresent, true, 'session present after takeover');
      await a.raw.expectClose();
      const again = await b.raw.expect<IPublishPacket>('publish');
      assert.equal(again.payload.toString(), 'inflight');
      assert.equal(again.messageId, first.messageId);
      assert.equal(again.dup, true);
      b.raw.send({ cmd: 'puback', messageId: again.messageId });
      await publish(pub.client, t, 'after', { qos: 1 });
      const live = await b.raw.expect<IPublishPacket>('publish');
      assert.equal(live.payload.toString(), 'after', 'the subscription moved with the session');
    });

    it(`v${v}: takeover with clean session discards the old session`, async () => {
      const id = uid('takeclean');
      const t = utopic('takeclean');
      const a = await pool.connect(broker(), { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) });
      await subscribe(a.client, t, { qos: 1 });
      const b = await pool.connect(broker(), { protocolVersion: v, clientId: id, clean: true });
      assert.equal(b.connack.sessionPresent, false);
      await subscribe(b.client, `${t}-sentinel`, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'old-sub', { qos: 1 });
      await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
      assert.deepEqual((await b.inbox.waitForPayload('sentinel')).map((m) => m.payload.toString()), []);
    });

    it(`v${v}: ten rapid takeovers of one client id leave exactly the last connection alive`, async () => {
      const id = uid('storm');
      const conns: RawClient[] = [];
      for (let i = 0; i < 10; i++) conns.push((await pool.rawConnected(broker(), v, { clientId: id })).raw);
      for (const c of conns.slice(0, -1)) await c.expectClose(`connection ${conns.indexOf(c)} to be closed by a later takeover`);
      await conns[conns.length - 1].ping();
    });
  }

  for (const v of VERSIONS) {
    it(`v${v}: takeover in the middle of a QoS 1 stream loses nothing: old and new connection together get every message, the new one in order`, async () => {
      const id = uid('midstream');
      const t = utopic('midstream');
      const sess = { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const a = await pool.connect(broker(), sess);
      await subscribe(a.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const N = 300;
      let published = 0;
      const stream = (async () => { for (; published < N; published += 5) await Promise.all([0, 1, 2, 3, 4].map((j) => publish(pub.client, t, String(published + j), { qos: 1 }))); })();
      await a.inbox.waitFor(50, t);
      const b = await pool.connect(broker(), sess);
      assert.equal(b.connack.sessionPresent, true);
      await stream;
      await waitUntil(() => new Set([...a.inbox.on(t), ...b.inbox.on(t)].map((m) => m.payload.toString())).size >= N,
        `all ${N} messages across the old and new connection (have ${new Set([...a.inbox.on(t), ...b.inbox.on(t)].map((m) => m.payload.toString())).size})`);
      const seq = b.inbox.on(t).filter((m) => !m.packet.dup).map((m) => Number(m.payload.toString()));
      assert.deepEqual(seq, [...seq].sort((x, y) => x - y), 'new connection: first deliveries in order');
    });
  }

  it('v5: the old connection\'s will is published on takeover when the new connection starts clean (the old session ends) [MQTT-3.1.2-8]', async () => {
    const id = uid('takewill');
    const t = utopic('takewill');
    const w = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(w.client, t, { qos: 1 });
    await pool.rawConnected(broker(), 5, { clientId: id, will: { topic: t, payload: Buffer.from('old-will'), qos: 1, retain: false } });
    await pool.rawConnected(broker(), 5, { clientId: id, clean: true });
    const [m] = await w.inbox.waitFor(1, t);
    assert.equal(m.payload.toString(), 'old-will');
  });

  for (const v of VERSIONS) {
    it(`v${v}: eight CONNECTs of one client id at once, clean and continuing mixed: each gets its CONNACK, one connection is left`, async () => {
      // Claims of one id are serialised by the coordinator; one answered at once (local, or
      // redirected to the session's worker) once left the claims behind it waiting for ever.
      const id = uid('race');
      const all = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.rawConnected(broker(), v, {
        clientId: id,
        clean: i % 2 === 0,
        ...(v === 5 && i % 2 === 1 ? { properties: { sessionExpiryInterval: 60 } } : {}),
      })));
      for (const { connack } of all) assert.equal(v === 5 ? connack.reasonCode : connack.returnCode, 0, 'CONNACK accepted');
      await waitUntil(() => all.filter((c) => !c.raw.closed).length === 1, 'all but one connection taken over');
      const left = all.find((c) => !c.raw.closed)!;
      await left.raw.ping();
    });
  }
});
