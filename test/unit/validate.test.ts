// The broker's decode-time validator (workers/protocol/validate.ts), table by table. The topic
// names and filters come from the shared fixture table (test/fixtures/packets.ts), which the 0d
// suite also sends to a real broker, so both hold the validator to the same verdicts; the
// packets of that table are checked here too, against what the table says the broker does.
//
// Rules cited are MQTT 5.0 ([MQTT-x.y.z-n]) unless marked 3.1.1.
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  validTopicName, utf8SeqLen, goodString, validTopicFilter, rawFiltersWellFormed, parseSharedFilter, hasRepeatedProperty,
  MAX_TOPIC_LEVELS,
} from '../../workers/protocol/validate';
import { parsePublish, PublishFrame, PubError } from '../../workers/protocol/publish-codec';
import { TOPIC_NAMES, TOPIC_FILTERS, PACKETS, MAX_LEVELS, PacketCase } from '../fixtures/packets';
import { splitFrames } from '../helpers/frames';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const show = (b: Buffer): string => (b.length > 24 ? `${b.subarray(0, 24).toString('hex')}… (${b.length} bytes)` : b.toString('hex') || '(empty)');

/** An independent reference: the WHATWG decoder in fatal mode rejects exactly the ill-formed UTF-8 of RFC 3629. */
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function wellFormedNoNul(b: Buffer): boolean {
  try { return !fatal.decode(b).includes('\u0000'); } catch { return false; }
}

/** `bytes` with garbage around it (wildcards, U+0000, a stray lead byte): the checks must stay within [start, end). */
function embedded(bytes: Buffer): { buf: Buffer; start: number; end: number } {
  const before = hex('23 00 2b c3');
  return { buf: Buffer.concat([before, bytes, hex('e2 00 23')]), start: before.length, end: before.length + bytes.length };
}

/** The filters as a SUBSCRIBE (with an options byte each) or UNSUBSCRIBE payload. */
function payload(filters: Buffer[], withOptions: boolean): Buffer {
  return Buffer.concat(filters.flatMap((f) => [Buffer.from([f.length >> 8, f.length & 0xff]), f, ...(withOptions ? [Buffer.from([1])] : [])]));
}

describe('validate: the fixture table agrees with the validator limits', () => {
  it('MAX_LEVELS in the table is the validator limit', () => assert.equal(MAX_LEVELS, MAX_TOPIC_LEVELS));
  it('every case name is unique', () => {
    for (const table of [TOPIC_NAMES, TOPIC_FILTERS] as Array<Array<{ name: string }>>) {
      const names = table.map((c) => c.name);
      assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
    }
  });
});

describe('validTopicName: topic names from the fixture table', () => {
  for (const t of TOPIC_NAMES) {
    it(`${t.valid ? 'accepts' : 'refuses'} ${t.name} ${t.spec}`, () => {
      assert.equal(validTopicName(t.bytes, 0, t.bytes.length), t.valid, show(t.bytes));
      const e = embedded(t.bytes);
      assert.equal(validTopicName(e.buf, e.start, e.end), t.valid, `${show(t.bytes)} inside other bytes`);
      // A valid name is well-formed UTF-8 without U+0000; goodString says exactly that.
      const good = wellFormedNoNul(t.bytes);
      if (t.valid) assert.ok(good, 'a valid topic name must be well-formed UTF-8 without U+0000');
      assert.equal(goodString(t.bytes, 0, t.bytes.length), good, `goodString ${show(t.bytes)}`);
      assert.equal(goodString(e.buf, e.start, e.end), good, `goodString ${show(t.bytes)} inside other bytes`);
    });
  }
});

