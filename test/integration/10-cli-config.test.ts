// 10: the command line and the JSON config file .
//
// - `--help` documents every flag.
// - `--port 0` binds a free port and prints `fleetmq listening on HOST:PORT`.
// - Flags apply (observable in a v5 CONNACK and in enforcement), `--config FILE` keys (the
//   camelCase of the flags) apply the same way, and flags win over the config.
// - A bad flag, bad value, unknown flag, unreadable / invalid config or unknown config key:
//   exactly one clear line on stderr naming the problem, exit code 2, nothing started.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { mapLimit } from '../helpers/wait';
import { threadCount } from '../helpers/proc';
import { launch, launchBroker, runCli, freePort, Broker } from '../helpers/broker';
import { rawSession, RawClient } from '../helpers/raw-client';
import { connectClient, end } from '../helpers/clients';

const FLAGS = [
  '--port', '--host', '--workers', '--max-keepalive', '--max-packet-size', '--receive-maximum',
  '--max-inflight', '--max-queued-messages', '--max-queued-bytes', '--queue-policy', '--config',
  '--durability', '--data-dir', '--commit-linger-ms', '--store-memtable-mb', '--store-open-timeout-ms',
  '--password-file', '--allow-anonymous', '--auth-pool-threads', '--auth-queue-max', '--auth-cache-entries',
];

let dir: string;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-cli-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function writeConfig(name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Runs `fn` with a broker and always stops it. */
async function withBroker<T>(b: Broker, fn: (b: Broker) => Promise<T>): Promise<T> {
  try { return await fn(b); } finally { await b.kill(); }
}

/** CONNECTs as v5 asking for a 120 s keep-alive and returns the CONNACK. */
async function v5Connack(b: Broker): Promise<IConnackPacket> {
  const c = await RawClient.connect(b.port, 5);
  try {
    const ack = await c.handshake({ clientId: 'cli-probe', keepalive: 120 });
    assert.equal(ack.reasonCode, 0, `CONNACK refused: ${JSON.stringify(ack)}`);
    return ack;
  } finally { c.destroy(); }
}

describe('--help', () => {
  test('documents every flag and the queue policies, exits 0 without starting a broker', { timeout: 180000 }, async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, `--help exit code ${r.code}; stderr: ${r.stderr}`);
    for (const f of FLAGS) assert.ok(r.stdout.includes(f), `--help output does not mention ${f}:\n${r.stdout}`);
    for (const p of ['drop-oldest', 'drop-new', 'disconnect']) {
      assert.ok(r.stdout.includes(p), `--help does not document --queue-policy value ${p}:\n${r.stdout}`);
    }
    assert.doesNotMatch(r.stdout + r.stderr, /fleetmq listening on/, '--help started a broker');
  });
});

describe('--port 0', () => {
  test('prints "fleetmq listening on HOST:PORT" with the bound port and serves MQTT 3.1.1 and 5 there', { timeout: 180000 }, async () => {
    const b = await launch(['--port', '0', '--host', '127.0.0.1', '--workers', '1']);
    await withBroker(b, async () => {
      assert.equal(b.host, '127.0.0.1', `listening line names host ${b.host}`);
      assert.ok(b.port > 0 && b.port < 65536, `listening line names port ${b.port}`);
      const v4 = (await connectClient(b.port, { protocolVersion: 4, clientId: 'cli-v4' })).client;
      const v5 = (await connectClient(b.port, { protocolVersion: 5, clientId: 'cli-v5' })).client;
      await end(v4);
      await end(v5);
    });
  });
});

describe('flags apply', () => {
  test('--max-keepalive, --receive-maximum and --max-packet-size show in the v5 CONNACK', { timeout: 180000 }, async () => {
    const b = await launchBroker(1, ['--max-keepalive', '30', '--receive-maximum', '20', '--max-packet-size', '4096']);
    await withBroker(b, async () => {
      const ack = await v5Connack(b);
      const props = ack.properties ?? {};
      assert.equal(props.serverKeepAlive, 30, `--max-keepalive 30 with a client asking 120: CONNACK properties ${JSON.stringify(props)}`);
      assert.equal(props.receiveMaximum, 20, `--receive-maximum 20: CONNACK properties ${JSON.stringify(props)}`);
      assert.equal(props.maximumPacketSize, 4096, `--max-packet-size 4096: CONNACK properties ${JSON.stringify(props)}`);
    });
  });

  test('--max-packet-size is enforced: an oversize PUBLISH gets DISCONNECT 0x95 (v5) / the connection closed (v3.1.1)', { timeout: 180000 }, async () => {
    const b = await launchBroker(1, ['--max-packet-size', '4096']);
    await withBroker(b, async () => {
      for (const v of [5, 4] as const) {
        const c = await rawSession(b.port, v, { clientId: `big-${v}` });
        c.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(8000, 0x61), qos: 0, dup: false, retain: false });
        assert.ok(await c.waitClosed(10000), `v${v}: connection still open 10 s after an 8000-byte PUBLISH with --max-packet-size 4096`);
        const disc = c.packets.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
        if (v === 5) {
          assert.ok(disc, `v5: no DISCONNECT before close (expected reason 0x95); got ${c.packets.map((p) => p.cmd).join(',')}`);
          assert.equal(disc.reasonCode, 0x95, `v5 DISCONNECT reason 0x${(disc.reasonCode ?? 0).toString(16)}, expected 0x95 (packet too large)`);
        } else {
          assert.equal(disc, undefined, 'v3.1.1: the broker sent a DISCONNECT packet (servers never send DISCONNECT in 3.1.1)');
        }
      }
    });
  });

  test('every flag is accepted together, with each --queue-policy value', { timeout: 180000 }, async () => {
    for (const policy of ['drop-oldest', 'drop-new', 'disconnect']) {
      const b = await launchBroker(2, [
        '--max-keepalive', '60', '--max-packet-size', '65536', '--receive-maximum', '100', '--max-inflight', '50',
        '--max-queued-messages', '1000', '--max-queued-bytes', '1000000', '--queue-policy', policy,
      ]);
      await withBroker(b, async () => {
        const c = (await connectClient(b.port, { protocolVersion: 5, clientId: `all-${policy}` })).client;
        await end(c);
      });
    }
  });
});

