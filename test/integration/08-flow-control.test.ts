// 08 flow control: the broker honours the client's Receive Maximum on outbound QoS 1/2
// (5.0) and --max-inflight (3.1.1), advertises its own Receive Maximum and disconnects a client
// that exceeds it with 0x93, and bounds offline queues (--max-queued-messages / -bytes).
//
// "Held back" is checked with a QoS 0 sentinel published after the QoS 1 burst: QoS 0 is not
// subject to the in-flight window, so when the sentinel arrives the broker has processed the
// whole burst; any QoS 1 message beyond the window would have been sent before it.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IPublishPacket, IConnectPacket } from 'mqtt-packet';
import { uid, utopic } from '../helpers/ids';
import { Version } from '../helpers/raw-client';
import { clientPool, publish, subscribe, end } from '../helpers/clients';
import { eachWorkerCount, BrokerCtx } from '../helpers/suite';

/**
 * Subscribes a raw client (QoS 1) to `t`, publishes `n` QoS 1 messages then a QoS 0 sentinel from
 * another client, and checks that at most `window` QoS 1 messages are unacknowledged at any time
 * and that all `n` arrive in order as the raw client acknowledges them one by one.
 */
async function checkWindow(pool: ReturnType<typeof clientPool>, broker: BrokerCtx, v: Version, connect: Partial<IConnectPacket>, window: number, n: number): Promise<void> {
  const t = utopic('win');
  const { raw } = await pool.rawConnected(broker(), v, connect);
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
  await raw.expect('suback');
  const pub = await pool.connect(broker(), { protocolVersion: 5 });
  for (let i = 0; i < n; i++) await publish(pub.client, t, `m${i}`, { qos: 1 });
  await publish(pub.client, t, 'sentinel', { qos: 0 });

  const unacked: IPublishPacket[] = [];
  const got: string[] = [];
  let sentinel = false;
  const take = async () => {
    const p = await raw.expect<IPublishPacket>('publish');
    if (p.qos === 0) { assert.equal(p.payload.toString(), 'sentinel'); sentinel = true; return; }
    unacked.push(p);
    got.push(p.payload.toString());
    assert.ok(unacked.length <= window, `${unacked.length} unacknowledged QoS 1 messages in flight; the window is ${window} [MQTT-3.3.4-9]`);
  };
  while (!sentinel) await take();
  assert.equal(unacked.length, Math.min(window, n), `exactly the window (${window}) is sent before acknowledgements`);
  while (got.length < n) {
    const p = unacked.shift()!;
    raw.send({ cmd: 'puback', messageId: p.messageId });
    await take();
  }
  for (const p of unacked) raw.send({ cmd: 'puback', messageId: p.messageId });
  assert.deepEqual(got, [...Array(n).keys()].map((i) => `m${i}`), 'all messages, in order');
  await raw.ping();
}

