// The coordinator's retained messages and the cursors that page them out to new subscriptions
// (src/coordinator/retained.ts): what a cursor yields, and what it skips.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RetainedStore, RetainedCursors, PAGE_MESSAGES } from '../../src/coordinator/retained';
import type { WireMessage } from '../../src/shared/messages';

function msg(topic: string, payload = 'x', expiryAt = 0): WireMessage {
  return { topic, payload: new Uint8Array(Buffer.from(payload)), qos: 1, retain: true, props: null, expiryAt };
}

/** Every page of `filter` through a cursor, as topics. */
function drain(cursors: RetainedCursors, filter: string, now = 1): string[][] {
  const pages: string[][] = [];
  let page = cursors.first(0, filter, now);
  pages.push(page.msgs.map((m) => m.topic));
  while (page.cursor !== 0) {
    page = cursors.next(0, page.cursor, now);
    pages.push(page.msgs.map((m) => m.topic));
  }
  return pages;
}

describe('retained cursors', () => {
  test('a wildcard cursor pages through every match once, in pages of at most PAGE_MESSAGES', () => {
    const store = new RetainedStore();
    for (let i = 0; i < 1000; i++) store.set(msg(`a/${i}`));
    for (let i = 0; i < 10; i++) store.set(msg(`b/${i}`));
    const cursors = new RetainedCursors(store);
    const pages = drain(cursors, 'a/+');
    assert.ok(pages.length >= Math.ceil(1000 / PAGE_MESSAGES), `${pages.length} pages`);
    for (const p of pages) assert.ok(p.length <= PAGE_MESSAGES);
    const all = pages.flat();
    assert.equal(all.length, 1000);
    assert.equal(new Set(all).size, 1000);
    assert.equal(cursors.size, 0, 'an exhausted cursor is closed');
  });

  test('an exact filter answers in one page and keeps no cursor', () => {
    const store = new RetainedStore();
    store.set(msg('x/y'));
    const cursors = new RetainedCursors(store);
    assert.deepEqual(drain(cursors, 'x/y'), [['x/y']]);
    assert.deepEqual(drain(cursors, 'x/z'), [[]]);
    assert.equal(cursors.size, 0);
  });

  test('set or set again after the cursor opened: skipped (it arrives live); cleared meanwhile: skipped', () => {
    const store = new RetainedStore();
    for (let i = 0; i < 600; i++) store.set(msg(`t/${i}`, 'old'));
    const cursors = new RetainedCursors(store);
    const first = cursors.first(0, 't/#', 1);
    assert.ok(first.cursor !== 0);
    store.set(msg('t/new'));                // newer than the cursor
    store.set(msg('t/599', ''));            // cleared [MQTT-3.3.1-6]
    store.set(msg('t/598', 'fresh'));       // set again: newer than the cursor, so it comes live
    const rest: WireMessage[] = [];
    for (let page = cursors.next(0, first.cursor, 1); ; page = cursors.next(0, first.cursor, 1)) {
      rest.push(...page.msgs);
      if (page.cursor === 0) break;
    }
    const topics = [...first.msgs, ...rest].map((m) => m.topic);
    assert.ok(!topics.includes('t/new'));
    assert.ok(!topics.includes('t/599'));
    assert.ok(!topics.includes('t/598'));
    assert.equal(topics.length, 598, '600 set before the cursor, less the cleared one and the one set again');
  });

  test('expired messages are not sent and leave the store', () => {
    const store = new RetainedStore();
    store.set(msg('e/1', 'x', 100));
    store.set(msg('e/2', 'x', 0));
    const cursors = new RetainedCursors(store);
    assert.deepEqual(drain(cursors, 'e/#', 200).flat(), ['e/2']);
    assert.equal(store.size, 1);
  });

  test('cursors belong to their worker: another worker cannot read or close them; a dead worker takes its own', () => {
    const store = new RetainedStore();
    for (let i = 0; i < 1000; i++) store.set(msg(`w/${i}`));
    const cursors = new RetainedCursors(store);
    const a = cursors.first(0, 'w/#', 1);
    const b = cursors.first(1, 'w/#', 1);
    assert.equal(cursors.size, 2);
    assert.deepEqual(cursors.next(1, a.cursor, 1), { cursor: 0, msgs: [] }, 'worker 1 reads nothing of worker 0\'s cursor');
    cursors.close(1, a.cursor);
    assert.equal(cursors.size, 2, 'nor closes it');
    cursors.workerDied(0);
    assert.equal(cursors.size, 1);
    cursors.close(1, b.cursor);
    assert.equal(cursors.size, 0);
  });
});