describe('--config FILE', () => {
  test('every flag has a camelCase config key, and the keys apply', { timeout: 180000 }, async () => {
    const port = await freePort();
    const cfg = writeConfig('all.json', {
      port, host: '127.0.0.1', workers: 2, maxKeepalive: 30, maxPacketSize: 4096, receiveMaximum: 20,
      maxInflight: 10, maxQueuedMessages: 500, maxQueuedBytes: 100000, queuePolicy: 'drop-new',
    });
    const b = await launch(['--config', cfg]);
    await withBroker(b, async () => {
      assert.equal(b.host, '127.0.0.1', 'config host not applied');
      assert.equal(b.port, port, `config port ${port} not applied: listening on ${b.port}`);
      const props = (await v5Connack(b)).properties ?? {};
      assert.equal(props.serverKeepAlive, 30, `config maxKeepalive 30 not applied: CONNACK ${JSON.stringify(props)}`);
      assert.equal(props.receiveMaximum, 20, `config receiveMaximum 20 not applied: CONNACK ${JSON.stringify(props)}`);
      assert.equal(props.maximumPacketSize, 4096, `config maxPacketSize 4096 not applied: CONNACK ${JSON.stringify(props)}`);
    });
  });

  test('flags win over config keys; keys without a flag still apply', { timeout: 180000 }, async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const cfg = writeConfig('win.json', { port: p1, host: '127.0.0.1', workers: 1, maxKeepalive: 30, receiveMaximum: 20 });
    const b = await launch(['--config', cfg, '--port', String(p2), '--max-keepalive', '10']);
    await withBroker(b, async () => {
      assert.equal(b.port, p2, `--port ${p2} should win over config port ${p1}; listening on ${b.port}`);
      const props = (await v5Connack(b)).properties ?? {};
      assert.equal(props.serverKeepAlive, 10, `--max-keepalive 10 should win over config 30: CONNACK ${JSON.stringify(props)}`);
      assert.equal(props.receiveMaximum, 20, `config receiveMaximum 20 (no flag) not applied: CONNACK ${JSON.stringify(props)}`);
    });
    // Flag order must not matter: the flag wins even when it comes before --config.
    const b2 = await launch(['--max-keepalive', '10', '--config', cfg, '--port', '0']);
    await withBroker(b2, async () => {
      const props = (await v5Connack(b2)).properties ?? {};
      assert.equal(props.serverKeepAlive, 10, `--max-keepalive 10 given before --config should still win: CONNACK ${JSON.stringify(props)}`);
    });
  });

  test('config "workers" starts that many worker threads, and --workers wins over it', { timeout: 180000 }, async () => {
    // Worker threads are threads of the broker process: count them in /proc/<pid>/status after
    // the same small amount of traffic in each run.
    const cfg = writeConfig('workers.json', { port: 0, host: '127.0.0.1', workers: 3 });
    const threadsOf = async (args: string[]) => {
      const b = await launch(args);
      return withBroker(b, async () => {
        const c = (await connectClient(b.port, { protocolVersion: 5, clientId: 'threads' })).client;
        await c.subscribeAsync('t');
        await c.publishAsync('t', 'x', { qos: 1 });
        await end(c);
        return threadCount(b.proc.pid!);
      });
    };
    const one = await threadsOf(['--port', '0', '--host', '127.0.0.1', '--workers', '1']);
    const fromConfig = await threadsOf(['--config', cfg]);
    const flagWins = await threadsOf(['--config', cfg, '--workers', '1']);
    assert.ok(fromConfig - one >= 2, `config workers:3 should run at least 2 more threads than --workers 1 (got ${fromConfig} vs ${one})`);
    assert.ok(fromConfig - flagWins >= 2, `--workers 1 should win over config workers:3 (got ${flagWins} threads vs ${fromConfig} for config alone, ${one} for --workers 1)`);
  });
});

