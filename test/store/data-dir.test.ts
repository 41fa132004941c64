// src/store/data-dir.ts: the data directory is checked and created without a recursive mkdir
// (under /proc that never returned), each problem is a StoreError 'DATA_DIR' naming it, and
// the open timeout is a StoreError 'TIMEOUT'.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareDataDir, withOpenTimeout } from '../../src/store/data-dir';
import { StoreError } from '../../src/store/errors';
import { RocksStore } from '../../src/store/rocks-store';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-datadir-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function isDataDir(pattern: RegExp) {
  return (err: unknown) => err instanceof StoreError && err.code === 'DATA_DIR' && pattern.test(err.message);
}

test('creates every missing level and returns the absolute path', async () => {
  const target = path.join(dir, 'a', 'b', 'c');
  assert.equal(await prepareDataDir(path.relative(process.cwd(), target)), target);
  assert.ok(fs.statSync(target).isDirectory());
  assert.equal(await prepareDataDir(target), target, 'an existing directory is fine');
});

test('refuses /proc and /sys by path, and a symlink onto /proc by filesystem type', async () => {
  await assert.rejects(prepareDataDir('/proc/fleetmq/data'), isDataDir(/\/proc is a kernel pseudo filesystem/));
  await assert.rejects(prepareDataDir('/sys/fleetmq'), isDataDir(/\/sys is a kernel pseudo filesystem/));
  const link = path.join(dir, 'proc-link');
  fs.symlinkSync('/proc/self', link);
  await assert.rejects(prepareDataDir(path.join(link, 'x')), isDataDir(/is on proc/));
});

test('refuses a file in place of the directory or in the way of its path, leaving it alone', async () => {
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'x');
  await assert.rejects(prepareDataDir(file), isDataDir(/is not a directory/));
  await assert.rejects(prepareDataDir(path.join(file, 'sub')), isDataDir(/file is a file, not a directory, and is in the way/));
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
});

test('RocksStore.open under /proc is a prompt DATA_DIR error (it used to never return)', async () => {
  await assert.rejects(RocksStore.open('/proc/fleetmq-store-test/data'), isDataDir(/\/proc/));
});

test('withOpenTimeout: the result when in time, a TIMEOUT StoreError naming the flag otherwise', async () => {
  assert.equal(await withOpenTimeout(Promise.resolve(7), dir, 1000), 7);
  await assert.rejects(withOpenTimeout(new Promise(() => undefined), dir, 50),
    (err: unknown) => err instanceof StoreError && err.code === 'TIMEOUT' && /did not open within 50 ms \(--store-open-timeout-ms\)/.test(err.message));
});
