// The worker's ACL gate (workers/auth/acl-gate.ts) over a real MessageChannel, as the main
// thread drives it: a connection's cached decisions stay within --acl-cache-entries (new ones
// not kept when full, then a fresh start; counted), a reload posted on the port replaces the
// rules, is acknowledged with its
// generation, and drops what connections had cached; a repeated topic reuses its string.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { AclGate } from '../../workers/auth/acl-gate';
import { parseAclFile } from '../../src/auth/acl';
import type { AclApplied, AclUpdate } from '../../src/auth/messages';
import { C_ACL_CACHE_EVICTED } from '../../src/shared/counters';
import { Message } from '../../workers/protocol/message';
import { onceEvent } from '../helpers/wait';

test('cache bound, eviction counter, reload by message, topic string reuse', async () => {
  const { port1, port2 } = new MessageChannel();
  const counts = new Map<number, number>();
  const gate = new AclGate({ rules: parseAclFile('topic read a/#\ntopic write w/#\n', 'f'), generation: 1 }, port2, 4,
    (c, n) => counts.set(c, (counts.get(c) ?? 0) + n));
  try {
    const conn = gate.forClient('c1', null);
    for (let i = 0; i < 10; i++) assert.equal(conn.mayRead(`a/${i}`), true);
    assert.equal(conn.mayRead('b/1'), false);
    assert.equal(conn.mayWrite('a/1'), false);
    assert.equal(conn.mayWrite('w/1'), true);
    // a/0..a/3 fill the 4-entry cache; a/4..a/9, b/1 and the write to w/1 are not kept (the
    // write to a/1 adds to a kept entry): 8 counted.
    assert.equal(counts.get(C_ACL_CACHE_EVICTED), 8);
    // After 4 × 4 decisions not kept, the cache starts afresh (its 4 entries counted) and keeps new ones.
    for (let i = 0; i < 8; i++) assert.equal(conn.mayRead(`x/${i}`), false);
    assert.equal(counts.get(C_ACL_CACHE_EVICTED), 8 + 8 + 4, 'the 16th not kept, then the 4 entries dropped; x/7 kept');
    assert.equal(conn.maySubscribe('a/+'), true);
    assert.equal(conn.maySubscribe('b/#'), false);

    // Reload: b/... readable, a/... not; the gate acknowledges the generation it holds.
    const acked = onceEvent<AclApplied>(port1 as unknown as NodeJS.EventEmitter, 'message', 'the worker acknowledging the reload');
    const update: AclUpdate = { t: 'acl', rules: parseAclFile('topic read b/#\n', 'f'), generation: 2 };
    port1.postMessage(update);
    assert.deepEqual(await acked, { t: 'acl-applied', generation: 2 });
    assert.equal(gate.generation, 2);
    assert.equal(conn.mayRead('a/9'), false, 'a decision cached under generation 1 was dropped');
    assert.equal(conn.mayRead('b/1'), true);
    assert.equal(conn.maySubscribe('b/#'), true);

    // A repeated topic: the same string object, no new one; a non-ASCII topic is never mistaken for one.
    const s1 = conn.topicOf(Buffer.from('b/x'));
    assert.equal(conn.topicOf(Buffer.from('b/x')), s1);
    // 'b/Ã©' has 4 chars with codes 0xC3 0xA9; the 4 bytes 62 2f c3 a9 are 'b/é' in UTF-8.
    assert.equal(conn.topicOf(Buffer.from('b/Ã©')), 'b/Ã©');
    assert.equal(conn.topicOf(Buffer.from([0x62, 0x2f, 0xc3, 0xa9])), 'b/é');
    const msg = new Message(Buffer.from('b/y'), Buffer.alloc(0), 0, false, null, 0, 0);
    assert.equal(conn.mayReceive(msg), true);
    assert.equal(msg.topicStringIfMade, 'b/y', 'the string is left on the message for the next subscriber');
  } finally {
    port1.close();
    port2.close();
  }
});
