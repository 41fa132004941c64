// 21 crash: persistent subscribers (MQTT 3.1.1 and 5, subscribed
// at QoS 1 and QoS 2); QoS 1 publishers (mqtt.js: its publish callback fires on PUBACK) and QoS 2
// publishers (raw: PUBREC recorded exactly) publish numbered streams as fast as a window of 32
// allows; the broker is SIGKILLed mid-stream and restarted on the same data dir; subscribers
// resume their sessions (Clean Session 0 / Clean Start 0), QoS 2 publishers resume theirs and
// finish the flows that had their PUBREC (PUBREL → PUBCOMP). Then every message whose PUBACK
// (QoS 1) / PUBREC (QoS 2) reached its publisher before the kill must have reached every
// subscriber: at least once where the effective QoS is 1, exactly once where it is 2, in order
// per publisher (for QoS 1 the first occurrences are in order; duplicates are allowed).
// Variants: subscribers all offline during the stream; subscribers online during the kill;
// 1 and 3 workers; a second kill while the subscribers drain their restored queues; and one run
// with --durability fsync with a mix of online and offline.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mqtt from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import { waitUntil } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { subscribeOk, publish, end } from '../helpers/clients';
import { withDeployment, sessionStore, persistentOpts, Durability } from '../helpers/persist';
import { MqttQos1Stream, RawQos2Stream, StreamRecord, Delivery, checkStream, parseStreamPayload } from '../helpers/streams';

const WINDOW = 32;
/** Upper bound per publisher: 4 × MAX stays below the default per-session queue bound (10,000). */
const MAX = 2000;
/** The kill comes once every publisher has at least this many acks. */
const KILL_AT = 250;

const PUBLISHERS = [
  { name: 'p1', v: 4, qos: 1 },
  { name: 'p2', v: 5, qos: 1 },
  { name: 'p3', v: 4, qos: 2 },
  { name: 'p4', v: 5, qos: 2 },
] as const;
const SUBSCRIBERS = [
  { name: 's1', v: 4, qos: 1 },
  { name: 's2', v: 4, qos: 2 },
  { name: 's3', v: 5, qos: 2 },
  { name: 's4', v: 5, qos: 1 },
] as const;

type Mode = 'offline' | 'online' | 'mixed';

interface SubState {
  name: string; v: 4 | 5; qos: 1 | 2; id: string; online: boolean;
  /** mqtt.js QoS 2 receive state (PUBREC sent, PUBREL awaited), carried from one connection to the next. */
  store: mqtt.Store;
  got: Delivery[];
  stray: string[];
  clients: mqtt.MqttClient[];
}

function attach(client: mqtt.MqttClient, s: SubState): void {
  const conn = s.clients.length;
  s.clients.push(client);
  client.on('message', (_topic, payload, packet) => {
    const p = parseStreamPayload(payload);
    if (!p) { s.stray.push(payload.toString().slice(0, 40)); return; }
    s.got.push({ pub: p.pub, seq: p.seq, qos: (packet as IPublishPacket).qos, dup: !!(packet as IPublishPacket).dup, conn, pid: (packet as IPublishPacket).messageId });
  });
}

