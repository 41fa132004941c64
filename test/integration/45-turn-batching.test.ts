// 45 batching across connections: a worker routes the PUBLISHes of every connection that read in
// one loop turn together (one native match), and reads plain TCP into its own buffer. What must
// hold whatever the batching: every publisher's order [MQTT-4.6.0-6] and its acknowledgements'
// order [MQTT-4.6.0-2], and frames split across reads anywhere.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IPublishPacket, IPubackPacket } from 'mqtt-packet';
import { utopic } from '../helpers/ids';
import { encode, connectPacket, RawClient } from '../helpers/raw-client';
import { clientPool } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';
import { waitUntil } from '../helpers/wait';
import { metric } from '../helpers/metrics';

const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

eachWorkerCount('45 turn batching', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    for (const qos of [0, 1] as const) {
      it(`v${v} QoS ${qos}: 40 publishers interleaved into one subscriber: each publisher's messages all arrive, in order, and its PUBACKs in order [MQTT-4.6.0-6] [MQTT-4.6.0-2]`, async () => {
        const t = utopic('fanin');
        const sub = await pool.rawConnected(broker(), v);
        sub.raw.autoAck = true;
        await sub.raw.subscribe(`${t}/+`, qos);
        const P = 40;
        const ROUNDS = 6;
        const PER = 10;
        const pubs: RawClient[] = [];
        for (let p = 0; p < P; p++) pubs.push((await pool.rawConnected(broker(), v)).raw);
        // Each round every publisher writes PER messages in one write, all in the same tick: the
        // broker reads many connections per loop turn, so its batches span connections.
        for (let r = 0; r < ROUNDS; r++) {
          for (let p = 0; p < P; p++) {
            const frames: Buffer[] = [];
            for (let j = 0; j < PER; j++) {
              const i = r * PER + j;
              frames.push(encode({ cmd: 'publish', topic: `${t}/${p}`, payload: Buffer.from(`${p}:${i}`), qos, messageId: qos ? i + 1 : undefined, dup: false, retain: false } as IPublishPacket, v));
            }
            pubs[p].write(Buffer.concat(frames));
          }
          await yieldTurn();
        }
        const total = P * ROUNDS * PER;
        await waitUntil(() => sub.raw.publishes().length >= total, () => `all ${total} messages at the subscriber (got ${sub.raw.publishes().length})`);
        const seen = new Map<number, number[]>();
        for (const m of sub.raw.publishes()) {
          const [p, i] = m.payload.toString().split(':').map(Number);
          assert.equal(m.topic, `${t}/${p}`);
          let l = seen.get(p);
          if (!l) seen.set(p, l = []);
          l.push(i);
        }
        const want = [...Array(ROUNDS * PER).keys()];
        for (let p = 0; p < P; p++) assert.deepEqual(seen.get(p), want, `publisher ${p}: every message once, in order`);
        if (qos === 0) {
          // The routing passes are counted: each carried more than one message on average here.
          const received = await metric(broker(), 'fleetmq_messages_received_total');
          const passes = await metric(broker(), 'fleetmq_routing_passes_total');
          assert.ok(passes >= 1 && passes < received, `routing passes ${passes} for ${received} messages received`);
        }
        if (qos === 1) {
          for (let p = 0; p < P; p++) {
            const raw = pubs[p];
            await waitUntil(() => raw.packets.filter((x) => x.cmd === 'puback').length >= ROUNDS * PER, `publisher ${p}: every PUBACK`);
            const ids = raw.packets.filter((x) => x.cmd === 'puback').map((x) => (x as IPubackPacket).messageId);
            assert.deepEqual(ids, want.map((i) => i + 1), `publisher ${p}: PUBACKs in the order of its PUBLISHes`);
          }
        }
      });
    }

    it(`v${v}: a PUBLISH split across two reads at every byte boundary is decoded, with a PINGREQ behind it`, async () => {
      const t = utopic('split');
      const sub = await pool.rawConnected(broker(), v);
      sub.raw.autoAck = true;
      await sub.raw.subscribe(t, 1);
      const raw = await pool.raw(broker(), v);
      raw.write(encode(connectPacket(v), v));
      await raw.expect('connack');
      const payload = Buffer.alloc(150, 0x5a);
      const frameOf = (k: number) => Buffer.concat([
        encode({ cmd: 'publish', topic: t, payload: Buffer.concat([Buffer.from(`${k}:`), payload]), qos: 1, messageId: k + 1, dup: false, retain: false,
          ...(v === 5 ? { properties: { userProperties: { k: String(k) } } } : {}) } as IPublishPacket, v),
        encode({ cmd: 'pingreq' }, v),
      ]);
      const len = frameOf(0).length;
      for (let k = 1; k < len; k++) {
        const bytes = frameOf(k);
        raw.write(bytes.subarray(0, k));
        // Let the broker read the first part alone (its own read, most of the time), then the rest.
        await yieldTurn();
        await yieldTurn();
        raw.write(bytes.subarray(k));
      }
      await waitUntil(() => raw.packets.filter((x) => x.cmd === 'pingresp').length >= len - 1, 'a PINGRESP for every split frame');
      const acks = raw.packets.filter((x) => x.cmd === 'puback').map((x) => (x as IPubackPacket).messageId);
      assert.deepEqual(acks, [...Array(len - 1).keys()].map((k) => k + 2), 'a PUBACK per frame, in order');
      await waitUntil(() => sub.raw.publishes(t).length >= len - 1, 'every split PUBLISH at the subscriber');
      const got = sub.raw.publishes(t);
      got.forEach((m, i) => {
        const k = i + 1;
        assert.ok(Buffer.from(m.payload).equals(Buffer.concat([Buffer.from(`${k}:`), payload])), `payload of the frame split at ${k} intact`);
        if (v === 5) assert.deepEqual({ ...m.properties?.userProperties }, { k: String(k) });
      });
    });
  }
});
