// 32: the operations HTTP listener of a real broker process (--http-port 0, the port read from
// its startup line): GET /metrics in the Prometheus text format (parsed by the strict parser in
// test/helpers/prom-text.ts) counting real mqtt clients and traffic across 2 workers; /livez;
// /readyz through starting, serving and draining; 404, 405, HEAD and a request that does not
// parse.
import { describe, test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { launchBroker, watchBroker, makeTempDir, Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { clientPool, Clients, subscribe, publish } from '../helpers/clients';
import { request } from '../helpers/http';
import { parsePromText, sampleValue, type PromFamily } from '../helpers/prom-text';
import { encode, connectPacket } from '../helpers/raw-client';
import { waitUntil, within, delay, WAIT_MS } from '../helpers/wait';
import { utopic } from '../helpers/ids';
import { crashLines } from '../helpers/proc';
import { BIN } from '../helpers/paths';

async function httpPortOf(b: { waitForOutput(re: RegExp, ms?: number): Promise<RegExpMatchArray> }): Promise<number> {
  return Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
}

async function scrape(port: number): Promise<Map<string, PromFamily>> {
  const r = await request(port, '/metrics');
  assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.body}`);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parsePromText(r.body);
}

/** Scrapes until `pred` holds (the workers update their counters on their own threads); bounded. */
async function scrapeUntil(port: number, pred: (m: Map<string, PromFamily>) => boolean, what: (m: Map<string, PromFamily>) => string): Promise<Map<string, PromFamily>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const m = await scrape(port);
    if (pred(m)) return m;
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what(m)}`);
    await delay(20);
  }
}

describe('32 /metrics, /livez, /readyz with --workers 2', () => {
  let b: Broker;
  let port: number;
  const pool = clientPool('after');

  before(async () => {
    b = await launchBroker(2, ['--durability', 'none']);
    port = await httpPortOf(b);
  });
  after(async () => {
    await pool.cleanup();
    if (b) assert.equal(await b.stop(), 0, `broker exit code; output:\n${b.output()}`);
    if (b) assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
  });

  test('4 connected clients show as 4 connections, spread over the 2 workers; every family has HELP and TYPE', { timeout: 60000 }, async () => {
    for (let i = 0; i < 4; i++) await pool.connect(b, { protocolVersion: i % 2 ? 5 : 4 });
    const m = await scrapeUntil(port, (x) => sampleValue(x, 'fleetmq_clients_connected') === 4,
      (x) => `fleetmq_clients_connected 4 (saw ${sampleValue(x, 'fleetmq_clients_connected')})`);
    assert.equal(sampleValue(m, 'fleetmq_connections'), 4);
    assert.equal(sampleValue(m, 'fleetmq_clients_connected'), 4);
    assert.equal(sampleValue(m, 'fleetmq_workers'), 2);
    const perWorker = m.get('fleetmq_worker_connections')!.samples;
    assert.deepEqual(perWorker.map((s) => s.labels.worker).sort(), ['0', '1']);
    assert.equal(perWorker.reduce((a, s) => a + s.value, 0), 4);
    // Least-loaded placement of sequential connects puts two on each worker.
    assert.deepEqual(perWorker.map((s) => s.value), [2, 2], 'connections per worker');
    assert.ok(sampleValue(m, 'fleetmq_connections_total') >= 4);
    assert.equal(sampleValue(m, 'fleetmq_worker_restarts_total'), 0);
    for (const reason of ['slow_consumer', 'queue_full', 'expired', 'too_large']) sampleValue(m, 'fleetmq_messages_dropped_total', { reason });
    for (const reason of ['auth', 'busy', 'no_worker']) sampleValue(m, 'fleetmq_connections_refused_total', { reason });
    // Every thread beats: both workers, the coordinator, and the main thread that answers.
    assert.deepEqual(m.get('fleetmq_heartbeat_age_seconds')!.samples.map((s) => s.labels.thread).sort(), ['coordinator', 'main', 'worker-0', 'worker-1']);
    for (const [name, f] of m) {
      assert.ok(f.help && f.help.length > 0, `${name} has no HELP`);
      // Histograms (latency) are checked bucket by bucket by the strict parser.
      assert.ok(f.type === 'counter' || f.type === 'gauge' || f.type === 'histogram', `${name} has TYPE ${f.type}`);
      assert.ok(f.samples.length > 0, `${name} has no sample`);
      assert.match(name, /^(fleetmq|process)_/, `${name} lacks the fleetmq_ prefix`);
      if (f.type === 'counter') assert.match(name, /_total$/, `counter ${name} does not end in _total`);
      for (const s of f.samples) assert.ok(Number.isFinite(s.value) && s.value >= 0, `${name}${JSON.stringify(s.labels)} = ${s.value}`);
    }
  });

  test('counters never go down between two scrapes while traffic flows', { timeout: 90000 }, async () => {
    const topic = utopic('metrics');
    const sub = await pool.connect(b, { protocolVersion: 5 });
    await subscribe(sub.client, topic, { qos: 1 });
    const pub = await pool.connect(b, { protocolVersion: 5 });
    let flowing = true;
    let sent = 0;
    const traffic = (async () => {
      while (flowing) { await publish(pub.client, topic, `m${sent}`, { qos: sent % 2 ? 1 : 0 }); sent++; }
    })();
    try {
      await sub.inbox.waitFor(20, topic);
      const first = await scrape(port);
      const seen = sub.inbox.on(topic).length;
      // More traffic between the scrapes, and the second one while it still flows.
      await sub.inbox.waitFor(seen + 50, topic);
      const second = await scrape(port);
      let compared = 0;
      for (const [name, f] of first) {
        if (f.type !== 'counter') continue;
        for (const s of f.samples) {
          const later = sampleValue(second, name, s.labels);
          assert.ok(later >= s.value, `${name}${JSON.stringify(s.labels)} went down: ${s.value} then ${later}`);
          compared++;
        }
      }
      assert.ok(compared >= 15, `only ${compared} counter samples compared`);
      for (const name of ['fleetmq_messages_received_total', 'fleetmq_messages_sent_total', 'fleetmq_bytes_received_total', 'fleetmq_bytes_sent_total']) {
        assert.ok(sampleValue(second, name) > sampleValue(first, name), `${name} did not grow under traffic: ${sampleValue(first, name)} then ${sampleValue(second, name)}`);
      }
    } finally {
      flowing = false;
      await within(traffic, WAIT_MS, 'the publishing loop to stop');
    }
  });

  test('/livez 200 and /readyz 200 while serving; 404 for another path, 405 for another method; HEAD; a query string', { timeout: 60000 }, async () => {
    const live = await request(port, '/livez');
    assert.equal(live.status, 200, live.body);
    const ready = await request(port, '/readyz');
    assert.equal(ready.status, 200, ready.body);
    const missing = await request(port, '/nope');
    assert.equal(missing.status, 404);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await request(port, '/metrics', { method });
      assert.equal(r.status, 405, `${method} /metrics`);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    const head = await request(port, '/livez', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await request(port, '/readyz?verbose=1')).status, 200);
  });

  test('a request that is not HTTP gets 400 and the listener goes on serving', { timeout: 60000 }, async () => {
    const answer = await within(new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      s.on('data', (d) => { got += d.toString(); });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.write('\x10\x00garbage that is not HTTP\r\n\r\n');
    }), WAIT_MS, 'the listener to answer and close a request that does not parse');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal((await request(port, '/livez')).status, 200);
  });
});

