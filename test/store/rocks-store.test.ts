// RocksStore: the abstract contract across close/open, plus what only a disk store can get
// wrong: kill -9, worker threads, newer/foreign formats, corrupt files, locking.
import { after, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Worker } from 'node:worker_threads';
import * as codec from '../../src/store/codec';
import { RocksStore } from '../../src/store/rocks-store';
import { RocksDb } from '../../src/store/rocksdb';
import type { Store } from '../../src/store/store';
import { abstractStoreSuite } from './abstract-store-suite';
import { message, session, snapshot } from './helpers';

const ROOT = path.join(os.tmpdir(), `fleetmq-store-test-${process.pid}`);
let dirs = 0;

async function tempDir(): Promise<string> {
  const dir = path.join(ROOT, String(++dirs));
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

after(async () => { await fs.rm(ROOT, { recursive: true, force: true }); });

abstractStoreSuite('RocksStore', {
  create: async () => RocksStore.open(await tempDir()),
  reopen: async (s: Store) => {
    const dir = (s as RocksStore).location;
    await s.close();
    return RocksStore.open(dir);
  },
  dispose: async (s: Store) => fs.rm((s as RocksStore).location, { recursive: true, force: true }),
});

/** A store with a little of everything in it, flushed to an SST, closed. */
async function populated(): Promise<string> {
  const dir = await tempDir();
  const store = await RocksStore.open(dir);
  await store.loadAll({});
  const b = store.batch().putSession(session('c')).putRetained(message('r', 'kept', { retain: true }));
  for (let i = 0; i < 100; i++) {
    const id = b.addMessage(message('t', `m${i}`.repeat(20)));
    b.enqueue('c', { messageId: id, qos: 1, retain: false, subscriptionIdentifiers: [] });
  }
  await store.commit(b, { sync: true });
  await store.compact();
  await store.close();
  return dir;
}

const DATA_FILES = /^(CURRENT|MANIFEST-\d+|\d+\.sst)$/;
/** Opening a readable database rotates its MANIFEST: a normal open, not a change of data. */
const SST_FILES = /^\d+\.sst$/;

/** Digest of the files RocksDB's data lives in: a failed open must leave them unchanged. */
async function dataDigest(dir: string, files = DATA_FILES): Promise<string> {
  const h = createHash('sha256');
  for (const name of (await fs.readdir(dir)).sort()) {
    if (!files.test(name)) continue;
    h.update(name).update(await fs.readFile(path.join(dir, name)));
  }
  return h.digest('hex');
}

async function firstFile(dir: string, re: RegExp): Promise<string> {
  const name = (await fs.readdir(dir)).find((n) => re.test(n));
  assert.ok(name, `no file matching ${re} in ${dir}`);
  return path.join(dir, name);
}

/** Open and load; must fail with a StoreError of `code` that names the directory. */
async function assertOpenFails(dir: string, code: string): Promise<void> {
  let store: RocksStore | undefined;
  await assert.rejects(async () => {
    store = await RocksStore.open(dir);
    await store.loadAll({});
  }, (err: Error & { code?: string }) => {
    assert.equal(err.name, 'StoreError', err.stack);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(dir), `message names the path: ${err.message}`);
    return true;
  });
  await store?.close();
}

async function withRaw(dir: string, f: (db: RocksDb) => Promise<void>): Promise<void> {
  const db = new RocksDb(dir);
  await db.open({ createIfMissing: true });
  try { await f(db); } finally { await db.close(); }
}

