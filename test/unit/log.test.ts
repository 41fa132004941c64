// The log path's parts (src/log/) and the latency histograms (src/shared/histograms.ts):
// records through a thread's log ring come out whole and in order; a level above a record's
// costs nothing and writes nothing; a full ring drops and counts, never waits; the rate limit
// writes at most N per kind and window, then one record with the count; histograms sum rows
// into cumulative buckets; the pretty format is one human line.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createRingBuffer, createBell, RingConsumer } from '../../src/shared/ring';
import { ThreadLog, BaseLogger, type Fields } from '../../src/log/thread-log';
import { createLogState, ringDrops, S_LEVEL } from '../../src/log/log-state';
import { LEVELS } from '../../src/log/levels';
import { RateLimitedLog } from '../../src/log/rate-limit';
import { prettyLine } from '../../src/log/pretty';
import { createHistograms, HistogramWriter, readHistogram, HISTOGRAMS, H_AUTH, H_STORE_COMMIT } from '../../src/shared/histograms';

function threadLog(ringBytes: number, level = LEVELS.info) {
  const ring = createRingBuffer(ringBytes);
  const state = createLogState(2, level);
  const log = new ThreadLog({ ring, bell: createBell(), state, slot: 1 });
  const read = (): unknown[][] => {
    const out: unknown[][] = [];
    new RingConsumer(ring).drain((d, _v, off, len) => { out.push(JSON.parse(d.toString('utf8', off, off + len)) as unknown[]); });
    return out;
  };
  return { log, read, state: new Int32Array(state) };
}

test('records through the log ring come out whole, in order, with level, time, message and fields', () => {
  const { log, read } = threadLog(64 * 1024);
  log.info('client connected', { clientId: 'c1', username: 'ü-ser "q"' });
  log.warn('dropped', () => ({ n: 2 }));
  log.error('boom');
  const recs = read();
  assert.equal(recs.length, 3);
  assert.equal(recs[0][0], LEVELS.info);
  assert.equal(typeof recs[0][1], 'number');
  assert.equal(recs[0][2], 'client connected');
  assert.deepEqual(recs[0][3], { clientId: 'c1', username: 'ü-ser "q"' });
  assert.deepEqual(recs[1].slice(2), ['dropped', { n: 2 }]);
  assert.deepEqual(recs[2].slice(2), ['boom', null]);
});

test('below the shared level nothing is written and field functions are not called; a level change applies at once', () => {
  const { log, read, state } = threadLog(64 * 1024, LEVELS.warn);
  let called = 0;
  log.info('hidden', () => { called++; return {}; });
  log.debug('hidden');
  assert.equal(read().length, 0);
  assert.equal(called, 0);
  Atomics.store(state, S_LEVEL, LEVELS.info);
  log.info('shown');
  assert.equal(read().length, 1);
  Atomics.store(state, S_LEVEL, LEVELS.silent);
  log.fatal('not even this');
  assert.equal(read().length, 0);
});

test('a full ring drops records and counts them; the thread never waits', () => {
  const { log, read, state } = threadLog(4096);
  const N = 1000;
  for (let i = 0; i < N; i++) log.warn('x'.repeat(40), { i });
  const got = read();
  assert.ok(got.length > 0 && got.length < N, `${got.length} records fitted`);
  assert.equal(ringDrops(state), N - got.length);
  // Drained, the ring takes records again, in order after the ones that fitted.
  log.warn('after');
  assert.deepEqual(read().map((r) => r[2]), ['after']);
});

class Captured extends BaseLogger {
  readonly records: { level: number; msg: string; fields: Fields }[] = [];
  enabled(): boolean { return true; }
  protected emit(level: number, msg: string, fields: Fields | undefined): void { this.records.push({ level, msg, fields: fields ?? {} }); }
}

test('rate limit: at most N records per kind and window, then ONE record with the count; the next window writes again', async () => {
  const out = new Captured();
  const rl = new RateLimitedLog(out, 3, 60);
  for (let i = 0; i < 10; i++) rl.warn('flood', 'refused', { i });
  rl.warn('other', 'dropped');
  rl.warn('other', 'dropped');
  assert.deepEqual(out.records.map((r) => `${r.msg}:${r.fields.kind}`), ['refused:flood', 'refused:flood', 'refused:flood', 'dropped:other', 'dropped:other']);
  const keepAlive = setInterval(() => {}, 1000); // the limiter's timer is unref'd
  try {
    const deadline = Date.now() + 10000;
    while (out.records.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  } finally { clearInterval(keepAlive); }
  assert.equal(out.records.length, 6);
  assert.equal(out.records[5].level, LEVELS.warn);
  assert.equal(out.records[5].fields.suppressed, 7);
  assert.equal(out.records[5].fields.kind, 'flood');
  // A new window: written again, not silenced.
  rl.warn('flood', 'refused', { i: 11 });
  assert.equal(out.records.length, 7);
  rl.warn('flood', 'refused');
  rl.warn('flood', 'refused');
  rl.warn('flood', 'refused');
  rl.flush();
  assert.equal(out.records[out.records.length - 1].fields.suppressed, 1);
});

test('histograms: per-thread rows summed into cumulative buckets, +Inf = count', () => {
  const sab = createHistograms(2);
  const a = new HistogramWriter(sab, 0);
  const b = new HistogramWriter(sab, 3); // the main thread's row with 2 workers
  a.observe(H_AUTH, 0.0003);
  a.observe(H_AUTH, 0.003);
  b.observe(H_AUTH, 100);
  b.observe(H_STORE_COMMIT, 0.002);
  const h = readHistogram(sab, H_AUTH);
  const bounds = HISTOGRAMS[H_AUTH].bounds;
  assert.equal(h.count, 3);
  assert.ok(Math.abs(h.sum - 100.0033) < 1e-9);
  assert.equal(h.cumulative.length, bounds.length + 1);
  assert.equal(h.cumulative[bounds.indexOf(0.0005)], 1);
  assert.equal(h.cumulative[bounds.indexOf(0.005)], 2);
  assert.equal(h.cumulative[bounds.length - 1], 2);
  assert.equal(h.cumulative[bounds.length], 3);
  for (let i = 1; i < h.cumulative.length; i++) assert.ok(h.cumulative[i] >= h.cumulative[i - 1]);
  assert.equal(readHistogram(sab, H_STORE_COMMIT).count, 1);
});

test('pretty: one human line, fields as key=value, a stack on indented lines', () => {
  const line = prettyLine(JSON.stringify({ level: 'info', time: '2026-01-02T03:04:05.678Z', pid: 1, hostname: 'h', thread: 'worker 1', clientId: 'c 1', n: 2, msg: 'client connected' }));
  assert.equal(line, '03:04:05.678 INFO  worker 1    client connected clientId="c 1" n=2\n');
  const err = prettyLine(JSON.stringify({ level: 'error', time: '2026-01-02T03:04:05.678Z', thread: 'main', msg: 'failed', err: { message: 'x', stack: 'Error: x\n    at f (a.js:1:2)' } }));
  assert.match(err, /^03:04:05\.678 ERROR main\s+failed err=x\n    at f \(a\.js:1:2\)\n$/);
});
