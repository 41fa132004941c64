// 0a shared subscriptions ($share/{group}/{filter}): each message goes to exactly one member of
// each group (round-robin per the issue), independent groups and ordinary subscribers each get
// every message, no retained messages on subscribe, members leaving. With --workers 3 the
// members and the publisher sit on different workers.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import { waitUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { clientPool, subscribe, unsubscribe, publish, end, Connected } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('0a shared subscriptions', (broker) => {
  const pool = clientPool();

  async function members(v: 4 | 5, n: number, filter: string, qos: 0 | 1 = 1): Promise<Connected[]> {
    const out: Connected[] = [];
    for (let i = 0; i < n; i++) { const c = await pool.connect(broker(), { protocolVersion: v }); await subscribe(c.client, filter, { qos }); out.push(c); }
    return out;
  }
  const payloads = (cs: Connected[], t: string) => cs.flatMap((c) => c.inbox.on(t).map((m) => m.payload.toString()));

  for (const v of VERSIONS) {
    it(`v${v}: each message goes to exactly one member; 3 members share 30 messages round-robin [MQTT-4.8.2-?] 4.8.2`, async () => {
      const t = utopic('share');
      const ms = await members(v, 3, `$share/g1/${t}`);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 30; i++) await publish(pub.client, t, String(i), { qos: 1 });
      await waitUntil(() => payloads(ms, t).length >= 30, `30 deliveries across the group (got ${payloads(ms, t).length})`);
      const all = payloads(ms, t);
      assert.equal(all.length, 30, 'no duplicates');
      assert.deepEqual([...new Set(all)].length, 30);
      const per = ms.map((m) => m.inbox.on(t).length);
      assert.ok(per.every((n) => n > 0), `every member gets a share (round-robin): ${per}`);
      assert.ok(Math.max(...per) - Math.min(...per) <= 2, `round-robin spreads evenly: ${per}`);
      for (const m of ms) { const seq = m.inbox.on(t).map((x) => Number(x.payload.toString())); assert.deepEqual(seq, [...seq].sort((a, b) => a - b), 'each member sees its share in order'); }
    });

    it(`v${v}: two groups and a plain subscriber on the same filter each get every message`, async () => {
      const t = utopic('groups');
      const g1 = await members(v, 2, `$share/a/${t}`);
      const g2 = await members(v, 2, `$share/b/${t}`);
      const plain = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(plain.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 10; i++) await publish(pub.client, t, String(i), { qos: 1 });
      await plain.inbox.waitFor(10, t);
      await waitUntil(() => payloads(g1, t).length >= 10 && payloads(g2, t).length >= 10, 'both groups to get all 10');
      assert.equal(payloads(g1, t).length, 10);
      assert.equal(payloads(g2, t).length, 10);
      assert.deepEqual(payloads(g1, t).sort(), payloads(g2, t).sort());
    });

    it(`v${v}: shared filters with wildcards match like ordinary ones`, async () => {
      const t = utopic('sharewild');
      const ms = await members(v, 2, `$share/w/${t}/+/x`);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, `${t}/a/x`, 'hit', { qos: 1 });
      await publish(pub.client, `${t}/a/y`, 'miss', { qos: 1 });
      await publish(pub.client, `${t}/b/x`, 'hit2', { qos: 1 });
      await waitUntil(() => ms.flatMap((m) => m.inbox.msgs).length >= 2, 'two matching deliveries');
      const plain = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(plain.client, `${t}/+/x`, { qos: 1 });
      await publish(pub.client, `${t}/c/x`, 'sentinel', { qos: 1 });
      await plain.inbox.waitForPayload('sentinel');
      await waitUntil(() => ms.flatMap((m) => m.inbox.msgs).some((x) => x.payload.toString() === 'sentinel'), 'the group to get the sentinel');
      const got = ms.flatMap((m) => m.inbox.msgs.map((x) => x.payload.toString())).sort();
      assert.deepEqual(got, ['hit', 'hit2', 'sentinel']);
      for (const m of ms) for (const x of m.inbox.msgs) assert.ok(!x.topic.startsWith('$share'), 'the topic is the publish topic, not the share filter');
    });

    it(`v${v}: a member that unsubscribes or disconnects stops receiving; the rest get everything`, async () => {
      const t = utopic('leave');
      const [a, b, c] = await members(v, 3, `$share/l/${t}`);
      await unsubscribe(a.client, `$share/l/${t}`);
      await end(b.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 10; i++) await publish(pub.client, t, String(i), { qos: 1 });
      await c.inbox.waitFor(10, t);
      await subscribe(a.client, `${t}-sentinel`, { qos: 1 });
      await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
      await a.inbox.waitForPayload('sentinel');
      assert.equal(a.inbox.on(t).length, 0, 'unsubscribed member got nothing');
      assert.equal(c.inbox.on(t).length, 10);
    });

    it(`v${v}: retained messages are not sent when subscribing to a shared subscription [4.8.2]`, async () => {
      const t = utopic('shareret');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'retained', { qos: 1, retain: true });
      const [m] = await members(v, 1, `$share/r/${t}`);
      await publish(pub.client, t, 'live', { qos: 1 });
      const before = await m.inbox.waitForPayload('live');
      assert.deepEqual(before.map((x) => x.payload.toString()), []);
    });

    it(`v${v}: the group delivers at each member's granted QoS`, async () => {
      const t = utopic('shareqos');
      const ms = await members(v, 2, `$share/q/${t}`, 0);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 4; i++) await publish(pub.client, t, String(i), { qos: 1 });
      await waitUntil(() => payloads(ms, t).length >= 4, '4 deliveries');
      for (const m of ms) for (const x of m.inbox.on(t)) assert.equal(x.packet.qos, 0);
    });
  }

  it('v5: a shared subscription\'s identifier is carried to the member that receives the message', async () => {
    const t = utopic('shareid');
    const c = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(c.client, `$share/i/${t}`, { qos: 1, properties: { subscriptionIdentifier: 42 } });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'x', { qos: 1 });
    const [m] = await c.inbox.waitFor(1, t);
    assert.deepEqual([].concat(m.packet.properties?.subscriptionIdentifier as never ?? []), [42]);
  });

  it('v5: a message matching a member\'s shared and ordinary subscriptions reaches it through both', async () => {
    const t = utopic('shareboth');
    const c = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(c.client, `$share/both/${t}`, { qos: 1, properties: { subscriptionIdentifier: 1 } });
    await subscribe(c.client, t, { qos: 1, properties: { subscriptionIdentifier: 2 } });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'x', { qos: 1 });
    await publish(pub.client, t, 'sentinel', { qos: 1 });
    await waitUntil(() => c.inbox.on(t).filter((m) => m.payload.toString() === 'sentinel').length >= 2, 'the sentinel through both subscriptions');
    const ids = c.inbox.on(t).filter((m) => m.payload.toString() === 'x').flatMap((m) => [].concat(m.packet.properties?.subscriptionIdentifier as never ?? [])).sort();
    assert.deepEqual(ids, [1, 2], 'the shared and the ordinary subscription each deliver (as one or two copies)');
  });

  for (const v of VERSIONS) {
    it(`v${v}: a group with an offline persistent member: every QoS 1 message is delivered exactly once across the members (queued or sent to the online one)`, async () => {
      const id = uid('shoff');
      const t = utopic('shoff');
      const sess = { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const a = await pool.connect(broker(), sess);
      await subscribe(a.client, `$share/off/${t}`, { qos: 1 });
      const [b] = await members(v, 1, `$share/off/${t}`);
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 10; i++) await publish(pub.client, t, String(i), { qos: 1 });
      const a2 = await pool.connect(broker(), sess);
      assert.equal(a2.connack.sessionPresent, true);
      // Markers on a plain subscription of each member prove their queues are drained.
      await subscribe(a2.client, `${t}-m`, { qos: 1 });
      await subscribe(b.client, `${t}-m`, { qos: 1 });
      await publish(pub.client, `${t}-m`, 'marker', { qos: 1 });
      await a2.inbox.waitForPayload('marker');
      await b.inbox.waitForPayload('marker');
      await waitUntil(() => [...a.inbox.on(t), ...a2.inbox.on(t), ...b.inbox.on(t)].length >= 10, '10 deliveries across the group');
      const all = [...a.inbox.on(t), ...a2.inbox.on(t), ...b.inbox.on(t)].filter((m) => !m.packet.dup).map((m) => m.payload.toString());
      assert.deepEqual(all.sort((x, y) => Number(x) - Number(y)), [...Array(10).keys()].map(String), 'each message once');
    });
  }

  it('v5: SUBACK grants a shared subscription; CONNACK does not deny shared subscriptions', async () => {
    const t = utopic('sharesuback');
    const c = await pool.connect(broker(), { protocolVersion: 5 });
    assert.notEqual(c.connack.properties?.sharedSubscriptionAvailable, false);
    const granted = await subscribe(c.client, `$share/s/${t}`, { qos: 2 });
    assert.equal(granted[0].qos, 2);
  });
});