describe('RocksStore: format and corruption', () => {
  test('a new store gets the current format version key', async () => {
    const dir = await tempDir();
    await (await RocksStore.open(dir)).close();
    await withRaw(dir, async (db) => {
      assert.equal(codec.decodeVersion((await db.get(codec.versionKey()))!), codec.FORMAT_VERSION);
    });
  });

  test('a store from a newer format is refused, untouched', async () => {
    const dir = await populated();
    await withRaw(dir, (db) => db.put(codec.versionKey(), codec.encodeVersion(codec.FORMAT_VERSION + 1), true));
    await assertOpenFails(dir, 'NEWER_FORMAT');
    await withRaw(dir, async (db) => {
      assert.equal(codec.decodeVersion((await db.get(codec.versionKey()))!), codec.FORMAT_VERSION + 1);
    });
  });

  test('a RocksDB database fleetmq did not create is refused', async () => {
    const dir = await tempDir();
    await withRaw(dir, (db) => db.put(Buffer.from('someone else'), Buffer.from('data'), true));
    await assertOpenFails(dir, 'UNKNOWN_FORMAT');
  });

  test('a non-empty directory that is not a store is refused', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'notes.txt'), 'not a database');
    await assertOpenFails(dir, 'UNKNOWN_FORMAT');
    assert.deepEqual(await fs.readdir(dir), ['notes.txt']);
  });

  test('garbage in CURRENT: CORRUPT, files untouched', async () => {
    const dir = await populated();
    await fs.writeFile(path.join(dir, 'CURRENT'), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a]));
    const before = await dataDigest(dir);
    await assertOpenFails(dir, 'CORRUPT');
    assert.equal(await dataDigest(dir), before);
  });

  test('CURRENT missing: CORRUPT rather than a fresh database over the old files', async () => {
    const dir = await populated();
    await fs.rm(path.join(dir, 'CURRENT'));
    const before = await dataDigest(dir);
    await assertOpenFails(dir, 'CORRUPT');
    assert.equal(await dataDigest(dir), before);
  });

  test('garbage in the MANIFEST: CORRUPT, files untouched', async () => {
    const dir = await populated();
    const manifest = await firstFile(dir, /^MANIFEST-\d+$/);
    const size = (await fs.stat(manifest)).size;
    await fs.writeFile(manifest, Buffer.alloc(size, 0x5a));
    const before = await dataDigest(dir);
    await assertOpenFails(dir, 'CORRUPT');
    assert.equal(await dataDigest(dir), before);
  });

  test('garbage in an SST file: CORRUPT, files untouched', async () => {
    const dir = await populated();
    const sst = await firstFile(dir, /^\d+\.sst$/);
    const size = (await fs.stat(sst)).size;
    await fs.writeFile(sst, Buffer.alloc(size, 0xa5));
    const before = await dataDigest(dir, SST_FILES);
    await assertOpenFails(dir, 'CORRUPT');
    assert.equal(await dataDigest(dir, SST_FILES), before);
  });

  test('a value that does not decode: CORRUPT naming the key, and still there afterwards', async () => {
    const dir = await populated();
    const key = codec.sessionKey('bad');
    await withRaw(dir, (db) => db.put(key, Buffer.from([9, 9]), true));
    await assertOpenFails(dir, 'CORRUPT');
    await assert.rejects(async () => {
      const s = await RocksStore.open(dir);
      try { await s.loadAll({}); } finally { await s.close(); }
    }, new RegExp(key.toString('hex')));
    await withRaw(dir, async (db) => assert.ok(await db.get(key)));
  });

  test('a second open of the same path is refused with LOCKED', async () => {
    const dir = await tempDir();
    const first = await RocksStore.open(dir);
    try {
      await assertOpenFails(dir, 'LOCKED');
    } finally {
      await first.close();
    }
  });
});

describe('RocksStore: restart cleanup', () => {
  test('unreferenced bodies and references to missing bodies are removed and counted', async () => {
    const dir = await populated();
    await withRaw(dir, async (db) => {
      await db.put(codec.messageKey(999_999n), codec.encodeMessage(message('t', 'orphan')), true);
      await db.put(codec.queueKey('c', 999_999n), codec.encodeQueueEntry({ messageId: 888_888n, qos: 1, retain: false, subscriptionIdentifiers: [] }), true);
    });
    let store = await RocksStore.open(dir);
    const s = await snapshot(store);
    assert.equal(s.queues.get('c')!.length, 100);
    assert.equal(s.messages.size, 100);
    await store.close();
    store = await RocksStore.open(dir);
    const sum = await store.loadAll({});
    assert.equal(sum.orphanMessagesDeleted + sum.danglingRefsDropped, 0, 'cleaned up by the first load');
    assert.equal(sum.queued, 100);
    await store.close();
    await withRaw(dir, async (db) => {
      assert.equal(await db.get(codec.messageKey(999_999n)), undefined);
      assert.equal(await db.get(codec.queueKey('c', 999_999n)), undefined);
    });
  });
});

