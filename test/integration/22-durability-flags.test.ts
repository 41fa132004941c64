// 22 durability flags and unreadable stores:
//   - --durability none keeps everything in memory: nothing survives a restart, and it needs no
//     data directory (the default ./data is not created);
//   - a bad --durability value: one clear line on stderr, exit 2, nothing created;
//   - QoS 0 traffic and traffic for clean sessions do not grow the data dir;
//   - a corrupt store (garbage in CURRENT, garbage in an SST), one from a newer format, or one
//     already open by another broker: a clear error naming the path, a non-zero exit, and every file left as it was
//     (never a silent wipe).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uid, utopic } from '../helpers/ids';
import { launch, runCli, makeTempDir, removeDir } from '../helpers/broker';
import { Clients, subscribeOk, publish, end } from '../helpers/clients';
import { Deployment, withDeployment, persistentOpts, hashTree, diffTrees, listTree, Down, durableBarrier } from '../helpers/persist';
import { RocksDb } from '../../src/store/rocksdb';
import * as codec from '../../src/store/codec';

const STACK_RE = /^\s+at .+:\d+:\d+\)?$/m;

for (const workers of [1, 3]) {
  for (const down of ['SIGTERM', 'SIGKILL'] as Down[]) {
    describe(`22 --durability none [workers=${workers}, restart by ${down}]`, () => {
      it('keeps nothing across a restart (sessions, subscriptions, queued, retained) and creates no data directory', async () => {
        const cwd = makeTempDir('fleetmq-none-cwd-');
        const c = new Clients();
        const args = ['--port', '0', '--host', '127.0.0.1', '--workers', String(workers), '--durability', 'none'];
        let b = await launch(args, { cwd, ownDataDir: false }).catch((err) => { removeDir(cwd); throw err; });
        try {
          const base = utopic('none');
          const ids: Array<[4 | 5, string]> = [];
          for (const v of [4, 5] as const) {
            const id = uid(`n${v}`);
            const a = await c.mqtt(b.port, persistentOpts(v, id, false));
            await subscribeOk(a.client, { [`${base}/q`]: { qos: 1 } });
            await end(a.client);
            ids.push([v, id]);
          }
          const pub = await c.mqtt(b.port, { protocolVersion: 4, clientId: uid('np') });
          await publish(pub.client, `${base}/q`, 'queued', { qos: 1 });
          await publish(pub.client, `${base}/r`, 'retained', { qos: 1, retain: true });
          // In memory, the state is there (so the check after the restart means something).
          const [v0, id0] = ids[0];
          const again = await c.mqtt(b.port, persistentOpts(v0, id0, true));
          assert.equal(again.connack.sessionPresent, true, 'durability none: the session exists in memory before the restart');
          await again.inbox.waitForPayload('queued');
          await end(again.client);
          await publish(pub.client, `${base}/q`, 'queued2', { qos: 1 });

          if (down === 'SIGKILL') await b.kill(); else await b.stop();
          b = await launch(args, { cwd, ownDataDir: false });
          const pub2 = await c.mqtt(b.port, { protocolVersion: 4, clientId: uid('np2') });
          for (const [v, id] of ids) {
            const s = await c.mqtt(b.port, persistentOpts(v, id, true));
            assert.equal(s.connack.sessionPresent, false, `v${v}: --durability none must not keep sessions across a restart`);
            await subscribeOk(s.client, { [`${base}/#`]: { qos: 1 } });
            await publish(pub2.client, `${base}/mark`, 'mark', { qos: 1 });
            const before = await s.inbox.waitForPayload('mark');
            assert.deepEqual(before.map((m) => `${m.topic.slice(base.length)}=${m.payload}`), [], `v${v}: nothing queued or retained survives a restart with --durability none`);
          }
          await b.stop();
          assert.deepEqual(listTree(cwd), [], `--durability none wrote files into its working directory: ${listTree(cwd).join(', ')}`);
        } finally {
          await c.closeAll();
          if (b.alive()) await b.kill();
          removeDir(cwd);
        }
      });
    });
  }
}

/** Total bytes of the files under `dir`. */
function treeBytes(dir: string): number {
  let n = 0;
  for (const f of listTree(dir)) n += fs.statSync(path.join(dir, f)).size;
  return n;
}

