// workers/protocol/control-codec.ts: mqtt-packet through its public API only. A malformed
// control frame must not poison the next one (src/README.md, "Measured": mqtt-packet's parser is not fully
// reset after an error), and the normal path must not create parsers.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as mqttPacket from 'mqtt-packet';
import { parseFrame, parsersCreated, encode } from '../../workers/protocol/control-codec';

const gen = (p: mqttPacket.Packet, protocolVersion: number) => mqttPacket.generate(p, { protocolVersion } as Parameters<typeof mqttPacket.generate>[1]);

const connect = (protocolVersion: 4 | 5, clientId: string) => gen({
  cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: true, keepalive: 30, clientId,
  ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}),
} as mqttPacket.IConnectPacket, protocolVersion);

const subscribe = (protocolVersion: number, topic: string) => gen({
  cmd: 'subscribe', messageId: 7, subscriptions: [{ topic, qos: 1 }],
  ...(protocolVersion === 5 ? { properties: { subscriptionIdentifier: 3 } } : {}),
} as mqttPacket.ISubscribePacket, protocolVersion);

function ok(frame: Buffer, v: number): mqttPacket.Packet {
  const p = parseFrame(frame, v);
  assert.ok(!(p instanceof Error), `expected a packet, got ${p instanceof Error ? p.message : ''}`);
  return p;
}

test('a malformed control frame, then a valid one on the same version, decodes correctly', () => {
  for (const v of [4, 5] as const) {
    // SUBSCRIBE with reserved flags 0000 instead of 0010 [MQTT-3.8.1-1].
    const bad = Buffer.from(subscribe(v, 'a/b'));
    bad[0] = 0x80;
    assert.ok(parseFrame(bad, v) instanceof Error, 'bad SUBSCRIBE flags must be an error');
    // Truncated: remaining length says more than the frame holds.
    const short = subscribe(v, 'a/b').subarray(0, 5);
    assert.ok(parseFrame(short, v) instanceof Error, 'a truncated frame must be an error');
    const p = ok(subscribe(v, 'x/y/z'), v) as mqttPacket.ISubscribePacket;
    assert.equal(p.cmd, 'subscribe');
    assert.equal(p.messageId, 7);
    assert.deepEqual(p.subscriptions.map((s) => [s.topic, s.qos]), [['x/y/z', 1]]);
    if (v === 5) assert.equal(p.properties?.subscriptionIdentifier, 3);
  }
});

test('a malformed CONNECT, then a valid CONNECT, decodes correctly (the case _resetState got wrong)', () => {
  for (const v of [4, 5] as const) {
    const bad = Buffer.from(connect(v, 'c1'));
    bad[4 + 2] = 0x6e; // 'MQTT' -> 'MQnT': invalid protocol name
    assert.ok(parseFrame(bad, v) instanceof Error);
    const p = ok(connect(v, 'after-error'), v) as mqttPacket.IConnectPacket;
    assert.equal(p.clientId, 'after-error');
    assert.equal(p.protocolVersion, v);
  }
});

test('a v5 CONNECT does not change how later v4 frames decode (and back)', () => {
  ok(connect(5, 'five'), 5);
  const p4 = ok(subscribe(4, 'four'), 4) as mqttPacket.ISubscribePacket;
  assert.equal(p4.properties, undefined);
  ok(connect(4, 'four'), 4);
  const p5 = ok(subscribe(5, 'five'), 5) as mqttPacket.ISubscribePacket;
  assert.equal(p5.properties?.subscriptionIdentifier, 3);
});

test('the normal path creates no parser; only a failure replaces one', () => {
  // Warm every slot first.
  ok(connect(4, 'w'), 4); ok(subscribe(4, 'w'), 4); ok(subscribe(5, 'w'), 5);
  const before = parsersCreated();
  const frames: [Buffer, number][] = [
    [connect(4, 'a'), 4], [connect(5, 'b'), 5], [subscribe(4, 'c'), 4], [subscribe(5, 'd'), 5],
    [gen({ cmd: 'pingreq' }, 4), 4], [gen({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['c'] } as mqttPacket.IUnsubscribePacket, 4), 4],
  ];
  for (let i = 0; i < 2000; i++) for (const [f, v] of frames) ok(f, v);
  assert.equal(parsersCreated(), before, 'well-formed frames created parsers');
  const bad = Buffer.from([0x82, 0x00]); // SUBSCRIBE without a payload
  assert.ok(parseFrame(bad, 4) instanceof Error);
  ok(subscribe(4, 'e'), 4);
  assert.equal(parsersCreated(), before + 1, 'exactly one parser replaced after the error');
});

test('bytes left over after a packet are an error, and the next frame still decodes', () => {
  const two = Buffer.concat([gen({ cmd: 'pingreq' }, 4), gen({ cmd: 'pingreq' }, 4)]);
  assert.ok(parseFrame(two, 4) instanceof Error);
  assert.equal(ok(gen({ cmd: 'pingreq' }, 4), 4).cmd, 'pingreq');
});

test('encode round-trips through parseFrame', () => {
  const f = encode({ cmd: 'suback', messageId: 9, granted: [1, 0x80] } as mqttPacket.ISubackPacket, 4);
  const p = ok(f, 4) as mqttPacket.ISubackPacket;
  assert.deepEqual(p.granted, [1, 0x80]);
});
