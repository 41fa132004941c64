// TLS handshakes per broker CPU-second: full handshakes (no session resumption) followed by
// an MQTT CONNECT → CONNACK → DISCONNECT, in a loop on 16 lanes, against fleetmq (1 worker,
// --durability none, its TLS listener) and Mosquitto 2 with the same certificate, for an
// RSA-2048 and an EC P-256 server key. The broker is pinned to CPU 0 and this load to CPU 1
// when taskset exists; the CPU is the broker process's, every thread, from /proc. TLS 1.3 and
// TLS 1.2 (--tls 1.2) are both possible; the default is what both sides prefer (1.3).
//
//   node dist/bench/tls-handshakes.js [--connects 3000] [--runs 3] [--tls 1.2|1.3] [--only fleetmq|mosquitto]
//
// A 1-second smoke check: --connects 64 --runs 1.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { cpuSeconds, hasTaskset } from './proc';

const ROOT = path.resolve(__dirname, '..', '..');
const argv = process.argv;
const arg = (name: string, d: number) => { const i = argv.indexOf(name); return i > 0 ? Number(argv[i + 1]) : d; };
const sarg = (name: string) => { const i = argv.indexOf(name); return i > 0 ? argv[i + 1] : undefined; };
const CONNECTS = arg('--connects', 3000);
const RUNS = arg('--runs', 3);
const TLS_VERSION = sarg('--tls') === '1.2' ? 'TLSv1.2' : 'TLSv1.3';
const ONLY = sarg('--only');
const LANES = 16;

const CONNECT = Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0]);

interface Certs { name: string; cert: string; key: string; ca: string }

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (apt-get install openssl): ${r.stderr ?? r.error}`);
}

/** A CA and a server certificate for 127.0.0.1 / localhost with a `kind` key. */
function makeCerts(dir: string, kind: 'rsa2048' | 'p256'): Certs {
  const key = kind === 'rsa2048' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const d = fs.mkdtempSync(path.join(dir, `${kind}-`));
  openssl(['req', '-x509', ...key, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=bench ${kind} ca`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d);
  fs.writeFileSync(path.join(d, 'ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['req', '-new', ...key, '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], d);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x10', '-days', '2', '-out', 'server.crt', '-extfile', 'ext'], d);
  return { name: kind, cert: path.join(d, 'server.crt'), key: path.join(d, 'server.key'), ca: path.join(d, 'ca.crt') };
}

/** One lane: a full TLS handshake, CONNECT, CONNACK 0, DISCONNECT; `count` times. */
async function lane(port: number, ca: Buffer, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      // No `session`: every connection is a full handshake (the certificate's key is used).
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, minVersion: TLS_VERSION, maxVersion: TLS_VERSION }, () => s.write(CONNECT));
      s.once('data', (d: Buffer) => {
        if (d[0] !== 0x20 || d[3] !== 0) { s.destroy(); reject(new Error(`CONNACK ${d.toString('hex')}`)); return; }
        s.end(DISCONNECT);
      });
      s.on('error', reject);
      s.on('close', () => resolve());
    });
  }
}

async function measure(pid: number, port: number, ca: Buffer): Promise<number> {
  await Promise.all(Array.from({ length: LANES }, () => lane(port, ca, 4))); // warm-up
  const cpu0 = cpuSeconds(pid);
  const per = Math.max(1, Math.ceil(CONNECTS / LANES));
  await Promise.all(Array.from({ length: LANES }, () => lane(port, ca, per)));
  return (per * LANES) / (cpuSeconds(pid) - cpu0);
}

function pinned(cmd: string, args: string[]): ChildProcess {
  return hasTaskset() ? spawn('taskset', ['-c', '0', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function waitLine(p: ChildProcess, re: RegExp, ms = 30000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${out}`)), ms);
    const on = (d: Buffer) => { out += d; const m = out.match(re); if (m) { clearTimeout(t); resolve(m); } };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', () => { clearTimeout(t); reject(new Error(`exited: ${out}`)); });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
}

/** Waits until something accepts on `port` (Mosquitto prints nothing with log_type none). */
async function listening(port: number, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function fleetmq(c: Certs): Promise<{ p: ChildProcess; port: number }> {
  const p = pinned(process.execPath, [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--workers', '1', '--durability', 'none', '--sys-interval', '0',
    '--http-port', '-1', '--tls-port', '0', '--cert', c.cert, '--key', c.key]);
  const m = await waitLine(p, /tls listener on [^\s:]+:(\d+)/);
  return { p, port: Number(m[1]) };
}

async function mosquitto(c: Certs, dir: string): Promise<{ p: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = path.join(dir, `mosquitto-${c.name}.conf`);
  // The same settings as fleetmq's listener: TLS 1.2 at least, no client certificates, anonymous.
  fs.writeFileSync(conf, `${process.getuid?.() === 0 ? 'user root\n' : ''}listener ${port} 127.0.0.1\ncertfile ${c.cert}\nkeyfile ${c.key}\n` +
    'tls_version tlsv1.2\nallow_anonymous true\nlog_type none\npersistence false\n');
  const p = pinned('mosquitto', ['-c', conf]);
  await listening(port);
  return { p, port };
}

async function main(): Promise<void> {
  if (hasTaskset()) spawnSync('taskset', ['-pc', os.availableParallelism() > 1 ? '1' : '0', String(process.pid)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-bench-tlshs-'));
  try {
    console.log(`TLS handshakes (+ CONNECT/CONNACK) per broker CPU-second, ${CONNECTS} x ${RUNS} runs, ${TLS_VERSION}, ${LANES} lanes, taskset ${hasTaskset()}`);
    console.log('| key | broker | handshakes per CPU-s (median) | runs |');
    console.log('|---|---|---|---|');
    for (const kind of ['rsa2048', 'p256'] as const) {
      const c = makeCerts(dir, kind);
      const ca = fs.readFileSync(c.ca);
      const brokers: Array<[string, () => Promise<{ p: ChildProcess; port: number }>]> = [
        ['fleetmq (1 worker)', () => fleetmq(c)],
        ['mosquitto', () => mosquitto(c, dir)],
      ];
      for (const [name, start] of brokers) {
        if (ONLY && !name.startsWith(ONLY)) continue;
        const rates: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const { p, port } = await start();
          try { rates.push(await measure(p.pid!, port, ca)); } finally { p.kill('SIGKILL'); await new Promise((r) => p.once('exit', r)); }
        }
        const med = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
        console.log(`| ${kind} | ${name} | ${Math.round(med)} | ${rates.map((x) => Math.round(x)).join(', ')} |`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
