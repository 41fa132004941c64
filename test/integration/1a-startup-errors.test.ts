// 1a: startup fails fast and clearly, and a signal during startup ends it.
//
// - An unusable --data-dir is one line on stderr and exit code 1, checked before any thread
//   starts: under /proc (a recursive mkdir there never returned: the broker sat at ~100% CPU
//   with no message), a symlink onto /proc, a file in its place or in the way of its path.
// - Missing levels of a --data-dir are created.
// - A store open that never finishes (test hook FLEETMQ_TEST_STORE_OPEN=hang: the same spinning
//   mkdir in the coordinator's threadpool) ends with a clear error after
//   --store-open-timeout-ms, exit code 1.
// - SIGTERM / SIGINT while the store open hangs: exit code 128 + signal, promptly.
// Bounds are generous (tens of seconds on a loaded 2-core machine); the processes normally
// finish in about a second.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN } from '../helpers/paths';
import { runCli, launchBroker } from '../helpers/broker';

// Free ports only: the HTTP listener binds before the store opens, so it needs one too.
const BASE = ['--port', '0', '--host', '127.0.0.1', '--workers', '1', '--http-port', '0'];
const HANG = { FLEETMQ_TEST_HOOKS: '1', FLEETMQ_TEST_STORE_OPEN: 'hang' };
const EXIT_BOUND_MS = 30000;

let dir: string;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-startup-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** Runs the broker expecting it to refuse to start; returns its stderr. */
async function refused(dataDir: string, pattern: RegExp): Promise<string> {
  const r = await runCli([...BASE, '--data-dir', dataDir], { ms: EXIT_BOUND_MS });
  assert.equal(r.signal, null, `killed by ${r.signal}; stderr: ${r.stderr}`);
  assert.equal(r.code, 1, `exit code ${r.code}; stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stdout, /listening on/);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^fleetmq: cannot start: data directory /);
  assert.match(lines[0]!, pattern);
  return lines[0]!;
}

describe('an unusable --data-dir is a clear error, exit code 1, no hang', () => {
  test('under /proc', { timeout: 60000 }, async () => {
    await refused('/proc/fleetmq-test/data', /\/proc is a kernel pseudo filesystem/);
  });

  test('a symlink leading onto /proc', { timeout: 60000 }, async () => {
    const link = path.join(dir, 'to-proc');
    fs.symlinkSync('/proc/self', link);
    await refused(path.join(link, 'data'), /is on proc, a kernel pseudo filesystem/);
  });

  test('a file where the directory should be', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a store');
    await refused(file, /a-file: is not a directory/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a store', 'the file was touched');
  });

  test('a file in the way of the path', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'in-the-way');
    fs.writeFileSync(file, '');
    await refused(path.join(file, 'sub', 'data'), /in-the-way is a file, not a directory, and is in the way/);
  });
});

test('missing levels of --data-dir are created', { timeout: 60000 }, async () => {
  const nested = path.join(dir, 'new', 'deeper', 'data');
  const b = await launchBroker(1, ['--data-dir', nested]);
  try {
    assert.ok(fs.statSync(path.join(nested, 'CURRENT')).isFile(), 'no RocksDB store in the created directory');
  } finally { await b.kill(); }
});

test('a store open that never finishes fails after --store-open-timeout-ms, exit code 1', { timeout: 60000 }, async () => {
  const r = await runCli([...BASE, '--data-dir', path.join(dir, 'hang-timeout'), '--store-open-timeout-ms', '1000'], { env: HANG, ms: EXIT_BOUND_MS });
  assert.equal(r.code, 1, `exit code ${r.code} / ${r.signal}; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^fleetmq: cannot start: store at \S+hang-timeout did not open within 1000 ms \(--store-open-timeout-ms\)/);
});

describe('a signal during a hanging startup ends the process', () => {
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    test(`${sig}: exit code ${code}`, { timeout: 60000 }, async () => {
      const proc = spawn(process.execPath, [BIN, ...BASE, '--data-dir', path.join(dir, `hang-${sig}`)], {
        stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...HANG },
      });
      let stdout = '';
      let stderr = '';
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('close', (c, s) => resolve({ code: c, signal: s })));
      try {
        // The line comes after the signal handlers are in: from here the broker is starting.
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no "opening store" line in ${EXIT_BOUND_MS} ms; stdout: ${stdout} stderr: ${stderr}`)), EXIT_BOUND_MS);
          proc.stdout!.on('data', (d: Buffer) => { stdout += d; if (/opening store at/.test(stdout)) { clearTimeout(t); resolve(); } });
          proc.stderr!.on('data', (d: Buffer) => { stderr += d; });
        });
        // Let it get into the hanging open (timing only makes the case harder, not flaky).
        await new Promise((r) => setTimeout(r, 500));
        proc.kill(sig);
        const bound = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), EXIT_BOUND_MS).unref());
        const r = await Promise.race([exited, bound]);
        assert.notEqual(r, 'timeout', `still running ${EXIT_BOUND_MS} ms after ${sig}; stderr: ${stderr}`);
        const e = r as { code: number | null; signal: NodeJS.Signals | null };
        assert.equal(e.code, code, `exit ${e.code} / ${e.signal}; stderr: ${stderr}`);
        assert.match(stderr, new RegExp(`fleetmq: ${sig} during startup, exiting`));
        assert.doesNotMatch(stdout, /listening on/);
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
    });
  }
});

test('--store-open-timeout-ms is documented and validated', { timeout: 60000 }, async () => {
  const help = await runCli(['--help']);
  assert.match(help.stdout, /--store-open-timeout-ms N .*\[60000\]/);
  const bad = await runCli([...BASE, '--store-open-timeout-ms', '-1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--store-open-timeout-ms: -1 is out of range 0\.\.86400000/);
});
