// 41: the series the operability work added to /metrics (and $SYS), from a real broker process
// with --workers 2, a password file and a store, parsed by the strict parser
// (test/helpers/prom-text.ts, histograms checked bucket by bucket):
// - fleetmq_disconnects_total by reason: client DISCONNECT, keep-alive timeout, protocol error,
//   takeover, each exactly once as the test caused them;
// - fleetmq_auth_results_total by method and result;
// - the latency histograms: password checks (fleetmq_auth_duration_seconds) and store commits
//   (fleetmq_store_commit_duration_seconds);
// - per-worker load (messages received and sent, clients connected, by worker); connections by
//   transport; messages queued and in flight;
// - counters and every histogram series never go down between two scrapes;
// - $SYS/broker/clients/disconnected/<reason> has the same figures;
// - --metrics false: no /metrics route (404), /livez still answers.
import { describe, test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { launchBroker, makeTempDir, HTTP_LISTEN_RE, type Broker } from '../helpers/broker';
import { clientPool, end, subscribe, publish } from '../helpers/clients';
import { RawClient, connackCode } from '../helpers/raw-client';
import { request } from '../helpers/http';
import { parsePromText, sampleValue, histogramOf, type PromFamily } from '../helpers/prom-text';
import { waitUntil, delay, WAIT_MS } from '../helpers/wait';
import { crashLines } from '../helpers/proc';
import { uid, utopic } from '../helpers/ids';
import { setPassword } from '../../src/auth/password-file';

async function scrape(port: number): Promise<Map<string, PromFamily>> {
  const r = await request(port, '/metrics');
  assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.body}`);
  return parsePromText(r.body);
}

async function scrapeUntil(port: number, pred: (m: Map<string, PromFamily>) => boolean, what: string): Promise<Map<string, PromFamily>> {
  const deadline = Date.now() + 3 * WAIT_MS;
  for (;;) {
    const m = await scrape(port);
    if (pred(m)) return m;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

const disc = (m: Map<string, PromFamily>, reason: string) => sampleValue(m, 'fleetmq_disconnects_total', { reason });
const auth = (m: Map<string, PromFamily>, method: string, result: string) => sampleValue(m, 'fleetmq_auth_results_total', { method, result });

describe('41 disconnects, auth results, latency histograms, per-worker load', () => {
  let b: Broker;
  let port: number;
  const pool = clientPool('after');

  before(async () => {
    const file = path.join(makeTempDir('fleetmq-41-'), 'pw');
    setPassword(file, 'alice', Buffer.from('alice-pw'), 1000);
    setPassword(file, 'bob', Buffer.from('bob-pw'), 1000);
    b = await launchBroker(2, ['--password-file', file, '--sys-interval', '1']);
    port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
  });
  after(async () => {
    await pool.cleanup();
    if (b) assert.equal(await b.stop(), 0, `broker exit code; output:\n${b.output()}`);
    if (b) assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
  });

  test('each disconnect counted under its reason; auth results by method; both histograms; per-worker series', { timeout: 90000 }, async () => {
    const before0 = await scrape(port);
    for (const r of ['client_disconnect', 'keepalive_timeout', 'protocol_error', 'takeover', 'shutdown', 'connection_lost', 'internal_error', 'kicked', 'server_other', 'output_limit', 'fenced']) {
      assert.equal(disc(before0, r), 0, `${r} before any client`);
    }
    // A persistent session with a QoS 1 subscription: its store writes are group commits.
    const alice = await pool.connect(b, { clientId: uid('alice'), username: 'alice', password: 'alice-pw', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    const topic = utopic('m41');
    await subscribe(alice.client, topic, { qos: 1 });
    await publish(alice.client, topic, 'one', { qos: 1 });
    await alice.inbox.waitFor(1, topic);
    await end(alice.client); // client_disconnect

    // Refused: a wrong password, and an anonymous client (the password file refuses those).
    const wrong = await RawClient.connect(b.port, 4);
    assert.equal(connackCode(await wrong.handshake({ clientId: uid('w'), username: 'bob', password: Buffer.from('not-bob') })), 4);
    wrong.socket.destroy();
    const anon = await RawClient.connect(b.port, 4);
    assert.equal(connackCode(await anon.handshake({ clientId: uid('anon') })), 5);
    anon.socket.destroy();

    // keepalive_timeout, protocol_error, takeover.
    const ka = await RawClient.connect(b.port, 4);
    await ka.handshake({ clientId: uid('ka'), keepalive: 1, username: 'bob', password: Buffer.from('bob-pw') });
    await ka.expectClose('the keep-alive timeout', 20000);
    const pe = await RawClient.connect(b.port, 4);
    await pe.handshake({ clientId: uid('pe'), username: 'bob', password: Buffer.from('bob-pw') });
    pe.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'again', keepalive: 0 });
    await pe.expectClose('the close after a second CONNECT');
    const id = uid('taken');
    const first = await RawClient.connect(b.port, 5);
    await first.handshake({ clientId: id, username: 'bob', password: Buffer.from('bob-pw') });
    const second = await RawClient.connect(b.port, 5);
    await second.handshake({ clientId: id, username: 'bob', password: Buffer.from('bob-pw') });
    await first.expectClose('the takeover of the first connection'); // v5: DISCONNECT 0x8E [MQTT-3.1.4-3]
    second.socket.destroy(); // connection_lost

    const m = await scrapeUntil(port, (x) => disc(x, 'client_disconnect') === 1 && disc(x, 'keepalive_timeout') === 1 &&
      disc(x, 'protocol_error') === 1 && disc(x, 'takeover') === 1 && disc(x, 'connection_lost') === 1, 'one disconnect of each reason caused');
    assert.equal(disc(m, 'shutdown'), 0);
    assert.equal(disc(m, 'internal_error'), 0);
    // alice, ka, pe, first, second: five password connections let in (checked or cached).
    assert.equal(auth(m, 'password', 'allow'), 5);
    assert.equal(auth(m, 'password', 'deny'), 1);
    assert.equal(auth(m, 'anonymous', 'deny'), 1);
    assert.equal(auth(m, 'anonymous', 'allow'), 0);
    assert.equal(auth(m, 'password', 'busy'), 0);

    // Password checks timed on the main thread: alice's, bob's first, the wrong one at least.
    const ah = histogramOf(m, 'fleetmq_auth_duration_seconds');
    assert.ok(ah.count >= 3, `auth histogram count ${ah.count}`);
    assert.ok(ah.sum > 0, 'auth histogram sum');
    assert.equal(ah.buckets[ah.buckets.length - 1][0], Infinity);
    const sh = histogramOf(m, 'fleetmq_store_commit_duration_seconds');
    assert.ok(sh.count >= 1, `store commit histogram count ${sh.count}`);
    assert.ok(sh.sum > 0, 'store commit histogram sum');

    // Per-worker load, one sample per worker.
    for (const fam of ['fleetmq_worker_messages_received_total', 'fleetmq_worker_messages_sent_total', 'fleetmq_worker_clients_connected']) {
      assert.deepEqual(m.get(fam)!.samples.map((s) => s.labels.worker).sort(), ['0', '1'], fam);
    }
    const received = m.get('fleetmq_worker_messages_received_total')!.samples.reduce((n, s) => n + s.value, 0);
    assert.equal(received, sampleValue(m, 'fleetmq_messages_received_total'));
    // Event-loop lag per worker (from the heartbeats).
    for (const w of ['worker-0', 'worker-1']) sampleValue(m, 'fleetmq_event_loop_delay_p99_seconds', { thread: w });

    // $SYS has the same figures.
    const watcher = await pool.connect(b, { username: 'alice', password: 'alice-pw' });
    let sysValue = -1;
    watcher.client.on('message', (t: string, p: Buffer) => { if (t === '$SYS/broker/clients/disconnected/keepalive-timeout') sysValue = Number(p.toString()); });
    await subscribe(watcher.client, '$SYS/broker/clients/disconnected/#', { qos: 0 });
    await waitUntil(() => sysValue === 1, () => `$SYS keepalive-timeout is ${sysValue}`, 20000);

    // Alice's session is offline: a QoS 1 message to her topic waits in its queue (sampled once a second).
    await publish(watcher.client, topic, 'while-away', { qos: 1 });
    const q = await scrapeUntil(port, (x) => sampleValue(x, 'fleetmq_messages_queued') >= 1, 'a queued message in fleetmq_messages_queued');
    assert.equal(sampleValue(q, 'fleetmq_messages_inflight'), 0);
    // Connections by transport: all of them TCP here.
    const t = await scrapeUntil(port, (x) => sampleValue(x, 'fleetmq_transport_connections', { transport: 'tcp' }) === sampleValue(x, 'fleetmq_connections'), 'tcp connections = all connections');
    assert.ok(sampleValue(t, 'fleetmq_transport_connections', { transport: 'tcp' }) >= 1);
    assert.equal(sampleValue(t, 'fleetmq_transport_connections', { transport: 'tls' }), 0);
    assert.equal(sampleValue(t, 'fleetmq_transport_connections', { transport: 'websocket' }), 0);
  });

  test('counters and histogram series never go down between scrapes', { timeout: 60000 }, async () => {
    const firstScrape = await scrape(port);
    for (let i = 0; i < 5; i++) {
      const c = await pool.connect(b, { username: 'bob', password: 'bob-pw' });
      await end(c.client);
    }
    const bad = await RawClient.connect(b.port, 4);
    await bad.handshake({ clientId: uid('bad'), username: 'alice', password: Buffer.from('nope') });
    bad.socket.destroy();
    const secondScrape = await scrapeUntil(port, (x) => disc(x, 'client_disconnect') >= disc(firstScrape, 'client_disconnect') + 5, '5 more client disconnects');
    let compared = 0;
    for (const [name, f] of firstScrape) {
      if (f.type !== 'counter' && f.type !== 'histogram') continue;
      for (const s of f.samples) {
        const later = secondScrape.get(name)!.samples.find((x) => x.name === s.name && JSON.stringify(x.labels) === JSON.stringify(s.labels));
        assert.ok(later, `${s.name}${JSON.stringify(s.labels)} is gone in the second scrape`);
        assert.ok(later.value >= s.value, `${s.name}${JSON.stringify(s.labels)} went down: ${s.value} then ${later.value}`);
        compared++;
      }
    }
    assert.ok(compared >= 60, `only ${compared} samples compared`);
    assert.ok(histogramOf(secondScrape, 'fleetmq_auth_duration_seconds').count > histogramOf(firstScrape, 'fleetmq_auth_duration_seconds').count, 'the wrong password was not timed');
  });
});

describe('41 --metrics false', () => {
  test('no /metrics route; /livez and /readyz still answer', { timeout: 60000 }, async () => {
    const b = await launchBroker(1, ['--durability', 'none', '--metrics', 'false']);
    try {
      const port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
      assert.equal((await request(port, '/metrics')).status, 404);
      assert.equal((await request(port, '/livez')).status, 200);
      assert.equal((await request(port, '/readyz')).status, 200);
    } finally {
      assert.equal(await b.stop(), 0, b.output());
    }
  });
});