describe('32 /readyz through startup and shutdown', () => {
  test('503 while the store is still loading, /livez 200 meanwhile', { timeout: 60000 }, async () => {
    // The test hook makes the store open hang (src/coordinator/persistence.ts): the broker stays "starting".
    const dir = makeTempDir();
    const proc = spawn(process.execPath, [BIN, '--port', '0', '--workers', '1', '--http-port', '0', '--data-dir', path.join(dir, 'store')], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLEETMQ_TEST_HOOKS: '1', FLEETMQ_TEST_STORE_OPEN: 'hang' },
    });
    const w = watchBroker(proc);
    try {
      const port = await httpPortOf(w);
      const r = await request(port, '/readyz');
      assert.equal(r.status, 503, r.body);
      assert.match(r.body, /^starting/);
      assert.equal((await request(port, '/livez')).status, 200);
      assert.doesNotMatch(w.output(), /fleetmq listening on/);
    } finally {
      if (w.alive()) proc.kill('SIGKILL');
      await w.exited;
    }
  });

  test('503 from SIGTERM on while draining (a client still connected), then the process exits 0', { timeout: 60000 }, async () => {
    const b = await launchBroker(1, ['--durability', 'none']);
    const port = await httpPortOf(b);
    // A keep-alive connection made before the signal: the drain answer needs no new connection.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // A raw MQTT 5 client that never closes its side (allowHalfOpen): the broker's drain waits
    // for it (workers/net/connections.ts, closeAll) until it gives up on the socket.
    const client = net.connect({ port: b.port, host: '127.0.0.1', allowHalfOpen: true });
    const connected = new Promise((r) => client.once('connect', r));
    let bytes = Buffer.alloc(0);
    let fin = false;
    client.on('data', (d: Buffer) => { bytes = Buffer.concat([bytes, d]); });
    client.on('end', () => { fin = true; });
    client.on('error', () => { /* the broker destroys it at the end of the drain */ });
    try {
      assert.equal((await request(port, '/readyz', { agent })).status, 200);
      await within(connected, WAIT_MS, 'the raw client to connect');
      client.write(encode(connectPacket(5), 5));
      await waitUntil(() => bytes.length > 0, 'the CONNACK');
      assert.equal(bytes[0], 0x20, `expected a CONNACK, got 0x${bytes[0].toString(16)}`);
      b.proc.kill('SIGTERM');
      // Draining has begun once the broker sent DISCONNECT 0x8B and its FIN to the client.
      await waitUntil(() => fin, () => `the broker to end the client's connection after SIGTERM; output:\n${b.output()}`);
      assert.ok(b.alive(), 'the broker exited before the client closed (nothing to observe)');
      const r = await request(port, '/readyz', { agent });
      assert.equal(r.status, 503, `GET /readyz while draining: ${r.status} ${r.body}`);
      assert.match(r.body, /^draining/);
      client.end();
      const e = await b.waitExit(30000, 'after SIGTERM and the client closing');
      assert.equal(e.code, 0, `exit ${e.code} / ${e.signal}; output:\n${b.output()}`);
      assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
    } finally {
      agent.destroy();
      client.destroy();
      await b.kill();
    }
  });
});

