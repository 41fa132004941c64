// 30: authentication with a Mosquitto password file, and the secure default.
//
// - A file made by the real mosquitto_passwd (and a mosquitto_passwd 1.x `$6$` line) is read
//   unchanged; right credentials connect (raw v3.1.1 and v5, and the mqtt client); a wrong
//   password or unknown user is CONNACK 4 / 0x86; anonymous is 5 / 0x87 unless
//   --allow-anonymous true. Refusals are logged with the client's address, never a password.
// - `fleetmq passwd` writes a line the real Mosquitto 2.0 accepts (and fleetmq too).
// - SIGHUP reloads the file without dropping connections; a bad file keeps the old table.
// - A connect storm against a one-thread pool with a one-slot queue gets "server busy"
//   (0x89 / 3) answers ahead of the hashed ones, counted in $SYS, while a connected client is
//   served meanwhile.
// - Without authentication the broker binds loopback; a non-loopback --host needs
//   --password-file or an explicit --allow-anonymous true.
import { findRecords } from '../helpers/log-lines';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import type { IConnackPacket } from 'mqtt-packet';
import { BIN } from '../helpers/paths';
import { launch, launchBroker, runCli, Broker } from '../helpers/broker';
import { connectClient, end } from '../helpers/clients';
import { RawClient } from '../helpers/raw-client';
import { waitUntil } from '../helpers/wait';
import { mosquittoPasswd, startMosquitto, mosquittoBinary } from '../helpers/mosquitto';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-auth-'));
  mosquittoBinary('mosquitto'); // fails the suite at once with the install line when missing
  mosquittoBinary('mosquitto_passwd');
});
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** A `$6$` line as mosquitto_passwd 1.x wrote it: SHA-512 of the password, then the salt. */
function sha512Line(user: string, password: string): string {
  const salt = crypto.randomBytes(12);
  const hash = crypto.createHash('sha512').update(password).update(salt).digest();
  return `${user}:$6$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Runs `fleetmq passwd` with `input` on stdin; resolves with its exit code and output. */
function fleetmqPasswd(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => { stdout += d; });
    proc.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`fleetmq passwd ${args.join(' ')} did not exit; ${stderr}`)); }, 60000);
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    proc.stdin.end(input ?? '');
  });
}

type Creds = { username?: string; password?: string };

/** A raw CONNECT with `creds`; returns the CONNACK code (v5 reason code or v3 return code). */
async function connackCode(port: number, version: 4 | 5, creds: Creds, clientId = `auth-${version}-${crypto.randomBytes(4).toString('hex')}`): Promise<number> {
  const c = await RawClient.connect(port, version);
  try {
    const ack = await c.handshake({ clientId, username: creds.username, password: creds.password === undefined ? undefined : Buffer.from(creds.password) });
    return (version === 5 ? ack.reasonCode : ack.returnCode) ?? -1;
  } finally { c.destroy(); }
}

/** Connects the real mqtt client; resolves to 'ok' or the refusal's code. */
async function mqttConnect(port: number, protocolVersion: 4 | 5, creds: Creds): Promise<mqtt.MqttClient | number> {
  try {
    return (await connectClient(port, { protocolVersion, ...creds, clientId: `mqttjs-${protocolVersion}-${crypto.randomBytes(4).toString('hex')}` })).client;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** Publishes on `from` and requires `to` (subscribed to `topic`) to receive it. */
async function roundTrip(from: mqtt.MqttClient, to: mqtt.MqttClient, topic: string, payload: string): Promise<void> {
  const got = new Promise<void>((resolve) => {
    const onMsg = (t: string, p: Buffer) => { if (t === topic && p.toString() === payload) { to.removeListener('message', onMsg); resolve(); } };
    to.on('message', onMsg);
  });
  await from.publishAsync(topic, payload, { qos: 1 });
  await got;
}

async function withBroker<T>(b: Broker, fn: (b: Broker) => Promise<T>): Promise<T> {
  try { return await fn(b); } finally { await b.kill(); }
}

describe('a password file made by mosquitto_passwd', () => {
  test('right credentials connect, wrong password / unknown user 4 / 0x86, anonymous 5 / 0x87, logged without passwords', { timeout: 180000 }, async () => {
    const file = path.join(dir, 'mosquitto.pw');
    mosquittoPasswd(file, 'alice', 'alice-secret', true);
    mosquittoPasswd(file, 'bob', 'bob-secret', false);
    fs.appendFileSync(file, `# a comment, then a blank line\n\n${sha512Line('legacy', 'legacy-secret')}\n`);
    await withBroker(await launchBroker(2, ['--password-file', file]), async (b) => {
      assert.match(b.output(), /password file .*: 3 users; anonymous clients refused/);
      for (const v of [4, 5] as const) {
        const bad = v === 5 ? 0x86 : 4;
        const notAuthorised = v === 5 ? 0x87 : 5;
        assert.equal(await connackCode(b.port, v, { username: 'alice', password: 'alice-secret' }), 0, `v${v} alice`);
        assert.equal(await connackCode(b.port, v, { username: 'bob', password: 'bob-secret' }), 0, `v${v} bob`);
        assert.equal(await connackCode(b.port, v, { username: 'legacy', password: 'legacy-secret' }), 0, `v${v} $6$ user`);
        assert.equal(await connackCode(b.port, v, { username: 'alice', password: 'wrong-pw-xyzzy' }), bad, `v${v} wrong password`);
        assert.equal(await connackCode(b.port, v, { username: 'alice', password: 'bob-secret' }), bad, `v${v} another user's password`);
        assert.equal(await connackCode(b.port, v, { username: 'nobody', password: 'alice-secret' }), bad, `v${v} unknown user`);
        assert.equal(await connackCode(b.port, v, { username: 'alice' }), bad, `v${v} username without password`);
        assert.equal(await connackCode(b.port, v, {}), notAuthorised, `v${v} anonymous`);
      }
      // The real client, both versions: connects, and its messages flow.
      const a4 = await mqttConnect(b.port, 4, { username: 'alice', password: 'alice-secret' });
      const b5 = await mqttConnect(b.port, 5, { username: 'bob', password: 'bob-secret' });
      assert.ok(a4 instanceof mqtt.MqttClient && b5 instanceof mqtt.MqttClient, `mqtt client refused: ${a4} ${b5}`);
      try {
        await b5.subscribeAsync('auth/flow', { qos: 1 });
        await roundTrip(a4, b5, 'auth/flow', 'hello');
      } finally { await end(a4); await end(b5); }
      assert.equal(await mqttConnect(b.port, 4, { username: 'alice', password: 'nope-nope' }), 4, 'mqtt client v3.1.1 wrong password');
      assert.equal(await mqttConnect(b.port, 5, { username: 'alice', password: 'nope-nope' }), 0x86, 'mqtt client v5 wrong password');

      const out = b.output();
      const refusal = (username: string | null, reason: string) => findRecords(out, { level: 'warn', msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username, reason }).length > 0;
      assert.ok(refusal('alice', 'bad username or password'), `no refusal record with the address:\n${out}`);
      assert.ok(refusal('nobody', 'bad username or password'), `no refusal record for nobody:\n${out}`);
      assert.ok(refusal(null, 'anonymous clients are not allowed'), `no refusal record for an anonymous client:\n${out}`);
      for (const secret of ['alice-secret', 'bob-secret', 'legacy-secret', 'wrong-pw-xyzzy', 'nope-nope']) {
        assert.ok(!out.includes(secret), `the log contains a password (${secret}):\n${out}`);
      }
    });
  });

  test('--allow-anonymous true with a password file: anonymous clients in, wrong passwords still out', { timeout: 120000 }, async () => {
    const file = path.join(dir, 'anon.pw');
    mosquittoPasswd(file, 'alice', 'alice-secret', true);
    await withBroker(await launchBroker(1, ['--password-file', file, '--allow-anonymous', 'true']), async (b) => {
      assert.match(b.output(), /1 user; anonymous clients allowed/);
      for (const v of [4, 5] as const) {
        assert.equal(await connackCode(b.port, v, {}), 0, `v${v} anonymous`);
        assert.equal(await connackCode(b.port, v, { username: 'alice', password: 'alice-secret' }), 0, `v${v} alice`);
        assert.equal(await connackCode(b.port, v, { username: 'alice', password: 'wrong' }), v === 5 ? 0x86 : 4, `v${v} wrong password`);
      }
    });
  });

  test('a malformed line stops the start with its line number and without the hash', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'bad.pw');
    mosquittoPasswd(file, 'alice', 'alice-secret', true);
    const hashText = fs.readFileSync(file, 'utf8').trim().split(':')[1];
    fs.appendFileSync(file, `# fine\nbob:$7$101$${hashText.split('$')[3]}$not-base64!\n`);
    const r = await runCli(['--port', '0', '--workers', '1', '--durability', 'none', '--password-file', file]);
    assert.equal(r.code, 1, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /cannot start: .*bad\.pw: line 3: the hash is not base64/);
    assert.ok(!r.stderr.includes(hashText.split('$')[3]), `the error shows hash material: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /fleetmq listening on/);
  });
});

describe('a persistent session on another worker', () => {
  test('a reconnect moved to the worker that owns the session is checked there too and accepted', { timeout: 120000 }, async () => {
    const file = path.join(dir, 'move.pw');
    mosquittoPasswd(file, 'alice', 'alice-secret', true);
    await withBroker(await launchBroker(3, ['--password-file', file]), async (b) => {
      // Idle connections fill the workers, so least-loaded placement lands each reconnect elsewhere.
      const fillers: RawClient[] = [];
      try {
        for (let round = 0; round < 4; round++) {
          for (const v of [4, 5] as const) {
            const c = await RawClient.connect(b.port, v);
            try {
              const ack = await c.handshake({ clientId: `mover-${v}`, clean: false, username: 'alice', password: Buffer.from('alice-secret'),
                ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) });
              assert.equal(v === 5 ? ack.reasonCode : ack.returnCode, 0, `round ${round} v${v}: ${JSON.stringify(ack)}`);
              assert.equal(ack.sessionPresent, round > 0, `round ${round} v${v}: session present`);
              const bad = await connackCode(b.port, v, { username: 'alice', password: 'not-hers' }, `mover-${v}`);
              assert.equal(bad, v === 5 ? 0x86 : 4, 'a wrong password for the same client id');
            } finally { c.destroy(); }
          }
          fillers.push(await RawClient.connect(b.port, 4));
        }
      } finally { for (const f of fillers) f.destroy(); }
      assert.ok(!b.output().includes('alice-secret'));
    });
  });
});

describe('fleetmq passwd', () => {
  test('writes lines the real Mosquitto 2.0 accepts, and fleetmq reads', { timeout: 180000 }, async () => {
    const file = path.join(dir, 'fleetmq.pw');
    let r = await fleetmqPasswd(['--password', 'carol-secret', file, 'carol']);
    assert.equal(r.code, 0, r.stderr);
    r = await fleetmqPasswd([file, 'dave'], 'dave-secret\n'); // from stdin
    assert.equal(r.code, 0, r.stderr);
    r = await fleetmqPasswd([file, 'carol'], 'carol-new\n'); // an update keeps one line per user
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /updated user "carol"/);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2, `expected one line per user:\n${lines.join('\n')}`);
    for (const l of lines) assert.match(l, /^(carol|dave):\$7\$\d+\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    assert.ok(!fs.readFileSync(file, 'utf8').includes('secret'), 'the password is in the file');
    assert.equal(fs.statSync(file).mode & 0o077, 0, 'a new password file must not be readable by others');

    const m = await startMosquitto([`password_file ${file}`, 'allow_anonymous false']);
    try {
      for (const v of [4, 5] as const) {
        const ok = await mqttConnect(m.port, v, { username: 'dave', password: 'dave-secret' });
        assert.ok(ok instanceof mqtt.MqttClient, `mosquitto refused dave (v${v}): ${ok}\n${m.output()}`);
        await end(ok);
        const carol = await mqttConnect(m.port, v, { username: 'carol', password: 'carol-new' });
        assert.ok(carol instanceof mqtt.MqttClient, `mosquitto refused carol's new password (v${v}): ${carol}\n${m.output()}`);
        await end(carol);
        // Mosquitto refuses a wrong password with 5 / 0x87 (fleetmq: 4 / 0x86).
        assert.notEqual(await connackCode(m.port, v, { username: 'carol', password: 'carol-secret' }), 0, `mosquitto took carol's old password (v${v})`);
      }
    } finally { await m.stop(); }

    await withBroker(await launchBroker(1, ['--password-file', file]), async (b) => {
      assert.equal(await connackCode(b.port, 4, { username: 'dave', password: 'dave-secret' }), 0);
      assert.equal(await connackCode(b.port, 5, { username: 'carol', password: 'carol-new' }), 0);
      assert.equal(await connackCode(b.port, 5, { username: 'carol', password: 'carol-secret' }), 0x86);
    });
  });

  test('bad usage: exit 2 with one line, file untouched', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'usage.pw');
    for (const args of [[file], [file, 'a:b'], ['--iterations', '0', file, 'x'], ['--bogus', file, 'x']]) {
      const r = await fleetmqPasswd(['--password', 'p', ...args]);
      assert.equal(r.code, 2, `fleetmq passwd ${args.join(' ')}: exit ${r.code}; ${r.stderr}`);
      assert.match(r.stderr, /^fleetmq passwd: /);
    }
    assert.ok(!fs.existsSync(file));
  });
});