describe('utf8SeqLen: sequence boundaries (RFC 3629 table 3.1)', () => {
  const rows: Array<[string, string, number]> = [
    ['c2 80', 'U+0080, smallest 2-byte', 2],
    ['df bf', 'U+07FF, largest 2-byte', 2],
    ['c0 80', 'overlong U+0000', 0],
    ['c1 bf', 'overlong U+007F', 0],
    ['e0 a0 80', 'U+0800, smallest 3-byte', 3],
    ['e0 9f bf', 'overlong U+07FF', 0],
    ['ed 9f bf', 'U+D7FF, last before the surrogates', 3],
    ['ed a0 80', 'U+D800, first surrogate', 0],
    ['ed bf bf', 'U+DFFF, last surrogate', 0],
    ['ee 80 80', 'U+E000, first after the surrogates', 3],
    ['ef bf bf', 'U+FFFF, a non-character but well-formed', 3],
    ['f0 90 80 80', 'U+10000, smallest 4-byte', 4],
    ['f0 8f bf bf', 'overlong U+FFFF', 0],
    ['f4 8f bf bf', 'U+10FFFF, largest', 4],
    ['f4 90 80 80', 'U+110000, beyond Unicode', 0],
    ['f5 80 80 80', 'lead byte F5', 0],
    ['ff', 'byte FF', 0],
    ['80', 'a continuation byte as lead', 0],
    ['c3', '2-byte lead at the end', 0],
    ['e2 9c', '3-byte sequence cut short', 0],
    ['c3 28', 'lead byte then ASCII', 0],
    ['e2 28 a1', 'bad second byte of three', 0],
    ['f0 9f 98 28', 'bad fourth byte', 0],
  ];
  for (const [bytes, what, n] of rows) {
    it(`${bytes}: ${what} -> ${n}`, () => {
      const b = hex(bytes);
      assert.equal(utf8SeqLen(b, 0, b.length), n);
      // The end bound is honoured: the same sequence with its last byte outside [0, end).
      if (n > 0) assert.equal(utf8SeqLen(b, 0, b.length - 1), 0, 'a sequence running past `end` is not one');
      assert.equal(n > 0, wellFormedNoNul(b), 'agrees with the WHATWG fatal decoder');
    });
  }
});

describe('topic filters from the fixture table', () => {
  for (const f of TOPIC_FILTERS) {
    it(`${f.name}: ${f.wellFormed ? (f.valid ? 'valid' : 'invalid') : 'malformed'} ${f.spec}`, () => {
      for (const withOptions of [true, false]) {
        const p = payload([f.bytes], withOptions);
        assert.equal(rawFiltersWellFormed(p, 0, p.length, withOptions), f.wellFormed, `rawFiltersWellFormed(${show(f.bytes)}, withOptions ${withOptions})`);
      }
      assert.equal(f.wellFormed, wellFormedNoNul(f.bytes), 'the table says well-formed exactly when the reference decoder does');
      if (!f.wellFormed) return; // the broker closes before it looks at the filter as a string
      const s = f.bytes.toString('utf8');
      const shared = parseSharedFilter(s);
      if (f.shared === undefined) {
        assert.equal(shared, null, 'not a shared subscription');
        assert.equal(validTopicFilter(s), f.valid, `validTopicFilter(${JSON.stringify(s.slice(0, 40))})`);
      } else {
        assert.deepEqual(shared, f.shared, `parseSharedFilter(${JSON.stringify(s)})`);
        assert.equal(f.valid, f.shared !== 'invalid', 'a shared filter is valid exactly when it parses');
      }
    });
  }

  it('rawFiltersWellFormed checks every filter of a payload, not just the first', () => {
    const good = TOPIC_FILTERS.filter((f) => f.wellFormed).map((f) => f.bytes);
    const bad = TOPIC_FILTERS.filter((f) => !f.wellFormed).map((f) => f.bytes);
    assert.ok(bad.length > 0 && good.length > 1);
    const all = payload(good, true);
    assert.equal(rawFiltersWellFormed(all, 0, all.length, true), true);
    for (const b of bad) {
      const p = payload([...good, b], true);
      assert.equal(rawFiltersWellFormed(p, 0, p.length, true), false, `${show(b)} last of ${good.length + 1}`);
    }
  });

  it('rawFiltersWellFormed refuses a filter length running past the end [MQTT-1.5.4] §4.13', () => {
    const p = hex('00 05 61 62');
    assert.equal(rawFiltersWellFormed(p, 0, p.length, false), false);
    const q = Buffer.concat([payload([Buffer.from('a')], false), hex('00 05 61')]);
    assert.equal(rawFiltersWellFormed(q, 0, q.length, false), false, 'the second filter is cut short');
  });

  it('validTopicFilter refuses a filter longer than a UTF-8 string can be (65,535) §1.5.4', () => {
    assert.equal(validTopicFilter('a'.repeat(65535)), true);
    assert.equal(validTopicFilter('a'.repeat(65536)), false);
  });
});

