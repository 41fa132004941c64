// 09 MQTT 5.0 properties and subscription options: topic alias both ways, message expiry,
// forwarded application properties, subscription identifiers, no local, retain as published,
// retain handling, maximum packet size both ways, request/response and problem information,
// assigned client identifier, AUTH without a method. Publisher and subscriber on different workers.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { delay } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { clientPool, subscribe, publish, end } from '../helpers/clients';
import { eachWorkerCount } from '../helpers/suite';

const pubPacket = (topic: string, payload: string, props: IPublishPacket['properties'] = {}, qos: 0 | 1 = 0, messageId?: number): IPublishPacket =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, dup: false, retain: false, properties: props, ...(messageId ? { messageId } : {}) });

eachWorkerCount('09 v5 properties', (broker) => {
  const pool = clientPool();

  // ------------------------------------------------------------------ topic alias
  it('topic alias, client to broker: CONNACK Topic Alias Maximum >= 1; alias set, used, and remapped [MQTT-3.3.2-12]', async () => {
    const t = utopic('alias-in');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, [`${t}/a`, `${t}/b`]);
    const { raw, connack } = await pool.rawConnected(broker(), 5);
    const max = connack.properties?.topicAliasMaximum ?? 0;
    assert.ok(max >= 1, `the broker implements inbound topic aliases, so Topic Alias Maximum must be >= 1 (got ${max})`);
    raw.send(pubPacket(`${t}/a`, '1', { topicAlias: 1 }));
    raw.send(pubPacket('', '2', { topicAlias: 1 }));
    raw.send(pubPacket(`${t}/b`, '3', { topicAlias: 1 }));
    raw.send(pubPacket('', '4', { topicAlias: 1 }));
    await raw.ping();
    const got = await sub.inbox.waitFor(4);
    assert.deepEqual(got.map((m) => `${m.topic.slice(t.length)}=${m.payload}`), ['/a=1', '/a=2', '/b=3', '/b=4']);
    for (const m of got) assert.equal(m.packet.properties?.topicAlias, undefined, 'the inbound alias is not forwarded');
  });

  it('topic alias, client to broker: the advertised maximum itself is valid; maximum + 1 -> DISCONNECT 0x94 [MQTT-3.3.2-10]', async () => {
    const t = utopic('alias-max');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, t);
    const { raw, connack } = await pool.rawConnected(broker(), 5);
    const max = connack.properties?.topicAliasMaximum ?? 0;
    assert.ok(max >= 1 && max < 65535, `Topic Alias Maximum ${max}`);
    raw.send(pubPacket(t, 'at-max', { topicAlias: max }));
    raw.send(pubPacket('', 'via-alias', { topicAlias: max }));
    await raw.ping();
    await sub.inbox.waitForPayload('via-alias');
    raw.send(pubPacket(t, 'over', { topicAlias: max + 1 }));
    const rest = await raw.expectClose('the broker to refuse an alias above its maximum');
    assert.equal(rest.length, 1, `expected DISCONNECT 0x94, got ${raw.describe()}`);
    assert.equal(rest[0].cmd, 'disconnect');
    assert.equal((rest[0] as { reasonCode?: number }).reasonCode, 0x94);
  });

  it('PUBACK to a QoS 1 publish that matches no subscriber: 0x00 or 0x10 No matching subscribers', async () => {
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.send(pubPacket(utopic('nobody'), 'x', {}, 1, 5));
    const ack = await raw.expect<import('mqtt-packet').IPubackPacket>('puback');
    assert.ok([0x00, 0x10].includes(ack.reasonCode ?? 0), `reason 0x${(ack.reasonCode ?? 0).toString(16)}`);
  });

  it('topic alias, client to broker: aliases belong to one connection (another connection cannot use them)', async () => {
    const t = utopic('alias-conn');
    const a = await pool.rawConnected(broker(), 5);
    a.raw.send(pubPacket(t, 'x', { topicAlias: 1 }));
    await a.raw.ping();
    const b = await pool.rawConnected(broker(), 5);
    b.raw.send(pubPacket('', 'y', { topicAlias: 1 }));
    const rest = await b.raw.expectClose('the broker to refuse an alias this connection never set');
    for (const p of rest) assert.ok(p.cmd === 'disconnect' && [0x82, 0x94].includes((p as { reasonCode?: number }).reasonCode ?? 0), `got ${b.raw.describe()}`);
  });

  it('topic alias, broker to client: used when the client allows it, never above its maximum [MQTT-3.3.2-9]', async () => {
    const t = utopic('alias-out');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { topicAliasMaximum: 4 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${t}/#`, qos: 0 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    const topics = [`${t}/a`, `${t}/a`, `${t}/b`, `${t}/a`, `${t}/b`, `${t}/b`];
    for (const [i, tp] of topics.entries()) await publish(pub.client, tp, String(i));
    const aliases = new Map<number, string>();
    let usedEmpty = 0;
    for (const [i, tp] of topics.entries()) {
      const p = await raw.expect<IPublishPacket>('publish');
      const alias = p.properties?.topicAlias;
      let topic = p.topic;
      if (alias !== undefined) {
        assert.ok(alias >= 1 && alias <= 4, `alias ${alias} outside 1..4`);
        if (topic) aliases.set(alias, topic);
        else { usedEmpty++; topic = aliases.get(alias) ?? assert.fail(`alias ${alias} used before being set`); }
      } else {
        assert.ok(topic, 'empty topic without alias');
      }
      assert.equal(topic, tp, `message ${i}`);
      assert.equal(p.payload.toString(), String(i));
    }
    assert.ok(usedEmpty > 0, 'repeated topics should be sent as an alias with an empty topic');
  });

  it('topic alias, broker to client: aliases do not survive a reconnect; the first message after it carries the topic [MQTT-3.3.2-7]', async () => {
    const id = uid('alias-re');
    const t = utopic('alias-re');
    const conn = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60, topicAliasMaximum: 4 } };
    const a = await pool.rawConnected(broker(), 5, conn);
    a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await a.raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    for (let i = 0; i < 3; i++) {
      await publish(pub.client, t, `a${i}`, { qos: 1 });
      const p = await a.raw.expect<IPublishPacket>('publish');
      a.raw.send({ cmd: 'puback', messageId: p.messageId });
    }
    a.raw.send({ cmd: 'disconnect', reasonCode: 0 });
    await a.raw.expectClose();
    const b = await pool.rawConnected(broker(), 5, conn);
    await publish(pub.client, t, 'b0', { qos: 1 });
    const p = await b.raw.expect<IPublishPacket>('publish');
    assert.equal(p.topic, t, 'a new connection starts with no aliases: the topic must be sent');
  });

  it('topic alias, broker to client: with Topic Alias Maximum 1 and three topics in turn, every message still resolves to its own topic', async () => {
    const t = utopic('alias-one');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { topicAliasMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${t}/#`, qos: 0 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    const topics = [...Array(12).keys()].map((i) => `${t}/${['a', 'b', 'c', 'c', 'a', 'a'][i % 6]}`);
    for (const [i, tp] of topics.entries()) await publish(pub.client, tp, String(i));
    let alias1: string | undefined;
    for (const [i, tp] of topics.entries()) {
      const p = await raw.expect<IPublishPacket>('publish');
      const alias = p.properties?.topicAlias;
      let topic = p.topic;
      if (alias !== undefined) {
        assert.equal(alias, 1, 'the only allowed alias is 1');
        if (topic) alias1 = topic; else topic = alias1 ?? assert.fail('alias 1 used before being set');
      }
      assert.equal(topic, tp, `message ${i} resolves to its topic`);
    }
  });

  it('topic alias, broker to client: no alias to a client that did not allow them (Topic Alias Maximum absent = 0) [MQTT-3.3.2-9]', async () => {
    const t = utopic('alias-none');
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    for (let i = 0; i < 4; i++) await publish(pub.client, t, String(i));
    for (let i = 0; i < 4; i++) {
      const p = await raw.expect<IPublishPacket>('publish');
      assert.equal(p.properties?.topicAlias, undefined);
      assert.equal(p.topic, t);
    }
  });

  // ------------------------------------------------------------------ message expiry
  it('message expiry: forwarded live with the remaining interval (<= the original) [MQTT-3.3.2-6]; absent when not set', async () => {
    const t = utopic('exp-live');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, t, { qos: 1 });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'with', { qos: 1, properties: { messageExpiryInterval: 60 } });
    await publish(pub.client, t, 'without', { qos: 1 });
    const [a, b] = await sub.inbox.waitFor(2, t);
    const e = a.packet.properties?.messageExpiryInterval;
    assert.ok(e !== undefined && e > 0 && e <= 60, `forwarded expiry ${e}`);
    assert.equal(b.packet.properties?.messageExpiryInterval, undefined);
  });

  it('message expiry: an expired message is not delivered to a reconnecting session; a live one carries the reduced interval [MQTT-3.3.2-5]', async () => {
    const id = uid('exp');
    const t = utopic('exp-off');
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } };
    const a = await pool.connect(broker(), opts);
    await subscribe(a.client, t, { qos: 1 });
    await end(a.client);
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publish(pub.client, t, 'long', { qos: 1, properties: { messageExpiryInterval: 100 } });
    await delay(2500); // the expiry interval is what is under test
    const b = await pool.connect(broker(), opts);
    await subscribe(b.client, `${t}-sentinel`, { qos: 1 });
    await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
    const before = await b.inbox.waitForPayload('sentinel');
    assert.deepEqual(before.map((m) => m.payload.toString()), ['long'], 'the expired message is dropped');
    const e = before[0].packet.properties?.messageExpiryInterval;
    assert.ok(e !== undefined && e <= 99 && e > 0, `remaining expiry ${e}: must be the original minus the time waited`);
  });

  it('message expiry: an expired retained message is no longer sent to new subscribers [MQTT-3.3.2-5]', async () => {
    const t = utopic('exp-ret');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'short', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await delay(2500);
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, t, { qos: 1 });
    await publish(pub.client, t, 'sentinel', { qos: 1 });
    assert.deepEqual((await sub.inbox.waitForPayload('sentinel')).map((m) => m.payload.toString()), []);
  });

  // ------------------------------------------------------------------ forwarded properties
  it('payload format, content type, response topic, correlation data and user properties are forwarded unchanged [MQTT-3.3.2-4] [MQTT-3.3.2-17] [MQTT-3.3.2-18]', async () => {
    const t = utopic('props');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, t, { qos: 1 });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    const properties = {
      payloadFormatIndicator: true, contentType: 'application/json; charset=utf-8', responseTopic: `${t}/reply`,
      correlationData: Buffer.from([0, 1, 2, 255]), userProperties: { k1: 'v1', dup: ['first', 'second', 'third'], ünï: 'cødé' },
    };
    await publish(pub.client, t, '{"a":1}', { qos: 1, properties });
    const [m] = await sub.inbox.waitFor(1, t);
    const p = m.packet.properties ?? {};
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(p.contentType, properties.contentType);
    assert.equal(p.responseTopic, properties.responseTopic);
    assert.ok(Buffer.from(p.correlationData ?? []).equals(properties.correlationData), 'correlation data byte-exact');
    assert.deepEqual({ ...p.userProperties }, properties.userProperties, 'user properties, repeated keys in order');
  });

  // ------------------------------------------------------------------ subscription identifiers
  it('subscription identifiers: one copy carrying every matching identifier; none for a subscription without one [MQTT-3.3.4-3] [MQTT-3.3.4-4]', async () => {
    const t = utopic('subid');
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, `${t}/+`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await subscribe(sub.client, `${t}/#`, { qos: 1, properties: { subscriptionIdentifier: 268435455 } });
    await subscribe(sub.client, `${t}/x/plain`, { qos: 1 });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, `${t}/x`, 'both', { qos: 1 });
    await publish(pub.client, `${t}/x/y`, 'hash', { qos: 1 });
    await publish(pub.client, `${t}/x/plain`, 'plain-too', { qos: 1 });
    await publish(pub.client, `${t}/x`, 'sentinel', { qos: 1 });
    const before = await sub.inbox.waitForPayload('sentinel');
    const ids = (m: { packet: IPublishPacket }) => { const s = m.packet.properties?.subscriptionIdentifier; return s === undefined ? [] : ([] as number[]).concat(s).sort((a, b) => a - b); };
    const both = before.filter((m) => m.payload.toString() === 'both');
    assert.equal(both.length, 1, 'one copy');
    assert.deepEqual(ids(both[0]), [7, 268435455]);
    assert.deepEqual(ids(before.find((m) => m.payload.toString() === 'hash')!), [268435455]);
    const plain = before.filter((m) => m.payload.toString() === 'plain-too');
    assert.equal(plain.length, 1);
    assert.deepEqual(ids(plain[0]), [268435455], 'only the identifier of the subscription that has one');
  });

  it('subscription identifiers: carried on retained messages sent at subscribe; replaced on re-subscribe', async () => {
    const t = utopic('subid-ret');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'r', { qos: 1, retain: true });
    const sub = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sub.client, t, { qos: 1, properties: { subscriptionIdentifier: 3 } });
    const [r] = await sub.inbox.waitFor(1, t);
    assert.deepEqual([].concat(r.packet.properties?.subscriptionIdentifier as never ?? []), [3]);
    await subscribe(sub.client, t, { qos: 1, rh: 2, properties: { subscriptionIdentifier: 4 } });
    await publish(pub.client, t, 'live', { qos: 1 });
    const got = await sub.inbox.waitFor(2, t);
    assert.deepEqual([].concat(got[1].packet.properties?.subscriptionIdentifier as never ?? []), [4]);
  });

  it('per-subscriber properties are never shared between subscribers of the same message (encode-once must not leak ids, aliases, RETAIN)', async () => {
    const t = utopic('isolate');
    // All QoS 0 to the same topic: the case where one encoded buffer could be reused.
    const withId = await pool.rawConnected(broker(), 5, { properties: { topicAliasMaximum: 5 } });
    withId.raw.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 99 }, subscriptions: [{ topic: t, qos: 0, rap: true }] });
    await withId.raw.expect('suback');
    const plain = await pool.rawConnected(broker(), 5);
    plain.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] });
    await plain.raw.expect('suback');
    const v4 = await pool.rawConnected(broker(), 4);
    v4.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] });
    await v4.raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'r1', { retain: true, properties: { contentType: 'c' } });
    await publish(pub.client, t, 'r2', { retain: true, properties: { contentType: 'c' } });
    const a = [await withId.raw.expect<IPublishPacket>('publish'), await withId.raw.expect<IPublishPacket>('publish')];
    const b = [await plain.raw.expect<IPublishPacket>('publish'), await plain.raw.expect<IPublishPacket>('publish')];
    const c = [await v4.raw.expect<IPublishPacket>('publish'), await v4.raw.expect<IPublishPacket>('publish')];
    for (const p of a) { assert.deepEqual([].concat(p.properties?.subscriptionIdentifier as never ?? []), [99]); assert.equal(p.retain, true, 'RAP=1 keeps RETAIN'); assert.equal(p.properties?.contentType, 'c'); }
    for (const p of b) {
      assert.equal(p.properties?.subscriptionIdentifier, undefined, 'no identifier leaked from the other subscriber');
      assert.equal(p.properties?.topicAlias, undefined, 'no alias to a client that allowed none');
      assert.equal(p.topic, t);
      assert.equal(p.retain, false, 'RAP=0 clears RETAIN');
      assert.equal(p.properties?.contentType, 'c');
    }
    for (const p of c) { assert.equal(p.topic, t); assert.equal(p.retain, false); assert.deepEqual(p.payload.toString().slice(0, 1), 'r'); }
  });

  it('subscription identifiers and properties travel with messages queued for an offline session', async () => {
    const id = uid('subid-off');
    const t = utopic('subid-off');
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } };
    const a = await pool.connect(broker(), opts);
    await subscribe(a.client, t, { qos: 1, properties: { subscriptionIdentifier: 5 } });
    await end(a.client);
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'queued', { qos: 1, properties: { contentType: 'text/x', userProperties: { q: '1' }, correlationData: Buffer.from('c') } });
    const b = await pool.connect(broker(), opts);
    const [m] = await b.inbox.waitFor(1, t);
    const p = m.packet.properties ?? {};
    assert.deepEqual([].concat(p.subscriptionIdentifier as never ?? []), [5]);
    assert.equal(p.contentType, 'text/x');
    assert.deepEqual({ ...p.userProperties }, { q: '1' });
    assert.ok(Buffer.from(p.correlationData ?? []).equals(Buffer.from('c')));
  });

  // ------------------------------------------------------------------ no local / RAP / retain handling
  it('no local: a client does not receive its own messages on that subscription; others\' messages arrive [MQTT-3.8.3-3]', async () => {
    const t = utopic('nl');
    const a = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(a.client, t, { qos: 1, nl: true });
    await subscribe(a.client, `${t}-sentinel`, { qos: 1 });
    const b = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(a.client, t, 'own', { qos: 1 });
    await publish(b.client, t, 'other', { qos: 1 });
    await publish(b.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
    await a.inbox.waitForPayload('sentinel');
    assert.deepEqual(a.inbox.on(t).map((m) => m.payload.toString()), ['other']);
  });

  it('retain as published: RAP=1 keeps RETAIN=1 on live delivery, RAP=0 clears it [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async () => {
    const t = utopic('rap');
    const keep = await pool.connect(broker(), { protocolVersion: 5 });
    const clear = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(keep.client, t, { qos: 1, rap: true });
    await subscribe(clear.client, t, { qos: 1, rap: false });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'r', { qos: 1, retain: true });
    await publish(pub.client, t, 'n', { qos: 1, retain: false });
    const k = await keep.inbox.waitFor(2, t);
    const c = await clear.inbox.waitFor(2, t);
    assert.deepEqual(k.map((m) => m.packet.retain), [true, false]);
    assert.deepEqual(c.map((m) => m.packet.retain), [false, false]);
  });

  it('retain handling 0: retained messages sent on every subscribe; 1: only when the subscription is new; 2: never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async () => {
    const t = utopic('rh');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'kept', { qos: 1, retain: true });
    const counts: number[] = [];
    for (const rh of [0, 1, 2] as const) {
      const s = await pool.connect(broker(), { protocolVersion: 5 });
      await subscribe(s.client, t, { qos: 1, rh });
      await subscribe(s.client, t, { qos: 1, rh });
      await publish(pub.client, t, `sentinel-${rh}`, { qos: 1 });
      const before = await s.inbox.waitForPayload(`sentinel-${rh}`);
      assert.ok(before.every((m) => m.payload.toString() === 'kept' && m.packet.retain), `rh ${rh}: only the retained message before the sentinel`);
      counts.push(before.length);
    }
    assert.deepEqual(counts, [2, 1, 0], 'retained copies received for rh 0, 1, 2 after two identical SUBSCRIBEs');
  });

  // ------------------------------------------------------------------ maximum packet size
  it('maximum packet size, broker to client: a message larger than the client allows is not sent; the client stays connected [MQTT-3.1.2-24] [MQTT-3.1.2-25]', async () => {
    const t = utopic('mps');
    const sub = await pool.connect(broker(), { protocolVersion: 5, properties: { maximumPacketSize: 256 } });
    await subscribe(sub.client, t, { qos: 1 });
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, Buffer.alloc(1000, 1), { qos: 1 });
    await publish(pub.client, t, Buffer.alloc(1000, 2), { qos: 0 });
    await publish(pub.client, t, 'sentinel', { qos: 1 });
    const before = await sub.inbox.waitForPayload('sentinel');
    assert.deepEqual(before.map((m) => m.payload.length), [], 'oversize messages are discarded');
    assert.equal(sub.client.connected, true);
  });

  it('maximum packet size, broker to client: an oversize retained message is skipped on subscribe, smaller ones still come', async () => {
    const t = utopic('mpsret');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, `${t}/big`, Buffer.alloc(2000, 3), { qos: 1, retain: true });
    await publish(pub.client, `${t}/small`, 'small', { qos: 1, retain: true });
    const sub = await pool.connect(broker(), { protocolVersion: 5, properties: { maximumPacketSize: 512 } });
    await subscribe(sub.client, `${t}/+`, { qos: 1 });
    await publish(pub.client, `${t}/small`, 'sentinel', { qos: 1 });
    const before = await sub.inbox.waitForPayload('sentinel');
    assert.deepEqual(before.map((m) => m.payload.toString()), ['small']);
    assert.equal(sub.client.connected, true);
  });

  it('maximum packet size, broker to client: measured on the whole packet (a payload that fits alone but not with its properties is dropped)', async () => {
    const t = utopic('mps2');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { maximumPacketSize: 128 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 0 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, Buffer.alloc(100, 1), { properties: { userProperties: { pad: 'x'.repeat(60) } } });
    await publish(pub.client, t, 'sentinel');
    const p = await raw.expect<IPublishPacket>('publish');
    assert.equal(p.payload.toString(), 'sentinel');
  });

  // ------------------------------------------------------------------ request / problem information
  it('request response information 0 (default): no Response Information in CONNACK [MQTT5-3.1.2-28]; 1: fleetmq/response/<client id> (§3.2.2.3.15)', async () => {
    const a = await pool.rawConnected(broker(), 5);
    assert.equal(a.connack.properties?.responseInformation, undefined);
    // Asked for, the broker answers with a response topic root unique to the client (workers/handlers/connect.ts).
    const id = uid('rri');
    const b = await pool.rawConnected(broker(), 5, { clientId: id, properties: { requestResponseInformation: true } });
    assert.equal(b.connack.properties?.responseInformation, `fleetmq/response/${id}`);
  });

  it('request problem information 0: no Reason String or User Property on a failed SUBACK [MQTT-3.1.2-29]', async () => {
    const t = utopic('rpi');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { requestProblemInformation: false } });
    raw.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: `${t}/#/bad`, qos: 0 }] });
    const p = await raw.next('SUBACK (or DISCONNECT)');
    if (p.cmd === 'suback') {
      const sa = p as ISubackPacket;
      assert.equal(sa.properties?.reasonString, undefined);
      assert.equal(sa.properties?.userProperties, undefined);
    } else {
      assert.equal(p.cmd, 'disconnect', 'a DISCONNECT may carry a reason string');
    }
  });

  // ------------------------------------------------------------------ assigned client id
  it('assigned client identifier: the assigned id names a resumable session [MQTT-3.2.2-16]', async () => {
    const t = utopic('assigned');
    // Raw bytes: mqtt.js and mqtt-packet refuse an empty id without clean start.
    // CONNECT v5, flags 0 (clean start off), keepalive 60, properties: session expiry 60, client id "".
    const raw = await pool.raw(broker(), 5);
    raw.write(Buffer.from('101200044d5154540500003c05110000003c0000', 'hex'));
    const a = { raw, connack: await raw.expect<import('mqtt-packet').IConnackPacket>('connack') };
    assert.equal(a.connack.reasonCode ?? 0, 0);
    const id = a.connack.properties?.assignedClientIdentifier;
    assert.ok(id, 'Assigned Client Identifier');
    a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await a.raw.expect('suback');
    a.raw.send({ cmd: 'disconnect', reasonCode: 0 });
    await a.raw.expectClose();
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'for-you', { qos: 1 });
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(b.connack.sessionPresent, true);
    await b.inbox.waitForPayload('for-you');
  });

  // ------------------------------------------------------------------ AUTH
  it('AUTH on a connection that did not start enhanced authentication: protocol error, DISCONNECT 0x82 (if any) then close [MQTT-4.12.0-?] 4.12', async () => {
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('x') } });
    const rest = await raw.expectClose('the broker to close after an unexpected AUTH');
    for (const p of rest) {
      assert.equal(p.cmd, 'disconnect');
      assert.equal((p as { reasonCode?: number }).reasonCode, 0x82);
    }
  });

  it('CONNECT with an authentication method the broker does not support: CONNACK 0x8C (or 0x87), then close [MQTT-4.12.0-1]', async () => {
    const raw = await pool.raw(broker(), 5);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: uid('auth'), clean: true, keepalive: 60, properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    const ack = await raw.expect<import('mqtt-packet').IConnackPacket>('connack');
    assert.ok([0x8c, 0x87].includes(ack.reasonCode ?? 0), `reason 0x${(ack.reasonCode ?? 0).toString(16)}`);
    await raw.expectClose();
  });
});

