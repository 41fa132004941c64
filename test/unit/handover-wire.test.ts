// The text of a session handed from one node to another (src/cluster/handover-wire.ts): a
// snapshot and a queue read back equal to what was written, bytes included; a queue over the
// bound is cut (oldest kept) and the rest counted; text that is not a session or a queue is
// refused (null), never half-read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSession, decodeSession, encodeQueue, decodeQueue } from '../../src/cluster/handover-wire';
import type { WireMessage, WireSession } from '../../src/shared/messages';

const m = (topic: string, payload: number[], qos = 1): WireMessage => ({
  topic, payload: new Uint8Array(payload), qos, retain: false, props: new Uint8Array([0x03, 0x00, 0x01, 0x78]), expiryAt: 0,
});

const session: WireSession = {
  clientId: 'c-ü', protocolVersion: 5, expiryInterval: 600,
  subscriptions: [{ filter: 'a/#', opts: 1 | 8, subId: 7, retainHandling: 2 }],
  inflight: [
    { packetId: 3, qos: 1, state: 'publish', msg: m('a/b', [0, 255, 1]), subIds: [7], msgId: 0 },
    { packetId: 65535, qos: 2, state: 'pubrel', msg: null, subIds: null, msgId: 0 },
  ],
  queue: [],
  inboundQos2: [9, 10],
};

test('a snapshot reads back as written (bytes, packet ids, states, subscription options)', () => {
  const back = decodeSession(encodeSession(session));
  assert.ok(back);
  assert.deepEqual(back, session);
});

test('a queue reads back in order; over the bound, the oldest are kept and the rest counted', () => {
  const queue = Array.from({ length: 10 }, (_, i) => ({ msg: m(`q/${i}`, new Array(100).fill(i)), subIds: i % 2 ? [i] : null, msgId: 0, seq: 0 }));
  const all = encodeQueue(queue);
  assert.equal(all.dropped, 0);
  assert.deepEqual(decodeQueue(all.text), queue);
  const cut = encodeQueue(queue, 3 * (3 + 100 + 4) + 10);
  assert.equal(cut.dropped, 7);
  assert.deepEqual(decodeQueue(cut.text)!.map((q) => q.msg.topic), ['q/0', 'q/1', 'q/2']);
});

test('text that is not a snapshot or a queue is refused', () => {
  for (const bad of ['', 'null', '[]', '{}', '{"clientId":1}', JSON.stringify({ ...JSON.parse(encodeSession(session)), inflight: [{ packetId: 0, qos: 1, state: 'publish', msg: null, subIds: null }] }),
    JSON.stringify({ ...JSON.parse(encodeSession(session)), subscriptions: [{ filter: 'x', opts: 1, subId: -1, retainHandling: 0 }] })]) {
    assert.equal(decodeSession(bad), null, bad);
  }
  for (const bad of ['', '{}', '[1]', '[{"msg":{"topic":"t","payload":5,"qos":1,"retain":false,"props":null,"expiryAt":0},"subIds":null}]']) {
    assert.equal(decodeQueue(bad), null, bad);
  }
});
