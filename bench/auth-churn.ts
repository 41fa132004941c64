// Connects per broker CPU-second with a password file: CONNECT (username + password) →
// CONNACK → DISCONNECT in a loop on 16 lanes, against fleetmq (1 worker, --durability none)
// or Mosquitto, the broker pinned to CPU 0 and this load to CPU 1 when taskset exists. The CPU
// is the broker process's, every thread (the hashing pool included), from /proc.
//
//   node dist/bench/auth-churn.js [--connects 20000] [--iterations 101] [--runs 3]
//
// Modes: fleetmq without auth; fleetmq with the password file and its cache of verified
// credentials (a reconnecting client); fleetmq with --auth-cache-entries 0 (every connect
// hashes, as a storm of distinct clients); Mosquitto with the same file (it hashes every time).
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cpuSeconds, hasTaskset } from './proc';

const ROOT = path.resolve(__dirname, '..', '..');
const arg = (name: string, d: number) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
const CONNECTS = arg('--connects', 20000);
const ITERATIONS = arg('--iterations', 101);
const RUNS = arg('--runs', 3);
const LANES = 16;

function utf8(s: string): Buffer { const b = Buffer.from(s); const o = Buffer.alloc(2 + b.length); o.writeUInt16BE(b.length); b.copy(o, 2); return o; }
function connectPacket(clientId: string, user: string | null, password: string | null): Buffer {
  const flags = 0x02 | (user !== null ? 0x80 : 0) | (password !== null ? 0x40 : 0);
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([4, flags, 0, 60]), utf8(clientId), ...(user !== null ? [utf8(user)] : []), ...(password !== null ? [utf8(password)] : [])]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}
const DISCONNECT = Buffer.from([0xe0, 0]);

/** One lane: connect, CONNECT, wait for CONNACK 0, DISCONNECT, repeat. */
async function lane(port: number, id: number, count: number, creds: [string, string] | null): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(connectPacket(`churn-${id}`, creds?.[0] ?? null, creds?.[1] ?? null)));
      s.once('data', (d) => {
        if (d[0] !== 0x20 || d[3] !== 0) { s.destroy(); reject(new Error(`CONNACK ${d.toString('hex')}`)); return; }
        s.end(DISCONNECT);
      });
      s.on('error', reject);
      s.on('close', () => resolve());
    });
  }
}

/** CPU seconds of the process's main thread alone (the accept thread, one per process). */
function mainThreadSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function measure(pid: number, port: number, creds: [string, string] | null): Promise<{ rate: number; mainUs: number }> {
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(port, i, 50, creds))); // warm-up
  const cpu0 = cpuSeconds(pid);
  const main0 = mainThreadSeconds(pid);
  const n = Math.ceil(CONNECTS / LANES) * LANES;
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(port, i, n / LANES, creds)));
  return { rate: n / (cpuSeconds(pid) - cpu0), mainUs: ((mainThreadSeconds(pid) - main0) / n) * 1e6 };
}

function pinned(cmd: string, args: string[]): ChildProcess {
  return hasTaskset() ? spawn('taskset', ['-c', '0', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function waitLine(p: ChildProcess, re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer) => { out += d; const m = out.match(re); if (m) resolve(m); };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', () => reject(new Error(`exited: ${out}`)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
}

async function main(): Promise<void> {
  if (hasTaskset()) spawnSync('taskset', ['-pc', '1', String(process.pid)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-auth-bench-'));
  const file = path.join(dir, 'pw');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'fleetmq.js'), 'passwd', '--iterations', String(ITERATIONS), '--password', 'bench-secret', file, 'bench']);
  if (r.status !== 0) throw new Error(String(r.stderr));
  const creds: [string, string] = ['bench', 'bench-secret'];
  const modes: Array<{ name: string; start: () => Promise<{ p: ChildProcess; port: number }>; creds: [string, string] | null }> = [
    { name: 'fleetmq, no auth', creds: null, start: () => fleetmq([]) },
    { name: 'fleetmq, password file, cache', creds, start: () => fleetmq(['--password-file', file]) },
    { name: 'fleetmq, password file, no cache', creds, start: () => fleetmq(['--password-file', file, '--auth-cache-entries', '0']) },
    { name: 'mosquitto 2.0, password file', creds, start: async () => {
      const port = await freePort();
      const conf = path.join(dir, 'm.conf');
      fs.writeFileSync(conf, `${process.getuid?.() === 0 ? 'user root\n' : ''}listener ${port} 127.0.0.1\npassword_file ${file}\nallow_anonymous false\nlog_type none\n`);
      const p = pinned('mosquitto', ['-c', conf]);
      await new Promise((res) => setTimeout(res, 500));
      return { p, port };
    } },
  ];
  async function fleetmq(extra: string[]) {
    const p = pinned(process.execPath, [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--workers', '1', '--durability', 'none', '--auth-pool-threads', '1', ...extra]);
    const m = await waitLine(p, /listening on [^:]+:(\d+)/);
    return { p, port: Number(m[1]) };
  }
  console.log(`connects per broker CPU-second, ${CONNECTS} connects x ${RUNS} runs, PBKDF2 ${ITERATIONS} iterations, taskset ${hasTaskset()}`);
  for (const mode of modes) {
    const rates: number[] = [];
    const mains: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { p, port } = await mode.start();
      try {
        const m = await measure(p.pid!, port, mode.creds);
        rates.push(m.rate);
        mains.push(m.mainUs);
      } finally { p.kill('SIGKILL'); await new Promise((res) => p.once('exit', res)); }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`${mode.name.padEnd(36)} median ${Math.round(med(rates))} connects/CPU-s (${rates.map((x) => Math.round(x)).join(', ')}); ` +
      `main thread ${med(mains).toFixed(0)} µs/connect`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exit(1); });
