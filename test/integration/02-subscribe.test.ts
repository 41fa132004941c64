// 02 subscribe: SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK, topic filter matching (wildcards,
// empty levels, case), overlapping subscriptions and fan-out, for 3.1.1 and 5.0, with publisher
// and subscriber on different workers.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import { uid, utopic } from '../helpers/ids';
import { clientPool, subscribe, unsubscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

/** (filter suffix, topic suffix, match): both are appended to a prefix unique to the case. */
const MATCH_CASES: Array<[string, string, boolean, string?]> = [
  ['/a/b', '/a/b', true],
  ['/a/b', '/a/B', false, 'topics are case sensitive [MQTT-4.7.3-4]'],
  ['/a/b/', '/a/b', false, 'a trailing / is a level'],
  ['/a/+', '/a/b', true],
  ['/a/+', '/a/b/c', false, '+ matches exactly one level [MQTT-4.7.1-3]'],
  ['/a/+', '/a', false],
  ['/a/+', '/a/', true, '+ matches an empty level'],
  ['/+/b', '/x/b', true],
  ['/+/+', '/x/y', true],
  ['/a/+/b', '/a//b', true, 'zero-length level [MQTT-4.7.3-1 note]'],
  ['/a//b', '/a//b', true],
  ['/a/#', '/a', true, '# also matches the parent level [MQTT-4.7.1-2]'],
  ['/a/#', '/a/b/c/d', true],
  ['/a/#', '/ab', false],
  ['/+/#', '/a', true],
  ['/a b/ü/✓', '/a b/ü/✓', true, 'spaces and multi-byte UTF-8 are ordinary characters'],
  ['/a b/ü/✓', '/a b/u/✓', false],
];

eachWorkerCount('02 subscribe', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    it(`v${v}: topic filter matching table (one SUBSCRIBE with many filters, SUBACK in order) [MQTT-3.8.4-6]`, async () => {
      const base = utopic('match');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const filters = MATCH_CASES.map(([f], i) => `${base}/${i}${f}`);
      const map: Record<string, { qos: 0 | 1 | 2 }> = {};
      filters.forEach((f, i) => { map[f] = { qos: (i % 3) as 0 | 1 | 2 }; });
      map[`${base}/sentinel`] = { qos: 0 };
      const granted = await subscribe(sub.client, map);
      assert.equal(granted.length, filters.length + 1, 'one SUBACK code per filter');
      granted.forEach((g, i) => { if (i < filters.length) assert.equal(g.qos, i % 3, `granted QoS for ${filters[i]}`); });
      for (let i = 0; i < MATCH_CASES.length; i++) await publish(pub.client, `${base}/${i}${MATCH_CASES[i][1]}`, String(i));
      await publish(pub.client, `${base}/sentinel`, 'sentinel');
      const got = await sub.inbox.waitForPayload('sentinel');
      const problems: string[] = [];
      MATCH_CASES.forEach(([f, t, match, why], i) => {
        const n = got.filter((m) => m.payload.toString() === String(i)).length;
        if (match && n !== 1) problems.push(`filter ${f} topic ${t}: expected 1 delivery, got ${n}${why ? ` (${why})` : ''}`);
        if (!match && n !== 0) problems.push(`filter ${f} topic ${t}: expected no delivery, got ${n}${why ? ` (${why})` : ''}`);
      });
      assert.deepEqual(problems, []);
    });

    it(`v${v}: a topic starting with / is matched by +/... and a lone # matches everything non-$`, async () => {
      const lvl = uid('root').replace(/-/g, '_');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const all = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, `+/${lvl}/x`);
      await subscribe(all.client, '#');
      await publish(pub.client, `/${lvl}/x`, 'leading-slash');
      await sub.inbox.waitForPayload('leading-slash');
      await all.inbox.waitForPayload('leading-slash');
      assert.equal(all.inbox.msgs.find((m) => m.payload.toString() === 'leading-slash')!.topic, `/${lvl}/x`);
    });

    it(`v${v}: SUBACK grants the requested QoS 0, 1, 2 and delivery uses min(published, granted) [MQTT-3.8.4-8]`, async () => {
      const t = utopic('qos');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const granted = await subscribe(sub.client, { [`${t}/0`]: { qos: 0 }, [`${t}/1`]: { qos: 1 }, [`${t}/2`]: { qos: 2 } });
      assert.deepEqual(granted.map((g) => g.qos), [0, 1, 2]);
      for (const s of [0, 1, 2] as const) for (const p of [0, 1, 2] as const) await publish(pub.client, `${t}/${s}`, `p${p}`, { qos: p });
      const got = await sub.inbox.waitFor(9);
      for (const s of [0, 1, 2]) for (const p of [0, 1, 2]) {
        const m = got.find((x) => x.topic === `${t}/${s}` && x.payload.toString() === `p${p}`);
        assert.ok(m, `missing sub QoS ${s} pub QoS ${p}`);
        assert.equal(m.packet.qos, Math.min(s, p), `sub QoS ${s}, pub QoS ${p}`);
      }
    });

    it(`v${v}: subscribing again to the same filter replaces the subscription (one copy, new QoS) [MQTT-3.8.4-3]`, async () => {
      const t = utopic('resub');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 0 });
      await subscribe(sub.client, t, { qos: 1 });
      await publish(pub.client, t, 'one', { qos: 1 });
      await publish(pub.client, t, 'sentinel', { qos: 1 });
      const before = await sub.inbox.waitForPayload('sentinel');
      const ones = before.filter((m) => m.payload.toString() === 'one');
      assert.equal(ones.length, 1, 'exactly one copy');
      assert.equal(ones[0].packet.qos, 1, 'delivered at the new QoS');
    });

    it(`v${v}: overlapping subscriptions deliver one copy at the maximum QoS [MQTT-3.3.5-1]`, async () => {
      const t = utopic('overlap');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, { [`${t}/+`]: { qos: 0 }, [`${t}/#`]: { qos: 2 }, [`${t}/a`]: { qos: 1 } });
      await publish(pub.client, `${t}/a`, 'm', { qos: 2 });
      await publish(pub.client, `${t}/a`, 'sentinel', { qos: 2 });
      const before = await sub.inbox.waitForPayload('sentinel');
      const copies = before.filter((m) => m.payload.toString() === 'm');
      assert.equal(copies.length, 1, `one copy, got ${copies.length}`);
      assert.equal(copies[0].packet.qos, 2, 'at the maximum granted QoS');
    });

    it(`v${v}: UNSUBSCRIBE stops delivery; other subscriptions stay; filters compare character by character [MQTT-3.10.4-1]`, async () => {
      const t = utopic('unsub');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, [`${t}/a`, `${t}/+`, `${t}/keep`]);
      await unsubscribe(sub.client, `${t}/+`);
      await publish(pub.client, `${t}/a`, 'a');
      await publish(pub.client, `${t}/b`, 'b');
      await publish(pub.client, `${t}/keep`, 'sentinel');
      const before = await sub.inbox.waitForPayload('sentinel');
      assert.deepEqual(before.map((m) => m.payload.toString()), ['a'], 'a/ still subscribed exactly (not removed by unsubscribing +), b no longer');
    });

    it(`v${v}: fan-out: 8 subscribers (spread over workers) each get every message, in order`, async () => {
      const t = utopic('fan');
      const subs = [];
      for (let i = 0; i < 8; i++) { const s = await pool.connect(broker(), { protocolVersion: v }); await subscribe(s.client, t, { qos: 1 }); subs.push(s); }
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 20; i++) await publish(pub.client, t, String(i), { qos: i % 2 as 0 | 1 });
      for (const s of subs) {
        const got = await s.inbox.waitFor(20, t);
        // Order is guaranteed per topic and QoS [MQTT-4.6.0-6]: even numbers went at QoS 0, odd at QoS 1.
        for (const q of [0, 1]) {
          assert.deepEqual(got.filter((m) => Number(m.payload.toString()) % 2 === q).map((m) => Number(m.payload.toString())), [...Array(20).keys()].filter((i) => i % 2 === q));
        }
      }
    });
  }

  it('one client with 1000 subscriptions receives on each; after unsubscribing them all it receives nothing', async () => {
    const t = utopic('many');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    const filters = [...Array(1000).keys()].map((i) => (i % 2 ? `${t}/${i}` : `${t}/${i}/+`));
    for (let i = 0; i < filters.length; i += 100) await subscribe(sub.client, filters.slice(i, i + 100), { qos: 0 });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    for (let i = 0; i < 1000; i += 37) await publish(pub.client, i % 2 ? `${t}/${i}` : `${t}/${i}/x`, String(i));
    await publish(pub.client, `${t}/999`, 'sentinel-1');
    const first = await sub.inbox.waitForPayload('sentinel-1');
    assert.equal(first.length, Math.ceil(1000 / 37));
    for (let i = 0; i < filters.length; i += 100) await unsubscribe(sub.client, filters.slice(i, i + 100));
    await subscribe(sub.client, `${t}/sentinel`);
    sub.inbox.clear();
    for (let i = 0; i < 1000; i += 37) await publish(pub.client, i % 2 ? `${t}/${i}` : `${t}/${i}/x`, String(i));
    await publish(pub.client, `${t}/sentinel`, 'sentinel-2');
    assert.deepEqual((await sub.inbox.waitForPayload('sentinel-2')).map((m) => m.topic), []);
  });

  it('subscription churn on other connections never loses messages for a stable subscriber (QoS 1, 500 messages)', async () => {
    const t = utopic('churn');
    const stable = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(stable.client, `${t}/#`, { qos: 1 });
    const churners = [];
    for (let i = 0; i < 3; i++) churners.push(await pool.connect(broker(), { protocolVersion: 5 }));
    let stop = false;
    const churn = Promise.all(churners.map(async (c, k) => {
      let n = 0;
      while (!stop) {
        const f = [`${t}/#`, `${t}/+`, `${t}/a`, `+/x/${k}/${n % 7}`][n % 4];
        await subscribe(c.client, f, { qos: (n % 3) as 0 | 1 | 2 });
        await unsubscribe(c.client, f);
        n++;
      }
    }));
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    for (let i = 0; i < 500; i += 10) await Promise.all([...Array(10).keys()].map((j) => publish(pub.client, `${t}/a`, String(i + j), { qos: 1 })));
    const got = await stable.inbox.waitFor(500, `${t}/a`);
    stop = true;
    await churn;
    assert.deepEqual(got.map((m) => Number(m.payload.toString())), [...Array(500).keys()]);
  });

  it('v5: UNSUBACK reason codes: 0x00 for a removed subscription, 0x11 when none existed [MQTT-3.11.3-1]', async () => {
    const t = utopic('unsuback');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, `${t}/a`);
    const ack = await unsubscribe(sub.client, [`${t}/a`, `${t}/never`]);
    assert.ok(ack, 'UNSUBACK packet');
    const codes = (ack as unknown as { reasonCode?: number | number[]; granted?: number[] });
    const list = Array.isArray(codes.reasonCode) ? codes.reasonCode : codes.granted;
    assert.deepEqual(list, [0x00, 0x11]);
  });

  it('v5: SUBACK reason code per filter: 0x8F for an invalid filter next to a valid one [MQTT-3.9.3-1]', async () => {
    const t = utopic('suback5');
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.send({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: `${t}/ok`, qos: 1 }, { topic: `${t}/#/bad`, qos: 1 }] });
    const p = await raw.next('SUBACK or close');
    if (p.cmd === 'disconnect') assert.ok([0x8f, 0x81, 0x82].includes((p as { reasonCode?: number }).reasonCode ?? 0));
    else {
      assert.equal(p.cmd, 'suback');
      assert.deepEqual((p as { granted: number[] }).granted, [1, 0x8f]);
    }
  });
});
