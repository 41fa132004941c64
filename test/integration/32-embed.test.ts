// 32: the embedding API (src/index.ts, package.json "main"): startBroker() in this very process,
// twice in a row, with a real mqtt client round trip each time; close() must give back both
// ports, the worker and coordinator threads and every timer. One broker per process may have a
// store (the rocksdb addon loads in one thread per process, src/broker.ts): a second one is
// refused with a clear error, not a crash. Bad options and a start that fails reject with a clear
// error and leave nothing running.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs/promises';
import { startBroker, ConfigError, type Broker } from '../../src/index';
import { connectClient, subscribe, publish, end, type Connected } from '../helpers/clients';
import { makeTempDir, freePort } from '../helpers/broker';
import { request } from '../helpers/http';
import { threadCount } from '../helpers/proc';
import { waitUntil } from '../helpers/wait';

/** What keeps this process's event loop busy (timers, sockets, servers, requests), by kind. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** What the event loop holds now beyond `baseline` ("" when nothing). */
function beyond(baseline: Map<string, number>): string {
  return [...resources()].filter(([k, n]) => n > (baseline.get(k) ?? 0)).map(([k, n]) => `${k}×${n - (baseline.get(k) ?? 0)}`).join(', ');
}

function bindAndClose(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err) => reject(new Error(`port ${port} is still taken after close(): ${err.message}`)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

/** One broker's life in this process: a round trip through it, then close() and checks that it let go of everything. */
async function roundTrip(options: Parameters<typeof startBroker>[0], round: string, extra: (sub: Connected, pub: Connected) => Promise<void> = async () => undefined): Promise<number> {
  const baseline = resources();
  const broker: Broker = await startBroker(options);
  const clients: Connected[] = [];
  let running = Infinity;
  try {
    assert.ok(broker.port > 0 && broker.httpPort! > 0, `ports ${broker.port} / ${broker.httpPort}`);
    assert.equal(broker.host, '127.0.0.1');
    const sub = await connectClient(broker.port, { protocolVersion: 4 });
    clients.push(sub);
    const pub = await connectClient(broker.port, { protocolVersion: 5 });
    clients.push(pub);
    await subscribe(sub.client, 'embed/round', { qos: 1 });
    await publish(pub.client, 'embed/round', round, { qos: 1 });
    await sub.inbox.waitForPayload(round);
    await extra(sub, pub);
    const ready = await request(broker.httpPort!, '/readyz');
    assert.equal(ready.status, 200, ready.body);
    running = threadCount(process.pid);
  } finally {
    for (const c of clients) await end(c.client);
    await broker.close();
  }
  await bindAndClose(broker.port);
  await bindAndClose(broker.httpPort!);
  // Its 2 workers and the coordinator are gone (the count falls as the threads are joined).
  await waitUntil(() => threadCount(process.pid) <= running - 3, () => `the broker's 3 threads to end (${running} while running, ${threadCount(process.pid)} now)`);
  await waitUntil(() => beyond(baseline) === '', () => `the event loop to hold no more than before the broker; it also holds ${beyond(baseline)}`);
  assert.equal(await broker.close().then(() => 'again'), 'again', 'a second close() resolves too');
  return threadCount(process.pid);
}

test('startBroker twice in one process: a round trip each time; close() frees the ports, threads and timers', { timeout: 180000 }, async () => {
  const after1 = await roundTrip({ port: 0, httpPort: 0, workers: 2, durability: 'none' }, 'round 1');
  const after2 = await roundTrip({ port: 0, httpPort: 0, workers: 2, durability: 'none' }, 'round 2');
  // Nothing accumulates from one broker to the next (libuv's thread pool is made once).
  assert.ok(after2 <= after1, `threads after each close: ${after1}, ${after2}`);
});

test('a broker with a store, then a second one with a store in the same process: a clear refusal, nothing started', { timeout: 180000 }, async () => {
  const dataDir = makeTempDir();
  await roundTrip({ port: 0, httpPort: 0, workers: 2, dataDir }, 'stored', async (sub, pub) => {
    await publish(pub.client, 'embed/retained', 'kept', { qos: 1, retain: true });
    await subscribe(sub.client, 'embed/retained', { qos: 1 });
    await sub.inbox.waitForPayload('kept');
  });
  // The rocksdb addon loads in one thread per process (src/broker.ts): said, not a crash.
  const threads = threadCount(process.pid);
  const baseline = resources();
  await assert.rejects(startBroker({ port: 0, httpPort: 0, workers: 1, dataDir }), /durability 'process' needs the rocksdb addon, which loads in one thread per process only/);
  assert.equal(threadCount(process.pid), threads);
  assert.equal(beyond(baseline), '');
  // Without a store, the next broker in this process is fine.
  await roundTrip({ port: 0, httpPort: 0, workers: 2, durability: 'none' }, 'after the store');
});

test('bad options reject with a ConfigError naming the option; nothing is started', { timeout: 60000 }, async () => {
  const threads = threadCount(process.pid);
  const baseline = resources();
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ workrs: 2 }, /unknown option "workrs"/],
    [{ port: 70000 }, /port: 70000 is out of range/],
    [{ port: '12ab' }, /port: expected an integer/],
    [{ durability: 'sometimes' }, /durability: expected one of none, process, fsync/],
    [{ host: '0.0.0.0' }, /--host 0\.0\.0\.0 without authentication/],
    [{ config: 'x.json' }, /unknown option "config"/],
  ];
  for (const [options, re] of cases) {
    await assert.rejects(startBroker(options as never), (err: Error) => {
      assert.ok(err instanceof ConfigError, `${JSON.stringify(options)}: ${err.constructor.name}: ${err.message}`);
      assert.match(err.message, re);
      return true;
    });
  }
  await assert.rejects(startBroker(null as never), ConfigError);
  assert.equal(threadCount(process.pid), threads);
  assert.equal(beyond(baseline), '');
});

test('a start that fails (the MQTT port is taken) rejects and gives back its threads, its HTTP port and its timers', { timeout: 60000 }, async () => {
  await fs.stat('.'); // libuv's thread pool starts on first use: not the broker's to give back
  const baseline = resources();
  const threads = threadCount(process.pid);
  const httpPort = await freePort();
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    await assert.rejects(startBroker({ port, httpPort, workers: 1, durability: 'none' }), /EADDRINUSE/);
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
  await bindAndClose(httpPort);
  await waitUntil(() => threadCount(process.pid) <= threads, () => `the failed broker's threads to end (${threads} before, ${threadCount(process.pid)} now)`);
  await waitUntil(() => beyond(baseline) === '', () => `the event loop to hold no more than before; it also holds ${beyond(baseline)}`);
});