describe('bad command lines and configs: one line on stderr naming the problem, exit code 2', () => {
  interface Case { name: string; args: () => string[]; names: RegExp }
  const cases: Case[] = [
    { name: 'non-numeric --port', args: () => ['--port', 'abc'], names: /port/i },
    { name: '--port out of range', args: () => ['--port', '70000'], names: /port/i },
    { name: 'negative --port', args: () => ['--port', '-1'], names: /port/i },
    { name: '--port without a value', args: () => ['--port'], names: /port/i },
    { name: '--workers 0', args: () => ['--port', '0', '--workers', '0'], names: /workers/i },
    { name: 'non-numeric --workers', args: () => ['--port', '0', '--workers', 'two'], names: /workers/i },
    { name: 'fractional --workers', args: () => ['--port', '0', '--workers', '1.5'], names: /workers/i },
    { name: 'non-numeric --max-keepalive', args: () => ['--port', '0', '--max-keepalive', 'x'], names: /keep-?alive/i },
    { name: 'negative --max-keepalive', args: () => ['--port', '0', '--max-keepalive', '-3'], names: /keep-?alive/i },
    { name: 'non-numeric --max-packet-size', args: () => ['--port', '0', '--max-packet-size', 'big'], names: /packet-?size/i },
    { name: '--receive-maximum 0 (not allowed by MQTT 5)', args: () => ['--port', '0', '--receive-maximum', '0'], names: /receive-?maximum/i },
    { name: '--receive-maximum over 65535', args: () => ['--port', '0', '--receive-maximum', '70000'], names: /receive-?maximum/i },
    { name: 'non-numeric --max-inflight', args: () => ['--port', '0', '--max-inflight', 'none'], names: /inflight/i },
    { name: 'negative --max-queued-messages', args: () => ['--port', '0', '--max-queued-messages', '-1'], names: /queued-?messages/i },
    { name: 'non-numeric --max-queued-bytes', args: () => ['--port', '0', '--max-queued-bytes', 'lots'], names: /queued-?bytes/i },
    { name: 'unknown --queue-policy', args: () => ['--port', '0', '--queue-policy', 'drop-random'], names: /queue-?policy|drop-random/i },
    { name: 'unknown flag', args: () => ['--port', '0', '--bogus-flag'], names: /bogus-flag/ },
    { name: 'unknown flag with a value', args: () => ['--port', '0', '--bogus-flag', '1'], names: /bogus-flag/ },
    { name: 'missing config file', args: () => ['--config', path.join(dir, 'does-not-exist.json')], names: /does-not-exist\.json/ },
    { name: 'config path is a directory (unreadable)', args: () => { fs.mkdirSync(path.join(dir, 'a-dir.json'), { recursive: true }); return ['--config', path.join(dir, 'a-dir.json')]; }, names: /a-dir\.json/ },
    { name: 'config is not valid JSON', args: () => ['--config', writeConfig('broken.json', '{"port": 0,')], names: /broken\.json/ },
    { name: 'config is JSON but not an object', args: () => ['--config', writeConfig('array.json', [1, 2])], names: /array\.json|object/i },
    { name: 'unknown config key', args: () => ['--config', writeConfig('unknown-key.json', { port: 0, bogusKey: 1 })], names: /bogusKey/ },
    { name: 'config key with a bad value', args: () => ['--config', writeConfig('bad-port.json', { port: 'abc' })], names: /port/i },
    { name: 'config workers 0', args: () => ['--config', writeConfig('bad-workers.json', { port: 0, workers: 0 })], names: /workers/i },
    { name: 'config unknown queuePolicy', args: () => ['--config', writeConfig('bad-policy.json', { port: 0, queuePolicy: 'sometimes' })], names: /queue-?policy|sometimes/i },
  ];

  test('every bad case is rejected cleanly', { timeout: 180000 }, async () => {
    const failures: string[] = [];
    await mapLimit(cases, 4, async (c) => {
      // Loopback and a free port, so a broker that wrongly starts binds nothing public; runCli
      // kills it after a bounded wait and that counts as a failure.
      const args = [...c.args(), '--host', '127.0.0.1'];
      let r;
      try { r = await runCli(args, { ms: 10000 }); } catch (err) { failures.push(`${c.name}: ${(err as Error).message}`); return; }
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      const problems: string[] = [];
      if (r.code !== 2) problems.push(`exit code ${r.code} (signal ${r.signal}), expected 2`);
      if (lines.length !== 1) problems.push(`${lines.length} stderr lines, expected exactly 1`);
      else if (!c.names.test(lines[0])) problems.push(`stderr line does not name the problem (${c.names})`);
      if (/listening on/.test(r.stdout)) problems.push('a broker started');
      if (problems.length) failures.push(`${c.name} [fleetmq ${args.join(' ')}]: ${problems.join('; ')}; stderr: ${JSON.stringify(r.stderr.slice(0, 400))}`);
    });
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} bad cases not rejected cleanly:\n${failures.join('\n')}`);
  });
});