describe('SIGHUP', () => {
  test('reloads the password file: a new user gets in, a connected client stays; a bad file keeps the old one', { timeout: 180000 }, async () => {
    const file = path.join(dir, 'reload.pw');
    mosquittoPasswd(file, 'alice', 'alice-secret', true);
    await withBroker(await launchBroker(2, ['--password-file', file]), async (b) => {
      const alice = await mqttConnect(b.port, 5, { username: 'alice', password: 'alice-secret' });
      assert.ok(alice instanceof mqtt.MqttClient);
      let closed = false;
      alice.on('close', () => { closed = true; });
      try {
        await alice.subscribeAsync('reload/x', { qos: 1 });
        assert.equal(await connackCode(b.port, 5, { username: 'erin', password: 'erin-secret' }), 0x86, 'erin before the reload');

        const r = await fleetmqPasswd(['--password', 'erin-secret', file, 'erin']);
        assert.equal(r.code, 0, r.stderr);
        b.proc.kill('SIGHUP');
        await b.waitForOutput(/SIGHUP: password file reloaded: 2 users/);
        assert.equal(await connackCode(b.port, 4, { username: 'erin', password: 'erin-secret' }), 0, 'erin after the reload (v3.1.1)');
        const erin = await mqttConnect(b.port, 5, { username: 'erin', password: 'erin-secret' });
        assert.ok(erin instanceof mqtt.MqttClient, `erin refused after the reload: ${erin}`);
        try { await roundTrip(erin, alice, 'reload/x', 'after-reload'); } finally { await end(erin); }

        // A file that does not parse: the old table stays, and the log says why.
        fs.writeFileSync(file, fs.readFileSync(file, 'utf8') + 'mallory\n');
        b.proc.kill('SIGHUP');
        await b.waitForOutput(/SIGHUP: password file not reloaded, the previous one stays in force: .*line 3: expected user:hash/);
        assert.equal(await connackCode(b.port, 5, { username: 'erin', password: 'erin-secret' }), 0, 'erin after a bad reload');
        assert.equal(await connackCode(b.port, 5, { username: 'alice', password: 'wrong' }), 0x86, 'a wrong password after a bad reload');

        // A removed user is out after the next good reload (the cache of verified passwords goes with it).
        fs.writeFileSync(file, fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('erin:') && l !== 'mallory').join('\n'));
        b.proc.kill('SIGHUP');
        await b.waitForOutput(/SIGHUP: password file reloaded: 1 user\b/);
        assert.equal(await connackCode(b.port, 5, { username: 'erin', password: 'erin-secret' }), 0x86, 'erin after being removed');

        assert.equal(closed, false, 'the connected client was dropped by a reload');
        await roundTrip(alice, alice, 'reload/x', 'still-here');
      } finally { await end(alice); }
    });
  });
});