async function crashRun(workers: number, mode: Mode, durability: Durability, drainKill = false): Promise<void> {
  await withDeployment(workers, { durability }, async (d, c) => {
    await d.start();
    const base = utopic('crash');
    const subs: SubState[] = SUBSCRIBERS.map((s, i) => ({
      ...s, id: uid(s.name), online: mode === 'online' || (mode === 'mixed' && i % 2 === 0),
      store: sessionStore(), got: [], stray: [], clients: [],
    }));
    for (const s of subs) {
      const conn = await c.mqtt(d.port, { ...persistentOpts(s.v, s.id, false), incomingStore: s.store }, (cl) => attach(cl, s));
      await subscribeOk(conn.client, { [`${base}/#`]: { qos: s.qos } });
      if (!s.online) await end(conn.client);
    }

    const streams: Array<StreamRecord & { stop(): void }> = [];
    const qos2: RawQos2Stream[] = [];
    for (const p of PUBLISHERS) {
      const topic = `${base}/${p.name}`;
      if (p.qos === 1) {
        const conn = await c.mqtt(d.port, { protocolVersion: p.v, clientId: uid(p.name), clean: true });
        streams.push(new MqttQos1Stream(p.name, topic, conn.client, WINDOW, MAX));
      } else {
        const s = new RawQos2Stream(p.name, topic, p.v, uid(p.name), WINDOW, MAX);
        await s.connect(d.port, false);
        streams.push(s);
        qos2.push(s);
      }
    }
    for (const s of streams) (s as unknown as { start(): void }).start();
    const counts = () => streams.map((s) => `${s.name}: sent ${s.sent}, acked ${s.acked.size}`).join('; ');
    try {
      await waitUntil(() => streams.every((s) => s.acked.size >= KILL_AT), `every publisher to have ${KILL_AT} acks (${counts()})`, 60000);
      await d.down('SIGKILL');
    } finally {
      for (const s of streams) s.stop();
    }
    const atKill = counts();
    assert.ok(streams.some((s) => s.sent > s.acked.size || s.sent < MAX),
      `the kill came after every stream had finished (${atKill}): not a mid-stream kill; raise MAX`);
    for (const s of qos2) assert.deepEqual(s.protocolErrors, [], `${s.name} before the kill`);

    await d.start();
    const reconnectAll = async (what: string) => {
      await Promise.all(subs.map(async (s) => {
        const conn = await c.mqtt(d.port, { ...persistentOpts(s.v, s.id, true), incomingStore: s.store }, (cl) => attach(cl, s));
        assert.equal(conn.connack.sessionPresent, true, `${s.name} (v${s.v}, ${s.online ? 'online' : 'offline'} at the kill): Session Present ${what}`);
      }));
    };
    const base0 = subs.map((s) => s.got.length);
    const drained = () => subs.reduce((n, s, i) => n + s.got.length - base0[i], 0);
    await reconnectAll('after the restart');
    if (drainKill) {
      // A second SIGKILL while the subscribers drain their restored queues (as soon as 100
      // restored deliveries have arrived), and a second restart.
      await waitUntil(() => drained() >= 100, `100 restored deliveries after the first restart (got ${drained()})`, 30000);
      await d.down('SIGKILL');
      const atSecondKill = subs.map((s, i) => `${s.name} ${s.got.length - base0[i]}`).join(', ');
      await d.start();
      await reconnectAll(`after the second restart (killed while draining: ${atSecondKill} restored deliveries in)`);
    }
    for (const s of qos2) {
      const connack = await s.resume(d.port);
      assert.equal(connack.sessionPresent, true, `${s.name} (QoS 2 publisher): Session Present after the restart (its PUBREC'd flows are in the session)`);
      await s.publishOne(`${s.name}:end`);
      assert.deepEqual(s.protocolErrors, [], `${s.name} after the restart`);
    }
    for (const p of PUBLISHERS.filter((x) => x.qos === 1)) {
      const conn = await c.mqtt(d.port, { protocolVersion: p.v, clientId: uid(`${p.name}end`), clean: true });
      await publish(conn.client, `${base}/${p.name}`, `${p.name}:end`, { qos: 1 });
    }
    // Each publisher's end marker comes after all its earlier messages (order per publisher).
    const missingEnds = () => subs.flatMap((s) => PUBLISHERS.filter((p) => !s.got.some((g) => g.pub === p.name && g.seq === -1)).map((p) => `${s.name}<-${p.name}`));
    await waitUntil(() => missingEnds().length === 0,
      `every subscriber to receive every publisher's end marker after the restart (missing: ${missingEnds().join(', ')}; received: ${subs.map((s) => `${s.name} ${s.got.length}`).join(', ')}; at the kill: ${atKill})`, 60000);

    const problems: string[] = [];
    for (const s of subs) {
      if (s.stray.length) problems.push(`${s.name}: unexpected payloads ${s.stray.slice(0, 5).join(', ')}`);
      for (const p of PUBLISHERS) {
        const rec = streams.find((x) => x.name === p.name)!;
        const eff = Math.min(s.qos, p.qos);
        problems.push(...checkStream(`${s.name}(v${s.v},sub QoS ${s.qos},${s.online ? 'online' : 'offline'})`, rec, s.got, eff === 2));
        const wrongQos = s.got.filter((g) => g.pub === p.name && g.qos !== eff);
        if (wrongQos.length) problems.push(`${s.name} <- ${p.name}: ${wrongQos.length} deliveries at QoS ${wrongQos[0].qos}, expected ${eff}`);
      }
    }
    assert.deepEqual(problems, [], `after the kill (${atKill}) and restart:\n${problems.join('\n')}`);
  });
}

for (const workers of [1, 3]) {
  describe(`21 crash: SIGKILL mid-stream, restart on the same data dir [workers=${workers}]`, () => {
    it('subscribers offline during the stream: every acknowledged message reaches every subscriber (QoS 1 at least once, QoS 2 exactly once), in order', async () => {
      await crashRun(workers, 'offline', 'process');
    });
    it('subscribers online during the kill: the same guarantees across the two connections', async () => {
      await crashRun(workers, 'online', 'process');
    });
  });
}

describe('21 crash twice: SIGKILL mid-stream, then SIGKILL again while the subscribers drain their restored queues [workers=3]', () => {
  it('every message acknowledged before the first kill still arrives (QoS 1 at least once, QoS 2 exactly once), in order', async () => {
    await crashRun(3, 'offline', 'process', true);
  });
});

describe('21 crash with --durability fsync [workers=3]', () => {
  it('two subscribers online, two offline: every acknowledged message arrives, in order, QoS 2 once', async () => {
    await crashRun(3, 'mixed', 'fsync');
  });
});