eachWorkerCount('08 flow control', (broker) => {
  const pool = clientPool();

  it('v5: outbound QoS 1 honours the client Receive Maximum (2) [MQTT-3.3.4-9]', async () => {
    await checkWindow(pool, broker, 5, { properties: { receiveMaximum: 2 } }, 2, 8);
  });

  it('v5: Receive Maximum 1 serialises delivery', async () => {
    await checkWindow(pool, broker, 5, { properties: { receiveMaximum: 1 } }, 1, 4);
  });

  it('v5: QoS 2 counts against Receive Maximum until PUBCOMP [MQTT-3.3.4-9]', async () => {
    const t = utopic('win2');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 2 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'a', { qos: 2 });
    await publish(pub.client, t, 'b', { qos: 2 });
    await publish(pub.client, t, 'sentinel', { qos: 0 });
    const a = await raw.expect<IPublishPacket>('publish');
    assert.equal(a.payload.toString(), 'a');
    const s = await raw.expect<IPublishPacket>('publish');
    assert.equal(s.payload.toString(), 'sentinel', 'b must wait for a to complete');
    raw.send({ cmd: 'pubrec', messageId: a.messageId });
    await raw.expect('pubrel');
    raw.send({ cmd: 'pubcomp', messageId: a.messageId });
    const b = await raw.expect<IPublishPacket>('publish');
    assert.equal(b.payload.toString(), 'b');
  });

  it('v5: a message dropped for the client\'s Maximum Packet Size does not hold a Receive Maximum slot', async () => {
    const t = utopic('dropslot');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { receiveMaximum: 1, maximumPacketSize: 256 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, Buffer.alloc(1000, 1), { qos: 1 });
    for (let i = 0; i < 3; i++) await publish(pub.client, t, `small${i}`, { qos: 1 });
    for (let i = 0; i < 3; i++) {
      const p = await raw.expect<IPublishPacket>('publish');
      assert.equal(p.payload.toString(), `small${i}`);
      raw.send({ cmd: 'puback', messageId: p.messageId });
    }
  });

  it('v5: messages waiting behind a full Receive Maximum window still expire [MQTT-3.3.2-5]', async () => {
    const t = utopic('qexp');
    const { raw } = await pool.rawConnected(broker(), 5, { properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await raw.expect('suback');
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'first', { qos: 1 });
    await publish(pub.client, t, 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publish(pub.client, t, 'long', { qos: 1, properties: { messageExpiryInterval: 100 } });
    const first = await raw.expect<IPublishPacket>('publish');
    assert.equal(first.payload.toString(), 'first');
    await new Promise((r) => setTimeout(r, 2500)); // the expiry interval is what is under test
    raw.send({ cmd: 'puback', messageId: first.messageId });
    const next = await raw.expect<IPublishPacket>('publish');
    assert.equal(next.payload.toString(), 'long', 'the expired message is skipped');
    const e = next.properties?.messageExpiryInterval;
    assert.ok(e !== undefined && e <= 99, `remaining expiry ${e}`);
  });

  it('v5: CONNACK Receive Maximum, if present, is > 0; sending up to it is fine', async () => {
    const { raw, connack } = await pool.rawConnected(broker(), 5);
    const rm = connack.properties?.receiveMaximum ?? 65535;
    assert.ok(rm > 0);
    const n = Math.min(rm, 20);
    for (let i = 1; i <= n; i++) raw.send({ cmd: 'publish', topic: utopic('rm'), payload: Buffer.from('x'), qos: 2, messageId: i, dup: false, retain: false });
    for (let i = 1; i <= n; i++) await raw.expect('pubrec');
    await raw.ping();
  });
});

eachWorkerCount('08 flow control with --receive-maximum 3', (broker) => {
  const pool = clientPool();

  it('v5: CONNACK advertises Receive Maximum 3 [MQTT-3.2.2-?] 3.2.2.3.3', async () => {
    const { connack } = await pool.rawConnected(broker(), 5);
    assert.equal(connack.properties?.receiveMaximum, 3);
  });

  it('v5: three unacknowledged QoS 2 PUBLISH are fine, a fourth -> DISCONNECT 0x93 [MQTT-3.3.4-8]', async () => {
    const { raw } = await pool.rawConnected(broker(), 5);
    const t = utopic('over');
    for (let i = 1; i <= 3; i++) raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('x'), qos: 2, messageId: i, dup: false, retain: false });
    for (let i = 1; i <= 3; i++) await raw.expect('pubrec');
    await raw.ping();
    raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('x'), qos: 2, messageId: 4, dup: false, retain: false });
    const rest = await raw.expectClose('the broker to disconnect a client exceeding Receive Maximum');
    assert.equal(rest.length, 1, `expected one DISCONNECT, got ${raw.describe()}`);
    assert.equal(rest[0].cmd, 'disconnect');
    assert.equal((rest[0] as { reasonCode?: number }).reasonCode, 0x93, 'Receive Maximum exceeded');
  });

  it('v5: completing a QoS 2 flow frees its slot', async () => {
    const { raw } = await pool.rawConnected(broker(), 5);
    const t = utopic('free');
    for (let i = 1; i <= 3; i++) raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('x'), qos: 2, messageId: i, dup: false, retain: false });
    for (let i = 1; i <= 3; i++) await raw.expect('pubrec');
    raw.send({ cmd: 'pubrel', messageId: 1 });
    await raw.expect('pubcomp');
    raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('x'), qos: 2, messageId: 9, dup: false, retain: false });
    await raw.expect('pubrec');
    await raw.ping();
  });
}, { args: ['--receive-maximum', '3'] });

eachWorkerCount('08 flow control with --max-inflight 2 --max-queued-messages 5', (broker) => {
  const pool = clientPool();

  it('v4: outbound QoS 1 in flight is limited by --max-inflight (2)', async () => {
    await checkWindow(pool, broker, 4, {}, 2, 6);
  });

  for (const v of [4, 5] as const) {
    it(`v${v}: an offline session queues at most --max-queued-messages (5) QoS 1 messages; the broker stays healthy`, async () => {
      const id = uid('q');
      const t = utopic('q');
      const opts = { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const a = await pool.connect(broker(), opts);
      await subscribe(a.client, t, { qos: 1 });
      await end(a.client);
      const pub = await pool.connect(broker(), { protocolVersion: 5 });
      for (let i = 0; i < 20; i++) await publish(pub.client, t, `m${i}`, { qos: 1 });
      const b = await pool.connect(broker(), opts);
      assert.equal(b.connack.sessionPresent, true);
      await subscribe(b.client, `${t}-sentinel`, { qos: 1 });
      await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
      const before = await b.inbox.waitForPayload('sentinel');
      const queued = before.filter((m) => m.topic === t);
      assert.ok(queued.length >= 1 && queued.length <= 5, `queued ${queued.length} messages; the bound is 5`);
      const seq = queued.map((m) => Number(m.payload.toString().slice(1)));
      assert.deepEqual(seq, [...seq].sort((x, y) => x - y), 'kept messages stay in order');
    });
  }
}, { args: ['--max-inflight', '2', '--max-queued-messages', '5'] });

eachWorkerCount('08 flow control with --max-queued-bytes 1000', (broker) => {
  const pool = clientPool();

  it('v4: an offline session queues at most --max-queued-bytes of payload', async () => {
    const id = uid('qb');
    const t = utopic('qb');
    const opts = { protocolVersion: 4 as const, clientId: id, clean: false };
    const a = await pool.connect(broker(), opts);
    await subscribe(a.client, t, { qos: 1 });
    await end(a.client);
    const pub = await pool.connect(broker(), { protocolVersion: 4 });
    for (let i = 0; i < 20; i++) await publish(pub.client, t, Buffer.alloc(200, i), { qos: 1 });
    const b = await pool.connect(broker(), opts);
    await subscribe(b.client, `${t}-sentinel`, { qos: 1 });
    await publish(pub.client, `${t}-sentinel`, 'sentinel', { qos: 1 });
    const before = await b.inbox.waitForPayload('sentinel');
    const bytes = before.filter((m) => m.topic === t).reduce((s, m) => s + m.payload.length, 0);
    assert.ok(bytes > 0 && bytes <= 1000, `${bytes} payload bytes queued; the bound is 1000`);
  });
}, { args: ['--max-queued-bytes', '1000'], workers: [3] });

