// 03 publish / QoS: QoS 0, 1, 2 flows in both directions, exactly-once inbound QoS 2, ordering,
// packet identifiers, DUP on redelivery, retransmission of unacknowledged messages on reconnect,
// payload integrity. Publisher and subscriber on different workers with --workers 3.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IPublishPacket, IPubrelPacket } from 'mqtt-packet';
import { uid, utopic } from '../helpers/ids';
import { connackCode, encode, connectPacket } from '../helpers/raw-client';
import { clientPool, subscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('03 publish and QoS', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    const session = (id: string) => ({ clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) });

    it(`v${v}: QoS 1 publish is acknowledged with PUBACK carrying the same packet id [MQTT-4.3.2-2]`, async () => {
      const { raw } = await pool.rawConnected(broker(), v);
      raw.send({ cmd: 'publish', topic: utopic('q1'), payload: Buffer.from('x'), qos: 1, messageId: 4242, dup: false, retain: false });
      const ack = await raw.expect<import('mqtt-packet').IPubackPacket>('puback');
      assert.equal(ack.messageId, 4242);
    });

    it(`v${v}: QoS 2 inbound flow PUBLISH -> PUBREC, PUBREL -> PUBCOMP with the same packet id [MQTT-4.3.3-8] [MQTT-4.3.3-11]`, async () => {
      const { raw } = await pool.rawConnected(broker(), v);
      raw.send({ cmd: 'publish', topic: utopic('q2'), payload: Buffer.from('x'), qos: 2, messageId: 77, dup: false, retain: false });
      assert.equal((await raw.expect<import('mqtt-packet').IPubrecPacket>('pubrec')).messageId, 77);
      raw.send({ cmd: 'pubrel', messageId: 77 });
      assert.equal((await raw.expect<import('mqtt-packet').IPubcompPacket>('pubcomp')).messageId, 77);
    });

    it(`v${v}: QoS 2 inbound is exactly once: a DUP re-send before PUBREL is not delivered again [MQTT-4.3.3-10]`, async () => {
      const t = utopic('once');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 2 });
      const { raw } = await pool.rawConnected(broker(), v);
      const pkt = (dup: boolean, payload: string, id: number): IPublishPacket => ({ cmd: 'publish', topic: t, payload: Buffer.from(payload), qos: 2, messageId: id, dup, retain: false });
      raw.send(pkt(false, 'once', 10));
      await raw.expect('pubrec');
      raw.send(pkt(true, 'once', 10));
      await raw.expect('pubrec');
      raw.send({ cmd: 'pubrel', messageId: 10 });
      await raw.expect('pubcomp');
      // After PUBCOMP the id is free again: the same id now carries a new message [MQTT-4.3.3-10].
      raw.send(pkt(false, 'again', 10));
      await raw.expect('pubrec');
      raw.send({ cmd: 'pubrel', messageId: 10 });
      await raw.expect('pubcomp');
      const before = await sub.inbox.waitForPayload('again');
      assert.deepEqual(before.map((m) => m.payload.toString()), ['once']);
    });

    it(`v${v}: messages from one publisher arrive in order, per QoS, across workers [MQTT-4.6.0-6]`, async () => {
      const t = utopic('order');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, { [`${t}/0`]: { qos: 0 }, [`${t}/1`]: { qos: 1 }, [`${t}/2`]: { qos: 2 } });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const N = 200;
      // Pipelined in windows of 5 per QoS (15 in flight), under any receive maximum the broker may advertise.
      for (let i = 0; i < N; i += 5) {
        const sent: Promise<unknown>[] = [];
        for (let j = i; j < i + 5; j++) for (const q of [0, 1, 2] as const) sent.push(publish(pub.client, `${t}/${q}`, String(j), { qos: q }));
        await Promise.all(sent);
      }
      for (const q of [0, 1, 2]) {
        const got = await sub.inbox.waitFor(N, `${t}/${q}`);
        assert.deepEqual(got.map((m) => Number(m.payload.toString())), [...Array(N).keys()], `QoS ${q} order`);
      }
    });

    it(`v${v}: outbound QoS 1/2 packet ids are non-zero and unique among unacknowledged messages [MQTT-2.2.1-3]`, async () => {
      const t = utopic('ids');
      const { raw } = await pool.rawConnected(broker(), v);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${t}/#`, qos: 2 }] });
      await raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      for (let i = 0; i < 10; i++) await publish(pub.client, `${t}/${i % 2 ? 'a' : 'b'}`, String(i), { qos: (1 + (i % 2)) as 1 | 2 });
      const ids = new Set<number>();
      for (let i = 0; i < 10; i++) {
        // Never acknowledged; the broker may hold some back (receive maximum 65535 by default).
        const p = await raw.expect<IPublishPacket>('publish');
        assert.ok(p.messageId && p.messageId > 0, 'packet id non-zero');
        assert.ok(!ids.has(p.messageId!), `packet id ${p.messageId} reused while unacknowledged`);
        ids.add(p.messageId!);
      }
    });

    it(`v${v}: payloads arrive byte-exact: empty, all 256 byte values, 256 KiB`, async () => {
      const t = utopic('payload');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      const pub = await pool.connect(broker(), { protocolVersion: v });
      const bytes = Buffer.from([...Array(256).keys()]);
      const big = Buffer.alloc(256 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      await publish(pub.client, t, Buffer.alloc(0), { qos: 1 });
      await publish(pub.client, t, bytes, { qos: 1 });
      await publish(pub.client, t, big, { qos: 1 });
      const got = await sub.inbox.waitFor(3, t);
      assert.equal(got[0].payload.length, 0);
      assert.ok(got[1].payload.equals(bytes));
      assert.ok(got[2].payload.equals(big), 'big payload intact');
    });

    it(`v${v}: unacknowledged QoS 1 is re-sent on reconnect with DUP=1 and the same packet id [MQTT-4.4.0-1] [MQTT-3.3.1-1]`, async () => {
      const id = uid('redeliver');
      const t = utopic('redeliver');
      const a = await pool.rawConnected(broker(), v, session(id));
      a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
      await a.raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'unacked', { qos: 1 });
      const first = await a.raw.expect<IPublishPacket>('publish');
      assert.equal(first.dup, false, 'first delivery has DUP 0');
      a.raw.destroy(); // no PUBACK
      await a.raw.closedP;
      const b = await pool.rawConnected(broker(), v, session(id));
      assert.equal(b.connack.sessionPresent, true, 'session present');
      const again = await b.raw.expect<IPublishPacket>('publish');
      assert.equal(again.payload.toString(), 'unacked');
      assert.equal(again.dup, true, 'redelivery has DUP 1');
      assert.equal(again.messageId, first.messageId, 'same packet id');
      b.raw.send({ cmd: 'puback', messageId: again.messageId });
      await b.raw.ping();
    });

    it(`v${v}: QoS 2 outbound: after PUBREC, a reconnect re-sends PUBREL, not the PUBLISH [MQTT-4.4.0-1] [MQTT-4.3.3-?]`, async () => {
      const id = uid('rel');
      const t = utopic('rel');
      const a = await pool.rawConnected(broker(), v, session(id));
      a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 2 }] });
      await a.raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'q2', { qos: 2 });
      const p = await a.raw.expect<IPublishPacket>('publish');
      a.raw.send({ cmd: 'pubrec', messageId: p.messageId });
      const rel = await a.raw.expect<IPubrelPacket>('pubrel');
      assert.equal(rel.messageId, p.messageId);
      a.raw.destroy(); // no PUBCOMP
      await a.raw.closedP;
      const b = await pool.rawConnected(broker(), v, session(id));
      assert.equal(connackCode(b.connack), 0);
      const again = await b.raw.next('the re-sent PUBREL');
      assert.equal(again.cmd, 'pubrel', `expected PUBREL, got ${again.cmd}`);
      assert.equal(again.messageId, p.messageId);
      b.raw.send({ cmd: 'pubcomp', messageId: p.messageId });
      await b.raw.ping();
    });

    it(`v${v}: inbound QoS 2 state survives a reconnect: PUBLISH re-sent with DUP after PUBREC is not delivered twice; PUBREL completes it [MQTT-4.3.3-10] [MQTT-4.4.0-1]`, async () => {
      const id = uid('in2');
      const t = utopic('in2');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 2 });
      const a = await pool.rawConnected(broker(), v, session(id));
      a.raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('exactly-once'), qos: 2, messageId: 33, dup: false, retain: false });
      await a.raw.expect('pubrec');
      a.raw.destroy();
      await a.raw.closedP;
      const b = await pool.rawConnected(broker(), v, session(id));
      assert.equal(b.connack.sessionPresent, true);
      b.raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('exactly-once'), qos: 2, messageId: 33, dup: true, retain: false });
      await b.raw.expect('pubrec');
      b.raw.send({ cmd: 'pubrel', messageId: 33 });
      await b.raw.expect('pubcomp');
      b.raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('sentinel'), qos: 2, messageId: 34, dup: false, retain: false });
      await b.raw.expect('pubrec');
      b.raw.send({ cmd: 'pubrel', messageId: 34 });
      await b.raw.expect('pubcomp');
      const before = await sub.inbox.waitForPayload('sentinel');
      assert.deepEqual(before.map((m) => m.payload.toString()), ['exactly-once']);
    });

    it(`v${v}: a PUBACK${v === 5 ? ' with a failure reason code (0x80)' : ''} ends the flow: the message is not re-sent after reconnect [MQTT-4.3.2-4]`, async () => {
      const id = uid('ackd');
      const t = utopic('ackd');
      const a = await pool.rawConnected(broker(), v, session(id));
      a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
      await a.raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'acked', { qos: 1 });
      const p = await a.raw.expect<IPublishPacket>('publish');
      a.raw.send(v === 5 ? { cmd: 'puback', messageId: p.messageId, reasonCode: 0x80 } : { cmd: 'puback', messageId: p.messageId });
      await a.raw.ping();
      a.raw.destroy();
      await a.raw.closedP;
      const b = await pool.rawConnected(broker(), v, session(id));
      await publish(pub.client, t, 'sentinel', { qos: 1 });
      const next = await b.raw.expect<IPublishPacket>('publish');
      assert.equal(next.payload.toString(), 'sentinel', 'the acknowledged message must not come again');
    });

    it(`v${v}: a QoS 2 message is delivered once even when the subscriber acknowledges late`, async () => {
      const t = utopic('late');
      const { raw } = await pool.rawConnected(broker(), v);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 2 }] });
      await raw.expect('suback');
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'x', { qos: 2 });
      await publish(pub.client, t, 'y', { qos: 2 });
      const p1 = await raw.expect<IPublishPacket>('publish');
      const p2 = await raw.expect<IPublishPacket>('publish');
      assert.deepEqual([p1.payload.toString(), p2.payload.toString()], ['x', 'y']);
      for (const p of [p1, p2]) { raw.send({ cmd: 'pubrec', messageId: p.messageId }); assert.equal((await raw.expect('pubrel')).messageId, p.messageId); }
      for (const p of [p1, p2]) raw.send({ cmd: 'pubcomp', messageId: p.messageId });
      await raw.ping();
      assert.deepEqual(raw.pending().filter((x) => x.cmd === 'publish'), [], 'no further copies');
    });
  }

  for (const v of VERSIONS) {
    it(`v${v}: framing: packets written one byte at a time, and many packets in one write, are decoded (1-, 2- and 3-byte remaining lengths)`, async () => {
      const t = utopic('frame');
      const sub = await pool.connect(broker(), { protocolVersion: v });
      await subscribe(sub.client, t, { qos: 1 });
      const raw = await pool.raw(broker(), v);
      const sizes = [0, 1, 100, 127, 128, 300, 16383, 16384, 70000];
      const bytes = Buffer.concat([
        encode(connectPacket(v), v),
        ...sizes.map((n, i) => encode({ cmd: 'publish', topic: t, payload: Buffer.alloc(n, i + 1), qos: (i % 2) as 0 | 1, messageId: i + 1, dup: false, retain: false }, v)),
      ]);
      // First half byte by byte (a write per byte, yielding between), the rest in one write.
      const half = Math.floor(bytes.length / 2);
      for (let i = 0; i < Math.min(half, 400); i++) { raw.write(bytes.subarray(i, i + 1)); await new Promise((r) => setImmediate(r)); }
      raw.write(bytes.subarray(Math.min(half, 400)));
      await raw.expect('connack');
      const got = await sub.inbox.waitFor(sizes.length, t);
      assert.deepEqual(got.map((m) => m.payload.length), sizes);
      got.forEach((m, i) => assert.ok(m.payload.equals(Buffer.alloc(sizes[i], i + 1)), `payload ${i} intact`));
    });
  }

  it('many publishers to many wildcard subscribers across workers: every message exactly once, in per-publisher order (QoS 1)', async () => {
    const t = utopic('mesh');
    const subs = [];
    for (let i = 0; i < 4; i++) { const s = await pool.connect(broker(), { protocolVersion: (i % 2 ? 5 : 4) }); await subscribe(s.client, `${t}/+`, { qos: 1 }); subs.push(s); }
    const pubs = [];
    for (let i = 0; i < 4; i++) pubs.push(await pool.connect(broker(), { protocolVersion: (i % 2 ? 4 : 5) }));
    const N = 150;
    await Promise.all(pubs.map(async (p, k) => {
      for (let i = 0; i < N; i += 5) await Promise.all([0, 1, 2, 3, 4].map((j) => publish(p.client, `${t}/${k}`, String(i + j), { qos: 1 })));
    }));
    for (const s of subs) {
      await s.inbox.waitFor(4 * N);
      for (let k = 0; k < 4; k++) {
        assert.deepEqual(s.inbox.on(`${t}/${k}`).map((m) => Number(m.payload.toString())), [...Array(N).keys()], `publisher ${k}: all, once, in order`);
      }
    }
  });

  it('volume: 5000 pipelined QoS 1 messages reach subscribers on every worker, all and in order', async () => {
    const t = utopic('volume');
    const subs = [];
    for (let i = 0; i < 3; i++) { const s = await pool.connect(broker(), { protocolVersion: 5 }); await subscribe(s.client, t, { qos: 1 }); subs.push(s); }
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    const N = 5000;
    // mqtt.js keeps within the broker's Receive Maximum; windows of 50 keep memory flat.
    for (let i = 0; i < N; i += 50) await Promise.all([...Array(50).keys()].map((j) => publish(pub.client, t, String(i + j), { qos: 1 })));
    for (const s of subs) {
      const got = await s.inbox.waitFor(N, t, 30000);
      const seq = got.map((m) => Number(m.payload.toString()));
      const firstBad = seq.findIndex((x, i) => x !== i);
      assert.equal(firstBad, -1, `order/loss at index ${firstBad}: got ${seq.slice(Math.max(0, firstBad - 2), firstBad + 3)}`);
      assert.equal(got.length, N, 'no duplicates');
    }
  });

  it('large payloads across workers: 1000 KiB (just under the default 1 MiB packet limit) and 40 x 64 KiB QoS 1 messages arrive intact on every worker', async () => {
    const t = utopic('large');
    const subs = [];
    for (let i = 0; i < 3; i++) { const s = await pool.connect(broker(), { protocolVersion: 4 }); await subscribe(s.client, t, { qos: 1 }); subs.push(s); }
    const pub = await pool.connect(broker(), { protocolVersion: 4 });
    const mk = (n: number, seed: number) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 131 + seed) & 0xff; return b; };
    const msgs = [mk(1000 * 1024, 1), ...[...Array(40).keys()].map((k) => mk(64 * 1024, k + 2))];
    for (let i = 0; i < msgs.length; i += 10) await Promise.all(msgs.slice(i, i + 10).map((m) => publish(pub.client, t, m, { qos: 1 })));
    for (const s of subs) {
      const got = await s.inbox.waitFor(msgs.length, t, 30000);
      got.forEach((m, i) => assert.ok(m.payload.equals(msgs[i]), `message ${i} (${msgs[i].length} bytes) intact and in order`));
    }
  });

  it('v4 publisher -> v5 subscriber and v5 publisher -> v4 subscriber interoperate', async () => {
    const t = utopic('mixed');
    const s4 = await pool.connect(broker(), { protocolVersion: 4 });
    const s5 = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(s4.client, t, { qos: 1 });
    await subscribe(s5.client, t, { qos: 1 });
    const p4 = await pool.connect(broker(), { protocolVersion: 4 });
    const p5 = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(p4.client, t, 'from4', { qos: 1 });
    await publish(p5.client, t, 'from5', { qos: 1, properties: { userProperties: { k: 'v' }, contentType: 'text/plain' } });
    for (const s of [s4, s5]) {
      const got = await s.inbox.waitFor(2, t);
      assert.deepEqual(got.map((m) => m.payload.toString()).sort(), ['from4', 'from5']);
    }
    assert.equal(s4.inbox.on(t).find((m) => m.payload.toString() === 'from5')!.packet.properties, undefined, 'no v5 properties to a v3.1.1 client');
  });
});