describe('a connect storm against a small hashing pool', () => {
  test('gets "server busy" at once (0x89 / 3), counted, while a connected client is served', { timeout: 240000 }, async () => {
    // A deliberately slow hash (many iterations) keeps the one pool thread busy through the storm.
    const file = path.join(dir, 'storm.pw');
    const r = await fleetmqPasswd(['--iterations', '300000', '--password', 'alice-secret', file, 'alice']);
    assert.equal(r.code, 0, r.stderr);
    await withBroker(await launchBroker(1, ['--password-file', file, '--auth-pool-threads', '1', '--auth-queue-max', '1', '--sys-interval', '1']), async (b) => {
      const alice = await mqttConnect(b.port, 5, { username: 'alice', password: 'alice-secret' });
      assert.ok(alice instanceof mqtt.MqttClient);
      try {
        await alice.subscribeAsync('storm/echo', { qos: 1 });
        // Distinct wrong passwords: each needs its own hash (identical checks would share one).
        const order: Array<{ v: 4 | 5; code: number }> = [];
        const storm: Promise<void>[] = [];
        for (let i = 0; i < 24; i++) {
          const v = i % 2 === 0 ? 5 : 4;
          storm.push(RawClient.connect(b.port, v).then(async (c) => {
            try {
              const ack: IConnackPacket = await c.handshake({ clientId: `storm-${i}`, username: 'alice', password: Buffer.from(`storm-pw-${i}`) }, 60000);
              order.push({ v, code: (v === 5 ? ack.reasonCode : ack.returnCode) ?? -1 });
            } finally { c.destroy(); }
          }));
        }
        // The connected client is served while the pool is saturated.
        let echoedAt = -1;
        const echo = roundTrip(alice, alice, 'storm/echo', 'during-storm').then(() => { echoedAt = order.length; });
        await Promise.all([...storm, echo]);

        const busy = order.filter((o) => o.code === (o.v === 5 ? 0x89 : 3));
        const refused = order.filter((o) => o.code === (o.v === 5 ? 0x86 : 4));
        assert.equal(busy.length + refused.length, order.length, `unexpected CONNACK codes: ${JSON.stringify(order)}`);
        assert.ok(busy.some((o) => o.v === 5) && busy.some((o) => o.v === 4), `no "server busy" for both versions: ${JSON.stringify(order)}`);
        assert.ok(refused.length >= 1, 'no CONNACK came from a real hash');
        // Busy answers do not wait for the hashes: the first came before the last hashed verdict.
        const firstBusy = order.findIndex((o) => busy.includes(o));
        const lastHashed = order.map((o) => refused.includes(o)).lastIndexOf(true);
        assert.ok(firstBusy < lastHashed, `"server busy" only came after every hash: ${JSON.stringify(order)}`);
        assert.ok(echoedAt < order.length, `the connected client's message was only delivered after the whole storm (${echoedAt}/${order.length})`);

        // Counted: $SYS says how many were answered busy.
        const sys = '$SYS/broker/clients/refused/busy';
        let counted = -1;
        alice.on('message', (t: string, p: Buffer) => { if (t === sys) counted = Number(p.toString()); });
        await alice.subscribeAsync(sys, { qos: 0 });
        await waitUntil(() => counted === busy.length, () => `${sys} is ${counted}, expected ${busy.length}`, 30000);

        const out = b.output();
        assert.ok(findRecords(out, { level: 'warn', msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: 'alice', reason: /^server busy/ }).length > 0, `no "server busy" refusal record:\n${out.slice(-3000)}`);
        assert.ok(!out.includes('storm-pw-'), 'the log contains a password');
      } finally { await end(alice); }
    });
  });
});