for (const workers of [1, 3]) {
  describe(`22 QoS 0 and clean sessions never touch disk [workers=${workers}]`, () => {
    it('2 MB of QoS 0 traffic to persistent sessions and of QoS 1 traffic to clean sessions adds (next to) nothing to the data dir', async () => {
      await withDeployment(workers, {}, async (d, c) => {
        await d.start();
        const base = utopic('nodisk');
        // A persistent session online with a QoS 0 subscription, one offline with a QoS 1
        // subscription (it gets QoS 0 publishes), and a clean session with a QoS 1 subscription.
        const on = await c.mqtt(d.port, persistentOpts(5, uid('nd-on'), false));
        await subscribeOk(on.client, { [`${base}/zero/#`]: { qos: 0 } });
        const off = await c.mqtt(d.port, persistentOpts(4, uid('nd-off'), false));
        await subscribeOk(off.client, { [`${base}/zero/#`]: { qos: 1 } });
        await end(off.client);
        const cl = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('nd-clean'), clean: true });
        await subscribeOk(cl.client, { [`${base}/clean/#`]: { qos: 1 } });
        const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('nd-pub') });
        await durableBarrier(c, d.port, base);
        const before = treeBytes(d.dir);
        const payload = Buffer.alloc(1024, 0x61);
        const N = 1000;
        for (let i = 0; i < N; i++) pub.client.publish(`${base}/zero/${i % 10}`, payload, { qos: 0 });
        for (let i = 0; i < N; i++) pub.client.publish(`${base}/clean/${i % 10}`, payload, { qos: 1 });
        await publish(pub.client, `${base}/clean/end`, 'end', { qos: 1 });
        await cl.inbox.waitForPayload('end', 30000);
        await on.inbox.waitFor(N, undefined, 30000);
        // Everything the broker may write for this traffic is written once a later durable
        // write is acknowledged (commits are in order).
        await durableBarrier(c, d.port, base);
        const grown = treeBytes(d.dir) - before;
        assert.ok(grown < (2 * N * payload.length) / 10,
          `the data dir grew by ${grown} bytes for ${2 * N} messages of ${payload.length} bytes that must never touch disk (QoS 0, clean session); files: ${listTree(d.dir).join(', ')}`);
        // Control: the same volume at QoS 1 for the offline persistent session does grow it (so
        // the measurement above can see writes).
        const mid = treeBytes(d.dir);
        for (let i = 0; i < N; i++) pub.client.publish(`${base}/zero/${i % 10}`, payload, { qos: 1 });
        await publish(pub.client, `${base}/zero/end`, 'end', { qos: 1 });
        const stored = treeBytes(d.dir) - mid;
        assert.ok(stored > (N * payload.length) / 2, `control: ${N} QoS 1 messages of ${payload.length} bytes queued for a persistent session grew the data dir by only ${stored} bytes`);
      });
    });
  });
}