describe('32 /livez and /metrics when a worker stalls or dies (FLEETMQ_TEST_HOOKS=1)', () => {
  test('a worker whose event loop is blocked makes /livez 503 naming it, /metrics still answers, then 200 again', { timeout: 90000 }, async () => {
    const b = await launchBroker(2, ['--durability', 'none'], { env: { FLEETMQ_TEST_HOOKS: '1' } });
    const clients = new Clients();
    try {
      const port = await httpPortOf(b);
      assert.equal((await request(port, '/livez')).status, 200);
      const c = await clients.mqtt(b.port, { protocolVersion: 4 });
      // workers/test-hooks.ts: blocks the publisher's worker longer than a heartbeat may be missed.
      c.client.publish('$fleetmq/test/stall-worker', 'x', { qos: 0 });
      let last = await request(port, '/livez');
      const deadline = Date.now() + 30000;
      while (last.status !== 503 && Date.now() < deadline) { await delay(50); last = await request(port, '/livez'); }
      assert.equal(last.status, 503, `/livez never failed while a worker was blocked: ${last.body}`);
      assert.match(last.body, /^stale: worker [01] \(last heartbeat \d+\.\d s ago\)/);
      const stalled = /worker (\d)/.exec(last.body)![1];
      const m = await scrape(port);
      assert.ok(sampleValue(m, 'fleetmq_heartbeat_age_seconds', { thread: `worker-${stalled}` }) > 5);
      // The stall ends on its own; the heartbeat resumes.
      let again = await request(port, '/livez');
      const until = Date.now() + 60000;
      while (again.status !== 200 && Date.now() < until) { await delay(100); again = await request(port, '/livez'); }
      assert.equal(again.status, 200, `/livez did not recover after the stall: ${again.body}`);
    } finally {
      await clients.closeAll();
      await b.stop();
    }
  });

  test('a worker that dies is replaced and counted in fleetmq_worker_restarts_total', { timeout: 90000 }, async () => {
    const b = await launchBroker(2, ['--durability', 'none'], { env: { FLEETMQ_TEST_HOOKS: '1' } });
    const clients = new Clients();
    try {
      const port = await httpPortOf(b);
      assert.equal(sampleValue(await scrape(port), 'fleetmq_worker_restarts_total'), 0);
      const c = await clients.mqtt(b.port, { protocolVersion: 4 });
      c.client.publish('$fleetmq/test/crash-worker', 'x', { qos: 0 });
      await scrapeUntil(port, (m) => sampleValue(m, 'fleetmq_worker_restarts_total') === 1,
        (m) => `fleetmq_worker_restarts_total 1 (saw ${sampleValue(m, 'fleetmq_worker_restarts_total')})`);
      // The replacement beats: /livez stays or comes back to 200.
      let live = await request(port, '/livez');
      const until = Date.now() + 30000;
      while (live.status !== 200 && Date.now() < until) { await delay(100); live = await request(port, '/livez'); }
      assert.equal(live.status, 200, live.body);
      assert.equal(sampleValue(await scrape(port), 'fleetmq_workers'), 2);
    } finally {
      await clients.closeAll();
      await b.stop();
    }
  });
});
