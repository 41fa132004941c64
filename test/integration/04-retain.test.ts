// 04 retain: retained messages are stored, replaced, cleared with an empty payload, sent on
// subscribe with RETAIN=1, and live deliveries carry RETAIN=0. The publisher of a retained
// message and the later subscriber are on different workers with --workers 3.
//
// "Must not receive a retained message" is checked with a live (non-retained) message published
// on the same topic after the SUBACK: retained messages are sent at subscribe time, before any
// later message on that topic [MQTT-4.6.0-6 ordered topic].
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import { utopic } from '../helpers/ids';
import { clientPool, subscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('04 retain', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    it(`v${v}: a retained message is sent to a new subscriber with RETAIN=1 [MQTT-3.3.1-5] [MQTT-3.3.1-8 3.1.1]`, async () => {
      const t = utopic('ret');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'kept', { qos: 1, retain: true });
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      const [m] = await sub.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'kept');
      assert.equal(m.packet.retain, true, 'RETAIN=1 on a message sent because of a new subscription');
      assert.equal(m.packet.qos, 1);
    });

    it(`v${v}: the retained message is delivered before any message published after the SUBACK on that topic (20 rounds) [MQTT-4.6.0-6]`, async () => {
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const problems: string[] = [];
      for (let r = 0; r < 20; r++) {
        const t = utopic('retorder');
        await publish(pub.client, t, 'retained', { qos: 1, retain: true });
        const sub = await pool.connect(broker(), { protocolVersion: v });
        await subscribe(sub.client, t, { qos: 1 });
        await publish(pub.client, t, 'live', { qos: 1 });
        await sub.inbox.waitFor(2, t);
        const order = sub.inbox.on(t).map((m) => m.payload.toString()).join(',');
        if (order !== 'retained,live') problems.push(`round ${r}: ${order}`);
        sub.client.end(true);
      }
      assert.deepEqual(problems, [], 'the retained state must come first');
    });

    it(`v${v}: live delivery to an existing subscriber has RETAIN=0 [MQTT-3.3.1-9 3.1.1 / MQTT-3.3.1-12 5.0 default]`, async () => {
      const t = utopic('live');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'r', { qos: 1, retain: true });
      const [m] = await sub.inbox.waitFor(1, t);
      assert.equal(m.packet.retain, false);
    });

    it(`v${v}: a new retained message replaces the previous one [MQTT-3.3.1-5]`, async () => {
      const t = utopic('replace');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'old', { qos: 1, retain: true });
      await publish(pub.client, t, 'new', { qos: 1, retain: true });
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      await publish(pub.client, t, 'live', { qos: 1 });
      const before = await sub.inbox.waitForPayload('live');
      assert.deepEqual(before.map((m) => m.payload.toString()), ['new']);
    });

    it(`v${v}: an empty retained payload clears the retained message and is still delivered live [MQTT-3.3.1-10] [MQTT-3.3.1-11]`, async () => {
      const t = utopic('clear');
      const live = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(live.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'kept', { qos: 1, retain: true });
      await publish(pub.client, t, '', { qos: 1, retain: true });
      const got = await live.inbox.waitFor(2, t);
      assert.equal(got[1].payload.length, 0, 'the zero-byte retained message is forwarded to current subscribers');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      await publish(pub.client, t, 'sentinel', { qos: 1 });
      const before = await sub.inbox.waitForPayload('sentinel');
      assert.deepEqual(before.map((m) => m.payload.toString()), [], 'nothing retained any more');
    });

    it(`v${v}: QoS 0 retained messages are stored too [MQTT-3.3.1-7 3.1.1]`, async () => {
      const t = utopic('q0');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'q0', { qos: 0, retain: true });
      // A QoS 1 round trip on the same connection orders the QoS 0 publish before it.
      await publish(pub.client, utopic('barrier'), 'x', { qos: 1 });
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      const [m] = await sub.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'q0');
      assert.equal(m.packet.qos, 0, 'delivered at min(retained QoS, granted QoS)');
    });

    it(`v${v}: a wildcard subscription receives every matching retained message, at min(stored, granted) QoS`, async () => {
      const t = utopic('wild');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, `${t}/a`, 'a', { qos: 2, retain: true });
      await publish(pub.client, `${t}/b/c`, 'bc', { qos: 1, retain: true });
      await publish(pub.client, `${t}-other`, 'no', { qos: 1, retain: true });
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, `${t}/#`, { qos: 1 });
      const got = await sub.inbox.waitFor(2);
      assert.deepEqual(got.map((m) => `${m.topic}=${m.payload}`).sort(), [`${t}/a=a`, `${t}/b/c=bc`]);
      for (const m of got) { assert.equal(m.packet.retain, true); assert.equal(m.packet.qos, 1); }
      await publish(pub.client, `${t}/a`, 'sentinel', { qos: 1 });
      const before = await sub.inbox.waitForPayload('sentinel');
      assert.equal(before.length, 2, 'no other retained message');
    });

    it(`v${v}: retained messages are sent again on every new SUBSCRIBE (3.1.1 behaviour, 5.0 retain handling 0)`, async () => {
      const t = utopic('again');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'r', { qos: 1, retain: true });
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      await sub.inbox.waitFor(1, t);
      await subscribe(sub.client, t, { qos: 1 });
      const got = await sub.inbox.waitFor(2, t);
      assert.equal(got[1].packet.retain, true);
    });
  }

  it('500 retained topics are all delivered to one wildcard subscription; clearing them from another worker empties it', async () => {
    const t = utopic('bulk');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    for (let i = 0; i < 500; i += 50) await Promise.all([...Array(50).keys()].map((j) => publish(pub.client, `${t}/${(i + j) % 7}/${i + j}`, String(i + j), { qos: 1, retain: true })));
    const sub = await pool.connect(broker(), { protocolVersion: 4 });
    await subscribe(sub.client, `${t}/#`, { qos: 1 });
    const got = await sub.inbox.waitFor(500);
    assert.deepEqual(got.map((m) => Number(m.payload.toString())).sort((a, b) => a - b), [...Array(500).keys()]);
    const clearer = await pool.connect(broker(), { protocolVersion: 4 });
    for (let i = 0; i < 500; i += 50) await Promise.all([...Array(50).keys()].map((j) => publish(clearer.client, `${t}/${(i + j) % 7}/${i + j}`, '', { qos: 1, retain: true })));
    const late = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(late.client, `${t}/#`, { qos: 1 });
    await publish(pub.client, `${t}/0/0`, 'sentinel', { qos: 1 });
    assert.deepEqual((await late.inbox.waitForPayload('sentinel')).length, 0);
  });

  it('retained message set by a v4 client is delivered to a v5 subscriber and vice versa', async () => {
    const t = utopic('mix');
    const p4 = await pool.connect(broker(), { protocolVersion: 4 });
    const p5 = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(p4.client, `${t}/4`, 'four', { qos: 1, retain: true });
    await publish(p5.client, `${t}/5`, 'five', { qos: 1, retain: true, properties: { contentType: 'text/plain' } });
    const s5 = await pool.connect(broker(), { protocolVersion: 5 });
    const s4 = await pool.connect(broker(), { protocolVersion: 4 });
    await subscribe(s5.client, `${t}/+`, { qos: 1 });
    await subscribe(s4.client, `${t}/+`, { qos: 1 });
    for (const s of [s4, s5]) assert.deepEqual((await s.inbox.waitFor(2)).map((m) => m.payload.toString()).sort(), ['five', 'four']);
    assert.equal(s5.inbox.msgs.find((m) => m.payload.toString() === 'five')!.packet.properties?.contentType, 'text/plain', 'retained message keeps its properties');
  });
});
