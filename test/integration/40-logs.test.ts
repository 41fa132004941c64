// 40: the broker's log (src/log/), read from a real broker process's stdout:
// - JSON lines by default, every one a record with level, time, thread and msg; connect and
//   disconnect records from the worker threads carry client id, username, peer address,
//   transport and the disconnect's reason (client DISCONNECT, keep-alive timeout, protocol error);
// - a wrong password appears in no line, and a flood of refused passwords gives a bounded number
//   of records plus records counting what was suppressed (never "the first N, then silence");
// - --log-level warn hides info records (the lines that say where it listens stay);
// - --log-format pretty writes human lines, not JSON;
// - a stdout nobody reads never blocks the broker: the writer drops and counts (a test hook
//   makes its buffer small); /metrics has the log path's drop counters.
import { describe, test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { launchBroker, makeTempDir, HTTP_LISTEN_RE, type Broker } from '../helpers/broker';
import { clientPool, end } from '../helpers/clients';
import { RawClient, connackCode } from '../helpers/raw-client';
import { parseLog, findRecords, logRecords } from '../helpers/log-lines';
import { request } from '../helpers/http';
import { parsePromText, sampleValue } from '../helpers/prom-text';
import { waitUntil, mapLimit, delay } from '../helpers/wait';
import { crashLines } from '../helpers/proc';
import { uid } from '../helpers/ids';
import { setPassword } from '../../src/auth/password-file';

const brokers: Broker[] = [];
after(async () => {
  for (const b of brokers) if (b.alive()) await b.stop();
});

async function start(workers: number, args: string[]): Promise<Broker> {
  const b = await launchBroker(workers, ['--durability', 'none', ...args]);
  brokers.push(b);
  return b;
}

/** Stops the broker; it exits 0 with no crash line, and every line it wrote is a JSON record. */
async function stopClean(b: Broker, json = true): Promise<void> {
  assert.equal(await b.stop(), 0, `broker exit code; output:\n${b.output()}`);
  assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
  if (json) assert.deepEqual(parseLog(b.output()).other, [], 'lines that are not JSON records');
}

function passwordFile(users: Record<string, string>): string {
  const file = path.join(makeTempDir('fleetmq-logs-'), 'pw');
  for (const [u, p] of Object.entries(users)) setPassword(file, u, Buffer.from(p), 1000);
  return file;
}

describe('40 logs', () => {
  const pool = clientPool('after');

  test('connect and disconnect records: thread, client id, username, address, transport, reason', { timeout: 90000 }, async () => {
    const b = await start(2, []);
    const ids = { clean: uid('log-a'), ka: uid('log-ka'), proto: uid('log-pe') };
    // A client that says DISCONNECT.
    const a = await pool.connect(b, { clientId: ids.clean, username: 'alice', protocolVersion: 5 });
    await end(a.client);
    // One that goes silent past its keep-alive (1 s: closed after 1.5 s) [MQTT-3.1.2-24].
    const ka = await RawClient.connect(b.port, 4);
    await ka.handshake({ clientId: ids.ka, keepalive: 1 });
    await ka.expectClose('the keep-alive timeout', 20000);
    // One that sends a second CONNECT: a protocol error [MQTT-3.1.0-2].
    const pe = await RawClient.connect(b.port, 4);
    await pe.handshake({ clientId: ids.proto, username: 'pat' });
    pe.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: ids.proto, keepalive: 0 });
    await pe.expectClose('the close after a second CONNECT');

    const disconnected = (clientId: string) => findRecords(b.output(), { msg: 'client disconnected', clientId });
    await waitUntil(() => Object.values(ids).every((id) => disconnected(id).length === 1), () => `a disconnect record for each client; output:\n${b.output()}`, 20000);

    const con = findRecords(b.output(), { msg: 'client connected', clientId: ids.clean });
    assert.equal(con.length, 1, `one connect record for ${ids.clean}`);
    assert.equal(con[0].level, 'info');
    assert.match(con[0].thread, /^worker [01]$/);
    assert.equal(con[0].username, 'alice');
    assert.match(String(con[0].address), /^127\.0\.0\.1:\d+$/);
    assert.equal(con[0].transport, 'tcp');
    assert.equal(con[0].protocol, 'mqtt5');
    assert.equal(typeof con[0].time, 'string');

    const expect: [string, string, string | null][] = [[ids.clean, 'client_disconnect', 'alice'], [ids.ka, 'keepalive_timeout', null], [ids.proto, 'protocol_error', 'pat']];
    for (const [id, reason, username] of expect) {
      const r = disconnected(id)[0];
      assert.equal(r.level, 'info');
      assert.equal(r.reason, reason, `${id}: ${JSON.stringify(r)}`);
      assert.equal(r.username, username);
      assert.match(r.thread, /^worker [01]$/);
      assert.match(String(r.address), /^127\.0\.0\.1:\d+$/);
    }
    // The main thread's own records say so.
    assert.ok(findRecords(b.output(), { thread: 'main', msg: /^fleetmq listening on / }).length === 1);
    // A client still connected at SIGTERM: its disconnect (reason shutdown) is written before the
    // process exits, as is the shutdown line: the writer is flushed first.
    const stay = uid('log-stay');
    await pool.connect(b, { clientId: stay, protocolVersion: 5 });
    await stopClean(b);
    const last = findRecords(b.output(), { msg: 'client disconnected', clientId: stay });
    assert.equal(last.length, 1, `no disconnect record for the client connected at shutdown:\n${b.output().slice(-2000)}`);
    assert.equal(last[0].reason, 'shutdown');
    assert.equal(findRecords(b.output(), { thread: 'main', msg: 'fleetmq: SIGTERM, shutting down' }).length, 1);
    await pool.cleanup();
  });

  test('a wrong password is in no line; a flood of refusals is a bounded number of records plus the count of the rest', { timeout: 120000 }, async () => {
    const WRONG = 'wrong-pw-Zq9xK7';
    const RIGHT = 'right-pw-Lm3vB2';
    const b = await start(2, ['--password-file', passwordFile({ alice: RIGHT })]);
    const N = 60;
    const codes = await mapLimit(Array.from({ length: N }, (_, i) => i), 8, async (i) => {
      const r = await RawClient.connect(b.port, 4);
      try {
        return connackCode(await r.handshake({ clientId: uid('flood'), username: 'alice', password: Buffer.from(`${WRONG}-${i}`) }));
      } finally { r.socket.destroy(); }
    });
    // Refused: bad credentials (4) or, when the hashing queue was full, server unavailable (3).
    assert.ok(codes.every((c) => c === 4 || c === 3), `CONNACK codes: ${codes}`);
    const ok = await pool.connect(b, { username: 'alice', password: RIGHT });
    await end(ok.client);

    // Written: at most 20 per 10 s window; every refusal is either written or counted.
    const refused = () => findRecords(b.output(), { msg: 'auth: refused', level: 'warn' });
    const counted = () => findRecords(b.output(), { kind: 'auth-refused', msg: /suppressed/ });
    const total = () => refused().length + counted().reduce((n, r) => n + Number(r.suppressed), 0);
    await waitUntil(() => total() === N, () => `${N} refusals written or counted, got ${refused().length} written, ${JSON.stringify(counted())}; output tail:\n${b.output().slice(-3000)}`, 40000);
    const windows = counted().length + 1;
    assert.ok(counted().length >= 1, 'no record counting the suppressed refusals');
    assert.ok(refused().length <= 20 * windows, `${refused().length} refusal records in ${windows} windows`);
    for (const r of refused()) {
      assert.match(String(r.address), /^127\.0\.0\.1:\d+$/);
      assert.equal(r.username, 'alice');
    }
    await stopClean(b);
    const out = b.output();
    assert.ok(!out.includes(WRONG), 'a wrong password is in the log');
    assert.ok(!out.includes(RIGHT), 'the right password is in the log');
  });

  test('--log-level warn: no info record; the warnings and the listening lines stay', { timeout: 60000 }, async () => {
    const b = await start(1, ['--log-level', 'warn', '--password-file', passwordFile({ bob: 'bob-pw-1' })]);
    const ok = await pool.connect(b, { username: 'bob', password: 'bob-pw-1' });
    await end(ok.client);
    const r = await RawClient.connect(b.port, 4);
    await r.handshake({ clientId: uid('warn'), username: 'bob', password: Buffer.from('nope') });
    r.socket.destroy();
    await waitUntil(() => findRecords(b.output(), { msg: 'auth: refused' }).length === 1, () => `a refusal record; output:\n${b.output()}`);
    await stopClean(b);
    const infos = logRecords(b.output()).filter((x) => x.level === 'info');
    // Only the lines launchers wait for (where it listens) are written whatever the level.
    assert.deepEqual(infos.filter((x) => !/^fleetmq(?: listening on |: http endpoints at )/.test(x.msg)), [], 'info records at --log-level warn');
    assert.equal(findRecords(b.output(), { msg: 'client connected' }).length, 0);
  });

  test('--log-format pretty: one human line per record, none of them JSON', { timeout: 60000 }, async () => {
    const b = await start(1, ['--log-format', 'pretty']);
    const id = uid('pretty');
    const c = await pool.connect(b, { clientId: id, username: 'carol' });
    await end(c.client);
    await b.waitForOutput(new RegExp(`INFO\\s+worker 0\\s+client disconnected clientId=${id} username=carol address=127\\.0\\.0\\.1:\\d+ transport=tcp reason=client_disconnect`));
    await stopClean(b, false);
    const lines = b.output().split('\n').filter((l) => l.trim() !== '');
    assert.deepEqual(lines.filter((l) => l.startsWith('{')), [], 'JSON lines in the pretty format');
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO\s+main\s+fleetmq listening on /.test(l)), `no pretty listening line:\n${b.output()}`);
  });

  test('a stdout that nobody reads never blocks the broker: the writer drops what does not fit and counts it', { timeout: 120000 }, async () => {
    // A 4 KiB writer buffer (test hook): the pipe (64 KiB) and the buffer fill after a few
    // hundred records.
    const b = await launchBroker(2, ['--durability', 'none'], { env: { FLEETMQ_TEST_HOOKS: '1', FLEETMQ_TEST_LOG_BUFFER_BYTES: '4096' } });
    brokers.push(b);
    const port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
    b.proc.stdout!.pause();
    try {
      // Each cycle is two records (connect, disconnect) of ~300 bytes: 400 cycles ≈ 240 KiB.
      for (let i = 0; i < 400; i++) {
        const c = await pool.connect(b, { clientId: uid(`blocked-${i}-`), username: 'x'.repeat(100) });
        await end(c.client);
      }
      // Served all along; the drops are counted while stdout is still blocked.
      const m = parsePromText((await request(port, '/metrics')).body);
      const dropped = sampleValue(m, 'fleetmq_log_records_dropped_total', { stage: 'writer' });
      assert.ok(dropped > 0, `no writer drops counted with stdout blocked: ${dropped}`);
      assert.ok(sampleValue(m, 'fleetmq_disconnects_total', { reason: 'client_disconnect' }) >= 400);
    } finally {
      b.proc.stdout!.resume();
    }
    // Once stdout is read again, records flow again (the first ones may still meet a full
    // buffer while it empties, and be dropped: a client every 200 ms until one shows).
    const ids: string[] = [];
    const seen = () => ids.some((id) => findRecords(b.output(), { msg: 'client disconnected', clientId: id }).length === 1);
    const deadline = Date.now() + 30000;
    while (!seen() && Date.now() < deadline) {
      const id = uid('after-block');
      ids.push(id);
      const c = await pool.connect(b, { clientId: id });
      await end(c.client);
      await delay(200);
    }
    assert.ok(seen(), `no record written after stdout was read again (${ids.length} clients); output tail:\n${b.output().slice(-1500)}`);
    assert.equal(await b.stop(), 0, b.output().slice(-2000));
    assert.deepEqual(crashLines(b.output()), []);
  });

  test('/metrics counts the records the log path drops (ring and writer)', { timeout: 60000 }, async () => {
    const b = await start(2, []);
    const port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
    const r = await request(port, '/metrics');
    assert.equal(r.status, 200);
    const m = parsePromText(r.body);
    assert.equal(m.get('fleetmq_log_records_dropped_total')!.type, 'counter');
    // stdout is read by the test as fast as it comes: nothing is dropped.
    assert.equal(sampleValue(m, 'fleetmq_log_records_dropped_total', { stage: 'ring' }), 0);
    assert.equal(sampleValue(m, 'fleetmq_log_records_dropped_total', { stage: 'writer' }), 0);
    await stopClean(b);
  });
});