describe('22 bad --durability values', () => {
  for (const bad of ['bogus', '', 'fsync,process', 'None ']) {
    it(`--durability ${JSON.stringify(bad)}: one clear stderr line, exit 2, nothing created`, async () => {
      const dir = makeTempDir();
      try {
        const r = await runCli(['--port', '0', '--host', '127.0.0.1', '--workers', '1', '--data-dir', dir, '--durability', bad]);
        assert.equal(r.listened, false, `the broker started with --durability ${JSON.stringify(bad)}`);
        assert.equal(r.code, 2, `exit code ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `exactly one stderr line, got: ${JSON.stringify(r.stderr)}`);
        assert.match(lines[0], /durability/, 'the line names the option');
        assert.deepEqual(listTree(dir), [], 'nothing written to the data dir');
      } finally {
        removeDir(dir);
      }
    });
  }
  it('--durability with no value: one clear stderr line, exit 2', async () => {
    const r = await runCli(['--port', '0', '--host', '127.0.0.1', '--workers', '1', '--durability']);
    assert.equal(r.listened, false, 'the broker started with a bare --durability');
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one stderr line: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, /durability/);
  });
});

/** A data dir holding real state, written and cleanly stopped by `starts` broker runs. */
async function populatedStore(d: Deployment, c: Clients, starts: number): Promise<void> {
  const base = utopic('corrupt');
  for (let i = 0; i < starts; i++) {
    await d.start();
    const id = uid('cs');
    const a = await c.mqtt(d.port, persistentOpts(5, id, false));
    await subscribeOk(a.client, { [`${base}/${i}`]: { qos: 1 } });
    await end(a.client);
    const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('cp') });
    await publish(pub.client, `${base}/${i}`, `queued-${i}`, { qos: 1 });
    await publish(pub.client, `${base}/r${i}`, `retained-${i}`, { qos: 1, retain: true });
    await c.closeAll();
    await d.down('SIGTERM');
  }
}

async function expectRefusal(d: Deployment, what: string, corrupted: string[]): Promise<void> {
  const before = hashTree(d.dir);
  const r = await runCli(d.args());
  assert.equal(r.listened, false, `the broker started on a store with ${what} (silently ignoring or wiping it?); stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(r.signal, null, `the broker died of ${r.signal} instead of exiting with an error; stderr: ${r.stderr}`);
  assert.notEqual(r.code, 0, `exit code 0 on a store with ${what}; stderr: ${r.stderr}`);
  assert.ok(r.stderr.includes(d.dir), `the error must name the data directory ${d.dir}; stderr: ${JSON.stringify(r.stderr)}`);
  assert.doesNotMatch(r.stderr, STACK_RE, `a clear error, not a stack trace; stderr: ${r.stderr}`);
  const after = hashTree(d.dir);
  // First the data-loss view: the corrupt file is still there as it was, no SST disappeared.
  for (const f of corrupted) assert.equal(after.get(f), before.get(f), `the corrupt file ${f} was ${after.has(f) ? 'rewritten' : 'deleted'}`);
  const lostSst = [...before.keys()].filter((f) => f.endsWith('.sst') && !after.has(f));
  assert.deepEqual(lostSst, [], `SST files deleted by the refused start: ${lostSst.join(', ')}`);
  // Then the letter of it: nothing at all changed (RocksDB's open-time WAL recovery rewrites the
  // directory — WAL flushed into a new SST, new MANIFEST — unless the store is checked first).
  const changes = diffTrees(before, after);
  assert.deepEqual(changes, [], `the refused start must leave the store's files untouched, but it changed: ${changes.join(', ')}`);
}

describe('22 unreadable stores: clear error naming the path, non-zero exit, files untouched', () => {
  it('garbage in CURRENT', async () => {
    await withDeployment(1, {}, async (d, c) => {
      await populatedStore(d, c, 1);
      const current = path.join(d.dir, 'CURRENT');
      assert.ok(fs.existsSync(current), `no CURRENT in the data dir after a run with --durability process (files: ${listTree(d.dir).join(', ')})`);
      fs.writeFileSync(current, 'this is not a manifest name\n\x00\xff garbage');
      await expectRefusal(d, 'garbage in CURRENT', ['CURRENT']);
    });
  });

  it('garbage in an SST file', async () => {
    await withDeployment(1, {}, async (d, c) => {
      // RocksDB writes the recovered WAL into an SST on open: two runs leave at least one.
      await populatedStore(d, c, 2);
      const ssts = listTree(d.dir).filter((f) => f.endsWith('.sst'));
      assert.ok(ssts.length > 0, `no .sst file after two runs, cannot corrupt one (files: ${listTree(d.dir).join(', ')})`);
      for (const f of ssts) {
        const p = path.join(d.dir, f);
        const size = fs.statSync(p).size;
        fs.writeFileSync(p, Buffer.alloc(Math.max(size, 64), 0x5a));
      }
      await expectRefusal(d, `garbage in ${ssts.join(', ')}`, ssts);
    });
  });

  it('a store written by a newer fleetmq (format version above this one\'s)', async () => {
    await withDeployment(1, {}, async (d, c) => {
      await populatedStore(d, c, 1);
      // Raise the format-version key with the store's own codec, as a newer fleetmq would have.
      const db = new RocksDb(d.dir);
      await db.open({ createIfMissing: false });
      const found = await db.get(codec.versionKey());
      assert.ok(found, 'the store has no format-version key to raise');
      await db.put(codec.versionKey(), codec.encodeVersion(codec.FORMAT_VERSION + 1), true);
      await db.close();
      const before = hashTree(d.dir);
      const r = await runCli(d.args());
      assert.equal(r.listened, false, `the broker started on a store from a newer format; stderr: ${r.stderr}`);
      assert.equal(r.signal, null, `died of ${r.signal}; stderr: ${r.stderr}`);
      assert.notEqual(r.code, 0, `exit code 0; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(d.dir), `the error must name the data directory; stderr: ${JSON.stringify(r.stderr)}`);
      assert.match(r.stderr, /version|newer|format/i, `the error must say the store is from a newer format; stderr: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, STACK_RE, `a clear error, not a stack trace; stderr: ${r.stderr}`);
      const lostSst = [...before.keys()].filter((f) => f.endsWith('.sst') && !hashTree(d.dir).has(f));
      assert.deepEqual(lostSst, [], `SST files deleted by the refused start: ${lostSst.join(', ')}`);
      // Its data is still readable by the (newer) version that wrote it: the key is still there.
      const db2 = new RocksDb(d.dir);
      await db2.open({ createIfMissing: false });
      const v = await db2.get(codec.versionKey());
      await db2.close();
      assert.ok(v && codec.decodeVersion(v) === codec.FORMAT_VERSION + 1, 'the newer format version must be left as it was');
    });
  });

  it('a data dir already open by a running broker: the second one refuses, the first keeps serving', async () => {
    await withDeployment(1, {}, async (d, c) => {
      await d.start();
      const r = await runCli(d.args());
      assert.equal(r.listened, false, 'a second broker started on a data dir another broker has open');
      assert.notEqual(r.code, 0, `exit code 0; stderr: ${r.stderr}`);
      assert.equal(r.signal, null, `died of ${r.signal}; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(d.dir), `the error must name the data directory; stderr: ${JSON.stringify(r.stderr)}`);
      assert.doesNotMatch(r.stderr, STACK_RE, `a clear error, not a stack trace; stderr: ${r.stderr}`);
      const id = uid('still');
      const a = await c.mqtt(d.port, persistentOpts(4, id, false));
      assert.equal(a.connack.sessionPresent, false);
      await end(a.client);
    });
  });
});