describe('hasRepeatedProperty: only User Property may repeat §2.2.2.2', () => {
  const rows: Array<[string, object | undefined, boolean]> = [
    ['no properties', undefined, false],
    ['single values', { sessionExpiryInterval: 10, receiveMaximum: 5 }, false],
    ['repeated user property', { userProperties: { a: ['1', '2'] } }, false],
    ['user properties as an array', { userProperties: [['a', '1'], ['a', '2']] }, false],
    ['a property given twice (mqtt-packet makes it an array)', { sessionExpiryInterval: [10, 10] }, true],
    ['repeated subscription identifier', { subscriptionIdentifier: [1, 2] }, true],
  ];
  for (const [what, props, repeated] of rows) {
    it(`${what} -> ${repeated}`, () => assert.equal(hasRepeatedProperty(props), repeated));
  }
});

/** Whether the table says the broker may keep the connection open after this packet. */
function mayStayOpen(c: PacketCase): boolean {
  return c.expect.after === 'open' || c.expect.alt?.after === 'open';
}
/** Whether the table says the broker always keeps it open (no alternative that closes). */
function staysOpen(c: PacketCase): boolean {
  return c.expect.after === 'open' && (c.expect.alt === undefined || c.expect.alt.after === 'open');
}

describe('packets of the fixture table: the validator agrees with the reaction the table expects', () => {
  const connected = PACKETS.filter((c) => c.when === 'connected');
  for (const c of connected.filter((x) => x.bytes[0] >> 4 === 3)) {
    it(`PUBLISH v${c.version} ${c.name}`, () => {
      const { frames } = splitFrames(c.bytes);
      if (frames.length !== 1) { assert.equal(mayStayOpen(c), false, 'an incomplete frame: the table must expect a close'); return; }
      const [fr] = frames;
      const f = new PublishFrame();
      const err = parsePublish(fr.first, c.bytes, fr.start, fr.end, c.version === 5, f);
      if (err !== PubError.NONE) {
        assert.equal(staysOpen(c), false, `parsePublish refused it (${err}) but the table expects the broker to accept it`);
        return;
      }
      if (f.topicAlias > 0 && f.topicEnd === f.topicStart) return; // the alias supplies the topic (checked by the broker, not the validator)
      const valid = validTopicName(c.bytes, f.topicStart, f.topicEnd);
      if (staysOpen(c)) assert.ok(valid, 'the table expects the broker to accept this PUBLISH, so its topic must be valid');
      if (!valid) assert.equal(mayStayOpen(c), false, 'the validator refuses the topic, so the table must expect a close [MQTT-3.3.2-2] [MQTT-1.5.4-1]');
    });
  }
  for (const c of connected.filter((x) => x.bytes[0] === 0x82 || x.bytes[0] === 0xa2)) {
    it(`${c.bytes[0] === 0x82 ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} v${c.version} ${c.name}`, () => {
      const { frames } = splitFrames(c.bytes);
      if (frames.length !== 1) { assert.equal(mayStayOpen(c), false); return; }
      const [fr] = frames;
      // Payload: after the packet id and (v5) the property block.
      let ps = fr.start + 2;
      if (c.version === 5) ps += 1 + c.bytes[ps]; // every property block in the table is shorter than 128 bytes
      const wellFormed = ps <= fr.end && rawFiltersWellFormed(c.bytes, ps, fr.end, c.bytes[0] === 0x82);
      if (!wellFormed) assert.equal(mayStayOpen(c), false, 'ill-formed filter bytes: the table must expect a close [MQTT-1.5.4-1]');
      if (staysOpen(c)) assert.ok(wellFormed, 'the table expects the broker to keep the connection, so the filters must be well-formed');
    });
  }
});
