// Restart time for a large store: fills a fresh data dir through the store
// API with S sessions × 5 subscriptions and R retained messages, then times fleetmq from spawn
// to its "listening" line (store opened, read back, every session handed to a worker), and
// reports the store's size on disk.
//
//   node dist/bench/persist-restart.js [--sessions 100000] [--retained 1000000] [--workers 1]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RocksStore } from '../src/store/rocks-store';

const ROOT = path.resolve(__dirname, '..', '..');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function fill(dir: string, sessions: number, retained: number): Promise<void> {
  const store = await RocksStore.open(dir);
  await store.loadAll({});
  const CHUNK = 5000;
  for (let i = 0; i < sessions; i += CHUNK) {
    const b = store.batch();
    for (let k = i; k < Math.min(sessions, i + CHUNK); k++) {
      const clientId = `restart-${k}`;
      b.putSession({ clientId, protocolVersion: 4, sessionExpiryInterval: 0xffffffff, disconnectedAt: Date.now(), will: null });
      for (let s = 0; s < 5; s++) {
        b.putSubscription({ clientId, filter: `r/${k}/${s}/+`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
      }
    }
    await store.commit(b);
  }
  const payload = Buffer.alloc(64, 1);
  for (let i = 0; i < retained; i += CHUNK) {
    const b = store.batch();
    for (let k = i; k < Math.min(retained, i + CHUNK); k++) {
      b.putRetained({ topic: `ret/${k}`, payload, qos: 0, retain: true, properties: {}, publishedAt: Date.now() });
    }
    await store.commit(b);
  }
  await store.compact();
  await store.close();
}

function duSync(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

function timeStart(dir: string, workers: number): Promise<{ ms: number; log: string }> {
  const started = process.hrtime.bigint();
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--host', '127.0.0.1',
    '--workers', String(workers), '--data-dir', dir, '--sys-interval', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no listening line within 600 s:\n${log}`)); }, 600_000);
    const onData = (d: Buffer) => {
      log += d.toString();
      if (/fleetmq listening on/.test(log)) {
        clearTimeout(timer);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        proc.kill('SIGTERM');
        proc.once('exit', () => resolve({ ms, log }));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => { clearTimeout(timer); if (!/listening/.test(log)) reject(new Error(`exited ${code}:\n${log}`)); });
  });
}

async function main(): Promise<void> {
  const sessions = arg('sessions', 100_000);
  const retained = arg('retained', 1_000_000);
  const workers = arg('workers', 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-restart-bench-'));
  try {
    const t0 = Date.now();
    await fill(dir, sessions, retained);
    console.log(`filled ${sessions} sessions × 5 subscriptions + ${retained} retained in ${Date.now() - t0} ms; store ${(duSync(dir) / 1048576).toFixed(1)} MiB`);
    const { ms, log } = await timeStart(dir, workers);
    console.log(log.split('\n').filter((l) => l.includes('store:')).join('\n'));
    console.log(`restart to listening: ${(ms / 1000).toFixed(2)} s with ${workers} worker(s)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
