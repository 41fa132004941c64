// The hand-written PUBLISH codec agrees with mqtt-packet, both ways, for v3.1.1 and v5.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as mqttPacket from 'mqtt-packet';
import { parsePublish, PublishFrame, PubError, encodePublish, forwardedProps, NO_EXTRAS } from '../../workers/protocol/publish-codec';
import { splitFrames, FrameBounds } from '../helpers/frames';

function parseWithMqttPacket(buf: Buffer, protocolVersion: number): mqttPacket.IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion });
  let out: mqttPacket.Packet | null = null;
  parser.on('packet', (p) => { out = p; });
  parser.on('error', (e) => { throw e; });
  parser.parse(buf);
  assert.ok(out, 'mqtt-packet produced no packet');
  return out as mqttPacket.IPublishPacket;
}

/** The bounds of the single frame in `buf`. */
function body(buf: Buffer): FrameBounds {
  const { frames } = splitFrames(buf);
  assert.equal(frames.length, 1, 'one complete frame');
  return frames[0];
}

const cases: mqttPacket.IPublishPacket[] = [
  { cmd: 'publish', topic: 'a/b', payload: Buffer.from('hi'), qos: 0, retain: false, dup: false },
  { cmd: 'publish', topic: 'sensors/ünïcödé/1', payload: Buffer.alloc(300, 7), qos: 1, messageId: 42, retain: true, dup: true },
  { cmd: 'publish', topic: 'x', payload: Buffer.alloc(0), qos: 2, messageId: 65535, retain: false, dup: false },
  { cmd: 'publish', topic: 'big', payload: Buffer.alloc(70000, 1), qos: 1, messageId: 1, retain: false, dup: false },
];

test('inbound fast path reads what mqtt-packet reads (v3.1.1)', () => {
  for (const c of cases) {
    const buf = mqttPacket.generate(c);
    const b = body(buf);
    const f = new PublishFrame();
    assert.equal(parsePublish(b.first, buf, b.start, b.end, false, f), PubError.NONE);
    const ref = parseWithMqttPacket(buf, 4);
    assert.equal(buf.toString('utf8', f.topicStart, f.topicEnd), ref.topic);
    assert.equal(f.qos, ref.qos);
    assert.equal(f.retain, ref.retain);
    assert.equal(f.dup, ref.dup);
    if (c.qos > 0) assert.equal(f.packetId, ref.messageId);
    assert.deepEqual(buf.subarray(f.payloadStart, f.end), Buffer.from(ref.payload as Buffer));
  }
});

test('v5 properties: alias and expiry are read, the rest forwarded byte for byte', () => {
  const packet: mqttPacket.IPublishPacket = {
    cmd: 'publish', topic: 't/1', payload: Buffer.from('p'), qos: 1, messageId: 9, retain: false, dup: false,
    properties: {
      payloadFormatIndicator: true, messageExpiryInterval: 30, topicAlias: 3, contentType: 'text/plain',
      responseTopic: 'r/1', correlationData: Buffer.from([1, 2, 3]), userProperties: { a: '1', b: ['2', '3'] },
    },
  };
  const buf = mqttPacket.generate(packet, { protocolVersion: 5 });
  const b = body(buf);
  const f = new PublishFrame();
  assert.equal(parsePublish(b.first, buf, b.start, b.end, true, f), PubError.NONE);
  assert.equal(f.topicAlias, 3);
  assert.equal(f.expiryInterval, 30);
  const fwd = forwardedProps(buf, f)!;
  // Re-encode with the forwarded props and no alias/expiry; mqtt-packet must decode the same properties.
  const out = encodePublish(Buffer.from('t/1'), Buffer.from('p'), fwd, 1, false, false, 9, true, NO_EXTRAS);
  const ref = parseWithMqttPacket(out, 5);
  assert.equal(ref.topic, 't/1');
  assert.deepEqual({ ...ref.properties, userProperties: { ...ref.properties?.userProperties } }, {
    payloadFormatIndicator: true, contentType: 'text/plain', responseTopic: 'r/1',
    correlationData: Buffer.from([1, 2, 3]), userProperties: { a: '1', b: ['2', '3'] },
  });
});

test('outbound encoder output decodes with mqtt-packet (v3.1.1 and v5 with per-subscriber extras)', () => {
  for (const c of cases) {
    const enc = encodePublish(Buffer.from(c.topic), c.payload as Buffer, null, c.qos, c.retain, c.dup, c.messageId ?? 0, false, NO_EXTRAS);
    assert.deepEqual(enc, mqttPacket.generate(c));
  }
  const enc5 = encodePublish(Buffer.from('a/b'), Buffer.from('x'), null, 1, true, false, 7, true,
    { subIds: [1, 300, 268435455], alias: 5, omitTopic: false, expiry: 12 });
  const ref = parseWithMqttPacket(enc5, 5);
  assert.equal(ref.messageId, 7);
  assert.equal(ref.retain, true);
  assert.equal(ref.properties?.topicAlias, 5);
  assert.equal(ref.properties?.messageExpiryInterval, 12);
  assert.deepEqual(ref.properties?.subscriptionIdentifier, [1, 300, 268435455]);
});

test('malformed and forbidden PUBLISH forms are rejected with the right class of error', () => {
  const f = new PublishFrame();
  const qos3 = Buffer.from([0x36, 5, 0, 1, 0x61, 0, 1]);
  assert.equal(parsePublish(qos3[0], qos3, 2, qos3.length, false, f), PubError.MALFORMED); // [MQTT-3.3.1-4]
  const dup0 = Buffer.from([0x38, 3, 0, 1, 0x61]);
  assert.equal(parsePublish(dup0[0], dup0, 2, dup0.length, false, f), PubError.MALFORMED); // [MQTT-3.3.1-2]
  const pid0 = Buffer.from([0x32, 5, 0, 1, 0x61, 0, 0]);
  assert.equal(parsePublish(pid0[0], pid0, 2, pid0.length, false, f), PubError.PROTOCOL);
  const short = Buffer.from([0x30, 3, 0, 9, 0x61]);
  assert.equal(parsePublish(short[0], short, 2, short.length, false, f), PubError.MALFORMED);
  // A client may not send a Subscription Identifier [MQTT-3.3.4-6].
  const subId = Buffer.from([0x30, 6, 0, 1, 0x61, 2, 0x0b, 1]);
  assert.equal(parsePublish(subId[0], subId, 2, subId.length, true, f), PubError.PROTOCOL);
});