describe('RocksStore: threads and processes', () => {
  test('open, write and close inside a worker_thread', async () => {
    const dir = await tempDir();
    const worker = new Worker(path.join(__dirname, 'fixtures', 'worker-writer.js'), { workerData: { dir } });
    const reply = new Promise((resolve) => worker.once('message', resolve));
    const code = await new Promise<number>((resolve, reject) => { worker.once('error', reject); worker.once('exit', resolve); });
    assert.equal(code, 0);
    assert.deepEqual(await reply, { sessionsBefore: 0 });
    const store = await RocksStore.open(dir);
    const s = await snapshot(store);
    await store.close();
    assert.equal(s.sessions.get('from-worker')!.protocolVersion, 4);
    const [entry] = s.queues.get('from-worker')!;
    assert.equal(s.messages.get(entry.messageId)!.payload.toString(), 'hello from a worker');
  });

  test('a worker terminated with the store open releases it: the path opens again', async () => {
    const dir = await tempDir();
    const worker = new Worker(path.join(__dirname, 'fixtures', 'worker-hold.js'), { workerData: { dir } });
    await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    const store = await RocksStore.open(dir);
    const s = await snapshot(store);
    await store.close();
    assert.deepEqual([...s.sessions.keys()], ['held']);
  });

  for (const sync of [false, true]) {
    test(`SIGKILL mid-stream loses no committed batch (sync: ${sync})`, async () => {
      const dir = await tempDir();
      const script = path.join(__dirname, 'fixtures', 'kill-writer.js');
      const child = spawn(process.execPath, [script, dir, sync ? '1' : '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d) => { stderr += d; });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      let committed = 0;
      let lines = 0;
      const killAfter = 50; // commits seen; enough to be mid-stream with commits in flight
      try {
        for await (const line of readline.createInterface({ input: child.stdout! })) {
          const m = /^committed (\d+)$/.exec(line);
          assert.ok(m, `unexpected line ${line}`);
          committed = Number(m[1]);
          if (++lines === killAfter) break;
        }
      } finally {
        child.kill('SIGKILL'); // also when an assertion failed: never leave the writer running
      }
      assert.equal(await exited, 'SIGKILL', `writer did not run to the kill; stderr: ${stderr}`);
      assert.ok(committed > 0);

      const store = await RocksStore.open(dir);
      const s = await snapshot(store);
      await store.close();
      const got = (s.queues.get('sub') ?? []).map((e) => Number(s.messages.get(e.messageId)!.payload.toString()));
      // Batches are atomic and written in order, so what survives is exactly 1..M, M >= committed.
      assert.ok(got.length >= committed, `only ${got.length} of ${committed} committed messages survived`);
      assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i + 1));
    });
  }
});

describe('RocksStore: group commit', () => {
  test('commits issued in one tick share one write; commits during a write share the next', async () => {
    const dir = await tempDir();
    const store = await RocksStore.open(dir);
    try {
      await store.loadAll({});
      const before = store.stats();
      const wave = (n: number, sync: boolean) => Array.from({ length: n }, (_, i) =>
        store.commit(store.batch().putSession(session(`c${i}`)), { sync }));
      const first = wave(50, false);
      await Promise.resolve(); // the first group is now being written
      const second = wave(50, true);
      await Promise.all([...first, ...second]);
      const after = store.stats();
      assert.equal(after.commits - before.commits, 100);
      assert.equal(after.writes - before.writes, 2, JSON.stringify(after));
      assert.equal(after.syncWrites - before.syncWrites, 1, 'only the group that asked for sync is synced');
    } finally {
      await store.close();
    }
  });
});
