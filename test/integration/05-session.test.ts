// 05 session: clean session (3.1.1) and clean start + session expiry (5.0). An offline
// persistent session keeps its subscriptions and queues QoS 1/2 messages; a clean connection
// discards it. The reconnect may land on another worker than the first connection.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IClientOptions } from 'mqtt';
import { delay, waitUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { clientPool, subscribe, publish, end } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('05 session', (broker) => {
  const pool = clientPool('after'); // tests run concurrently (several wait seconds for expiry / delays)

  for (const v of VERSIONS) {
    /** Options for a session that outlives the connection. */
    const persistent = (clientId: string): IClientOptions => ({ protocolVersion: v, clientId, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) });

    it(`v${v}: persistent session: session present on reconnect, subscriptions kept, QoS 1/2 queued while offline [MQTT-3.2.2-2] [MQTT-3.1.2-4]`, async () => {
      const id = uid('persist');
      const t = utopic('persist');
      const a = await pool.connect(broker(), persistent(id));
      assert.equal(a.connack.sessionPresent, false, 'no session yet');
      await subscribe(a.client, { [`${t}/1`]: { qos: 1 }, [`${t}/2`]: { qos: 2 } });
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 5; i++) { await publish(pub.client, `${t}/1`, `q1-${i}`, { qos: 1 }); await publish(pub.client, `${t}/2`, `q2-${i}`, { qos: 2 }); }
      const b = await pool.connect(broker(), persistent(id));
      assert.equal(b.connack.sessionPresent, true, 'session present');
      const q1 = await b.inbox.waitFor(5, `${t}/1`);
      const q2 = await b.inbox.waitFor(5, `${t}/2`);
      assert.deepEqual(q1.map((m) => m.payload.toString()), [0, 1, 2, 3, 4].map((i) => `q1-${i}`), 'queued QoS 1 in order');
      assert.deepEqual(q2.map((m) => m.payload.toString()), [0, 1, 2, 3, 4].map((i) => `q2-${i}`), 'queued QoS 2 in order');
      // The subscription survived: live messages arrive without subscribing again.
      await publish(pub.client, `${t}/1`, 'live', { qos: 1 });
      await b.inbox.waitForPayload('live');
    });

    it(`v${v}: a clean connection discards the old session: session present 0, no queued messages, no subscriptions [MQTT-3.1.2-6] [MQTT-3.2.2-1]`, async () => {
      const id = uid('discard');
      const t = utopic('discard');
      const a = await pool.connect(broker(), persistent(id));
      await subscribe(a.client, t, { qos: 1 });
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'queued', { qos: 1 });
      const b = await pool.connect(broker(), { protocolVersion: v, clientId: id, clean: true });
      assert.equal(b.connack.sessionPresent, false);
      const sentinelTopic = `${t}-sentinel`;
      await subscribe(b.client, sentinelTopic, { qos: 1 });
      await publish(pub.client, t, 'not-subscribed', { qos: 1 });
      await publish(pub.client, sentinelTopic, 'sentinel', { qos: 1 });
      const before = await b.inbox.waitForPayload('sentinel');
      assert.deepEqual(before.map((m) => m.payload.toString()), [], 'neither the queued message nor the old subscription survive');
      await end(b.client);
      // v4: clean session's state ends with the connection [MQTT-3.1.2-6]; v5: expiry 0 by default.
      const c = await pool.connect(broker(), persistent(id));
      assert.equal(c.connack.sessionPresent, false, 'nothing left of the clean session');
    });

    it(`v${v}: the offline session survives the publisher and subscriber being on different workers (several reconnects)`, async () => {
      const id = uid('hop');
      const t = utopic('hop');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const first = await pool.connect(broker(), persistent(id));
      await subscribe(first.client, t, { qos: 1 });
      await end(first.client);
      for (let round = 0; round < 3; round++) {
        await publish(pub.client, t, `r${round}`, { qos: 1 });
        const c = await pool.connect(broker(), persistent(id));
        assert.equal(c.connack.sessionPresent, true, `round ${round}: session present`);
        const [m] = await c.inbox.waitFor(1, t);
        assert.equal(m.payload.toString(), `r${round}`);
        await end(c.client);
      }
    });

    it(`v${v}: a message queued offline keeps the rules of a live match: RETAIN=0 (no RAP) and QoS min(published, granted) [MQTT-3.3.1-9] [MQTT-3.8.4-8]`, async () => {
      const id = uid('offrules');
      const t = utopic('offrules');
      const a = await pool.connect(broker(), persistent(id));
      await subscribe(a.client, t, { qos: 1 });
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'retained-q2', { qos: 2, retain: true });
      const b = await pool.connect(broker(), persistent(id));
      const [m] = await b.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'retained-q2');
      assert.equal(m.packet.qos, 1, 'downgraded to the granted QoS');
      assert.equal(m.packet.retain, false, 'it matched a subscription when published: not a retained-on-subscribe delivery');
      await publish(pub.client, t, 'sentinel', { qos: 1 });
      const before = await b.inbox.waitForPayload('sentinel');
      assert.equal(before.length, 1, 'no second copy from the retained store (no new SUBSCRIBE happened)');
    });

    it(`v${v}: QoS 0 messages while offline are never delivered with QoS > 0; the session still works`, async () => {
      const id = uid('q0off');
      const t = utopic('q0off');
      const a = await pool.connect(broker(), persistent(id));
      await subscribe(a.client, t, { qos: 1 });
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'q0', { qos: 0 });
      await publish(pub.client, t, 'q1', { qos: 1 });
      const b = await pool.connect(broker(), persistent(id));
      const before = await b.inbox.waitForPayload('q1');
      for (const m of before) assert.equal(m.packet.qos, 0, 'a QoS 0 message (queueing it is optional) keeps QoS 0');
    });
  }

  for (const v of VERSIONS) {
    it(`v${v}: disconnect and reconnect in the middle of a QoS 1 stream: nothing is lost, queued messages come in order [MQTT-4.3.2] [MQTT-4.6.0-6]`, async () => {
      const id = uid('gap');
      const t = utopic('gap');
      const sess = { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const a = await pool.connect(broker(), sess);
      await subscribe(a.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const N = 300;
      let i = 0;
      const stream = (async () => { for (; i < N; i += 5) await Promise.all([0, 1, 2, 3, 4].map((j) => publish(pub.client, t, String(i + j), { qos: 1 }))); })();
      await a.inbox.waitFor(50, t);
      await end(a.client);
      const b = await pool.connect(broker(), sess);
      assert.equal(b.connack.sessionPresent, true);
      await stream;
      const seen = () => new Set([...a.inbox.on(t), ...b.inbox.on(t)].map((m) => m.payload.toString()));
      await waitUntil(() => seen().size >= N, `all ${N} messages across both connections (missing: ${[...Array(N).keys()].filter((k) => !seen().has(String(k))).slice(0, 20).join(',')})`);
      const seq = b.inbox.on(t).filter((m) => !m.packet.dup).map((m) => Number(m.payload.toString()));
      assert.deepEqual(seq, [...seq].sort((x, y) => x - y), 'in order on the new connection');
    });
  }

  it('v5: clean start=0 with session expiry 0 (the default): the session ends with the connection [MQTT-3.1.2-23]', async () => {
    const id = uid('exp0');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false });
    await subscribe(a.client, utopic('exp0'), { qos: 1 });
    await end(a.client);
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false });
    assert.equal(b.connack.sessionPresent, false);
  });

  it('v5: clean start=1 discards an existing session even with a session expiry interval [MQTT-3.1.2-4]', async () => {
    const id = uid('cs1');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } });
    await subscribe(a.client, utopic('cs1'), { qos: 1 });
    await end(a.client);
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: true, properties: { sessionExpiryInterval: 300 } });
    assert.equal(b.connack.sessionPresent, false);
  });

  it('v5: a session expires after its Session Expiry Interval (1 s; checked after 3 s) [MQTT-3.1.2-23]', async () => {
    const id = uid('exp1');
    const t = utopic('exp1');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    await subscribe(a.client, t, { qos: 1 });
    await end(a.client);
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'queued', { qos: 1 });
    await delay(3000); // the interval is the thing under test: the broker may expire it any time after 1 s
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(b.connack.sessionPresent, false, 'session expired');
    await subscribe(b.client, `${t}-sentinel`, { qos: 1 });
    await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
    assert.deepEqual((await b.inbox.waitForPayload('sentinel')).map((m) => m.payload.toString()), [], 'queued message dropped with the session');
  });

  it('v5: the session expiry of the latest CONNECT applies (300 s, then reconnect with 1 s: gone after 3 s) [3.1.2.11.2]', async () => {
    const id = uid('exp-upd');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } });
    await subscribe(a.client, utopic('exp-upd'), { qos: 1 });
    await end(a.client);
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(b.connack.sessionPresent, true);
    await end(b.client);
    await delay(3000);
    const c = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(c.connack.sessionPresent, false, 'the 1 s expiry from the second CONNECT applied');
  });

  it('v5: DISCONNECT may lower the session expiry to 0: the session ends [MQTT-3.14.2-?] 3.14.2.2.2', async () => {
    const id = uid('dexp');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } });
    await subscribe(a.client, utopic('dexp'), { qos: 1 });
    await end(a.client, { properties: { sessionExpiryInterval: 0 } });
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } });
    assert.equal(b.connack.sessionPresent, false);
  });

  it('v5: DISCONNECT setting a non-zero expiry when CONNECT had 0 is a protocol error [MQTT-3.14.2-2]', async () => {
    const { raw } = await pool.rawConnected(broker(), 5, { clean: false });
    raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    const rest = await raw.expectClose();
    for (const p of rest) {
      assert.equal(p.cmd, 'disconnect');
      assert.equal((p as { reasonCode?: number }).reasonCode, 0x82, 'DISCONNECT 0x82 Protocol Error');
    }
  });

  it('v5: CONNACK carries no session expiry interval when the broker keeps the client value (§3.2.2.3.2); a session with expiry is resumable', async () => {
    const id = uid('exp-echo');
    const a = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 120 } });
    const echoed = a.connack.properties?.sessionExpiryInterval;
    // The broker keeps the client's 120 s (it has no maximum to apply), so it sends no Session
    // Expiry Interval: absent means the CONNECT's value is used (MQTT 5.0 §3.2.2.3.2).
    assert.equal(echoed, undefined, `the broker keeps the client's session expiry, so it must not send one (got ${echoed})`);
    await end(a.client);
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 120 } });
    assert.equal(b.connack.sessionPresent, true);
  });
}, { concurrency: true });