eachWorkerCount('09 v5 properties with --max-packet-size 1000', (broker) => {
  const pool = clientPool();

  it('CONNACK advertises Maximum Packet Size 1000 [3.2.2.3.6]', async () => {
    const { connack } = await pool.rawConnected(broker(), 5);
    assert.equal(connack.properties?.maximumPacketSize, 1000);
  });

  it('a packet within the limit is accepted; a larger one -> DISCONNECT 0x95 then close [MQTT-3.2.2-?] 3.2.2.3.6', async () => {
    const t = utopic('big');
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.send(pubPacket(t, 'x'.repeat(900), {}, 1, 1));
    await raw.expect('puback');
    raw.send(pubPacket(t, 'x'.repeat(2000), {}, 1, 2));
    const rest = await raw.expectClose('the broker to disconnect an oversize packet');
    assert.equal(rest.length, 1, `expected DISCONNECT 0x95, got ${raw.describe()}`);
    assert.equal(rest[0].cmd, 'disconnect');
    assert.equal((rest[0] as { reasonCode?: number }).reasonCode, 0x95, 'Packet too large');
  });

  it('v4: a packet over the limit closes the connection', async () => {
    const { raw } = await pool.rawConnected(broker(), 4);
    raw.send({ cmd: 'publish', topic: utopic('big4'), payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false });
    const rest = await raw.expectClose();
    assert.deepEqual(rest, []);
  });

  it('the oversize check does not wait for the whole packet: a header announcing 10 MB is refused at once', async () => {
    const { raw } = await pool.rawConnected(broker(), 5);
    raw.write([0x30, 0x80, 0x80, 0x80, 0x05, 0x00, 0x01, 0x74]); // PUBLISH, remaining length 10,485,760, then 3 bytes
    await raw.expectClose('the broker to refuse an announced 10 MB packet without reading it');
  });
}, { args: ['--max-packet-size', '1000'] });
