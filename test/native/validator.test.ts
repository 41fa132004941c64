// validateTopic / validateTopicBytes: one row per rule, every error code reachable.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { native } from '../../src/native';
import { TopicError as E, MAX_TOPIC_BYTES, MAX_TOPIC_LEVELS } from '../../src/trie';

type Row = readonly [topic: string, isFilter: boolean, code: number];

const deep = (n: number) => Array.from({ length: n }, () => 'l').join('/');

const ROWS: readonly Row[] = [
  ['a', false, E.OK],
  ['a/b/c', false, E.OK],
  ['/', false, E.OK],
  ['a//b', false, E.OK],
  ['$SYS/x', false, E.OK],
  ['caf\u00e9', false, E.OK],
  ['', false, E.EMPTY],
  ['', true, E.EMPTY],
  ['x'.repeat(MAX_TOPIC_BYTES), false, E.OK],
  ['x'.repeat(MAX_TOPIC_BYTES + 1), false, E.TOO_LONG],
  ['\u00e9'.repeat(32768), false, E.TOO_LONG], // 65536 UTF-8 bytes, 32768 UTF-16 units
  ['a\u0000b', false, E.NUL],
  ['a/\u0000', true, E.NUL],
  ['a/+', false, E.WILDCARD_IN_NAME],
  ['#', false, E.WILDCARD_IN_NAME],
  ['a+b', false, E.WILDCARD_IN_NAME],
  ['+', true, E.OK],
  ['#', true, E.OK],
  ['+/+/#', true, E.OK],
  ['/#', true, E.OK],
  ['a/#/b', true, E.BAD_WILDCARD],
  ['a#', true, E.BAD_WILDCARD],
  ['a/b#', true, E.BAD_WILDCARD],
  ['##', true, E.BAD_WILDCARD],
  ['a+', true, E.BAD_WILDCARD],
  ['+a/b', true, E.BAD_WILDCARD],
  ['a/++', true, E.BAD_WILDCARD],
  [deep(MAX_TOPIC_LEVELS), false, E.OK],
  [deep(MAX_TOPIC_LEVELS + 1), false, E.TOO_MANY_LEVELS],
  [deep(MAX_TOPIC_LEVELS + 1), true, E.TOO_MANY_LEVELS],
  ['$share/g/a', true, E.OK],
  ['$share/g/#', true, E.OK],
  ['$share/g/a/+/b', true, E.OK],
  ['$share/g/' + deep(MAX_TOPIC_LEVELS), true, E.OK],
  ['$share/g/' + deep(MAX_TOPIC_LEVELS + 1), true, E.TOO_MANY_LEVELS],
  ['$share/g', true, E.BAD_SHARE],
  ['$share/', true, E.BAD_SHARE],
  ['$share//a', true, E.BAD_SHARE],
  ['$share/g/', true, E.BAD_SHARE],
  ['$share/g+/a', true, E.BAD_SHARE],
  ['$share/#/a', true, E.BAD_SHARE],
  ['$share/g/a/#/b', true, E.BAD_WILDCARD],
  ['$share/g/a', false, E.OK], // only filters are shared subscriptions
  ['$share', true, E.OK],
];

test('constants exported by the addon equal src/trie.ts', () => {
  const c = native.topicConstants;
  for (const [k, v] of Object.entries(E)) assert.equal(c[k as keyof typeof c], v, k);
  assert.equal(c.MAX_BYTES, MAX_TOPIC_BYTES);
  assert.equal(c.MAX_LEVELS, MAX_TOPIC_LEVELS);
});

test('every error code is exercised by the table', () => {
  const used = new Set(ROWS.map((r) => r[2]));
  for (const [k, v] of Object.entries(E)) {
    if (v !== E.BAD_UTF8) assert.ok(used.has(v), `no row for ${k}`);
  }
});

test('validateTopic table', () => {
  for (const [topic, isFilter, code] of ROWS) {
    const label = `${JSON.stringify(topic.slice(0, 40))}${topic.length > 40 ? '…' : ''} filter=${isFilter}`;
    assert.equal(native.validateTopic(topic, isFilter), code, label);
  }
});

test('validateTopicBytes agrees with validateTopic on the same table, at an offset', () => {
  for (const [topic, isFilter, code] of ROWS) {
    const bytes = Buffer.from(topic, 'utf8');
    const buf = Buffer.concat([Buffer.from('zz'), bytes, Buffer.from('/#')]);
    assert.equal(native.validateTopicBytes(buf, 2, bytes.length, isFilter), code, topic.slice(0, 40));
  }
});

test('validateTopicBytes rejects ill-formed UTF-8 and surrogates [MQTT-1.5.3-1]', () => {
  const bad = [
    [0xc3], // truncated
    [0x80], // lone continuation
    [0xc0, 0xaf], // overlong '/'
    [0xe0, 0x80, 0xaf], // overlong
    [0xed, 0xa0, 0x80], // U+D800
    [0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
    [0xff],
  ];
  for (const b of bad) {
    assert.equal(native.validateTopicBytes(Uint8Array.from([0x61, ...b]), 0, b.length + 1, false), E.BAD_UTF8, b.join(','));
  }
  assert.equal(native.validateTopicBytes(Uint8Array.from([0xf0, 0x9f, 0x98, 0x80]), 0, 4, false), E.OK);
  assert.throws(() => native.validateTopicBytes(new Uint8Array(4), 2, 3, false), RangeError);
});