describe('the secure default', () => {
  test('without authentication: loopback by default; 0.0.0.0 refused unless --allow-anonymous true, which the log announces', { timeout: 120000 }, async () => {
    const d = await launch(['--port', '0', '--workers', '1', '--durability', 'none']);
    await withBroker(d, async (b) => {
      assert.equal(b.host, '127.0.0.1', `default host ${b.host}`);
      assert.match(b.output(), /no authentication configured: anonymous clients allowed, loopback only/);
      assert.equal(await connackCode(b.port, 5, {}), 0);
    });

    const r = await runCli(['--port', '0', '--host', '0.0.0.0', '--workers', '1', '--durability', 'none']);
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /^fleetmq: --host 0\.0\.0\.0 without authentication .*--password-file FILE.*--allow-anonymous true/);
    assert.equal(r.stderr.trim().split('\n').length, 1, `expected one line: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /fleetmq listening on/);
    // The same through --config, where a JSON boolean is accepted for allowAnonymous.
    const cfg = path.join(dir, 'exposed.json');
    fs.writeFileSync(cfg, JSON.stringify({ port: 0, host: '0.0.0.0', workers: 1, durability: 'none' }));
    const rc = await runCli(['--config', cfg]);
    assert.equal(rc.code, 2, `--config exposed: exit code ${rc.code}; stderr: ${rc.stderr}`);
    assert.match(rc.stderr, /without authentication/);
    fs.writeFileSync(cfg, JSON.stringify({ port: 0, host: '0.0.0.0', workers: 1, durability: 'none', allowAnonymous: 'maybe' }));
    assert.match((await runCli(['--config', cfg])).stderr, /allowAnonymous: expected one of true, false/);

    const open = await launch(['--port', '0', '--host', '0.0.0.0', '--allow-anonymous', 'true', '--workers', '1', '--durability', 'none']);
    await withBroker(open, async (b) => {
      assert.equal(b.host, '0.0.0.0');
      assert.match(b.output(), /WARNING: no authentication configured: anonymous clients allowed from the network on 0\.0\.0\.0 \(--allow-anonymous true\)/);
      assert.equal(await connackCode(b.port, 4, {}), 0);
    });
  });
});
