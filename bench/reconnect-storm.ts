// Reconnect storm: N clients with persistent sessions (Clean Session 0, MQTT 3.1.1), each with a
// QoS 1 subscription and one QoS 1 message queued while it is offline, reconnect all at once
// after the broker restarts on its data dir, as a fleet of devices does. Measures, per broker:
// the time from the restarted broker's readiness to the last CONNACK (all sessions back) and to
// the last queued message delivered, Session Present and delivery counts, the broker's user and
// system CPU over the storm, and its peak RSS (VmHWM) since the restart.
//
//   node dist/bench/reconnect-storm.js [--clients 15000] [--brokers fleetmq,mosquitto] [--runs 1] [--workers 1]
//
// This process is the load (one process, one thread): N sockets stay under the 20,000 open
// files per process of the machines this runs on. With taskset the broker runs on CPU 0 and
// this process on CPU 1. fleetmq runs with --durability process (the default) on a fresh data
// dir; Mosquitto with persistence on (its database is written at SIGTERM and read at start).
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cpuSplit, hasTaskset } from './proc';
import { Framer, FrameSink } from './load/framer';
import { encodeConnect, encodeSubscribe, encodeAck, PacketType } from './load/protocol';

const ROOT = path.resolve(__dirname, '..', '..');
const argv = process.argv;
const arg = (name: string, d: string) => { const i = argv.indexOf(name); return i > 0 ? argv[i + 1] : d; };
const CLIENTS = Number(arg('--clients', '15000'));
const RUNS = Number(arg('--runs', '1'));
const WORKERS = Number(arg('--workers', '1'));
const BROKERS = arg('--brokers', 'fleetmq,mosquitto').split(',');
/** Connections opened at once while setting up (the storm opens every one together). */
const SETUP_PARALLEL = 200;
const STORM_BUDGET_MS = 300_000;

interface Broker { proc: ChildProcess; port: number }
interface Kind { name: string; start(dir: string, port: number): Promise<Broker> }

/** taskset execs the command: the pid is the broker's own. */
function pinned(cmd: string, args: string[]): ChildProcess {
  return hasTaskset() ? spawn('taskset', ['-c', '0', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function waitLine(p: ChildProcess, re: RegExp, ms = 120_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${out.slice(-2000)}`)), ms);
    const on = (d: Buffer) => { out += d; if (out.length > 1e6) out = out.slice(-1e5); const m = out.match(re); if (m) { clearTimeout(timer); resolve(m); } };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.once('exit', () => { clearTimeout(timer); reject(new Error(`exited: ${out.slice(-2000)}`)); });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
}

/** Resolves once something accepts TCP connections on `port`. */
async function listening(port: number, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }); s.on('error', () => resolve(false)); });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const KINDS: Record<string, Kind> = {
  fleetmq: {
    name: `fleetmq w${WORKERS}`,
    async start(dir, port) {
      // As shipped: connects and disconnects log at info (read and dropped by waitLine's reader).
      const proc = pinned(process.execPath, [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', String(port), '--host', '127.0.0.1',
        '--workers', String(WORKERS), '--data-dir', dir, '--durability', 'process', '--http-port', '-1']);
      await waitLine(proc, /fleetmq listening on/);
      return { proc, port };
    },
  },
  mosquitto: {
    name: 'mosquitto',
    async start(dir, port) {
      const conf = path.join(dir, 'mosquitto.conf');
      fs.writeFileSync(conf, `${process.getuid?.() === 0 ? 'user root\n' : ''}listener ${port} 127.0.0.1\nallow_anonymous true\n` +
        `persistence true\npersistence_location ${dir}/\nautosave_interval 0\nlog_dest stderr\nlog_type error\nconnection_messages false\n` +
        'max_connections -1\nmax_queued_messages 1000\n');
      const proc = pinned('mosquitto', ['-c', conf]);
      await listening(port);
      return { proc, port };
    },
  },
};

async function stop(b: Broker): Promise<void> {
  if (b.proc.exitCode !== null || b.proc.signalCode !== null) return;
  const exited = new Promise((r) => b.proc.once('exit', r));
  b.proc.kill('SIGTERM');
  const t = setTimeout(() => b.proc.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(t);
}

/** One client's CONNECT → CONNACK (→ SUBSCRIBE → SUBACK) → DISCONNECT: creates its session. */
function createSession(port: number, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const framer = new Framer();
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`set-up of client ${i} timed out`)); }, 60_000);
    const sink: FrameSink = {
      onFrame: (buf, first, start) => {
        const type = first >> 4;
        if (type === PacketType.CONNACK) {
          if (buf[start + 1] !== 0) { clearTimeout(timer); s.destroy(); reject(new Error(`CONNACK ${buf[start + 1]}`)); return; }
          s.write(encodeSubscribe(1, [`storm/${i}`], 1, 4));
        } else if (type === PacketType.SUBACK) {
          clearTimeout(timer);
          s.end(Buffer.from([0xe0, 0]));
          resolve();
        }
      },
    };
    s.on('data', (d) => framer.push(d, sink));
    s.on('error', (err) => { clearTimeout(timer); reject(err); });
    s.on('connect', () => s.write(encodeConnect(`storm-${i}`, 4, 0, false)));
  });
}

async function setUp(port: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: SETUP_PARALLEL }, async () => {
    while (next < CLIENTS) await createSession(port, next++);
  }));
  // One QoS 1 message queued for each offline session; the publisher's PUBACKs say it is stored.
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const framer = new Framer();
    let acked = 0;
    const timer = setTimeout(() => reject(new Error(`${acked} of ${CLIENTS} queued messages acknowledged in time`)), 300_000);
    s.on('data', (d) => framer.push(d, { onFrame: (_b, first) => {
      if (first >> 4 === PacketType.CONNACK) {
        const parts: Buffer[] = [];
        for (let i = 0; i < CLIENTS; i++) parts.push(publishQos1(`storm/${i}`, (i % 65535) + 1, `queued-${i}`));
        s.write(Buffer.concat(parts));
      } else if (first >> 4 === PacketType.PUBACK && ++acked === CLIENTS) { clearTimeout(timer); s.end(Buffer.from([0xe0, 0])); resolve(); }
    } }));
    s.on('error', reject);
    s.on('connect', () => s.write(encodeConnect('storm-publisher', 4, 0, true)));
  });
}

function publishQos1(topic: string, id: number, payload: string): Buffer {
  const t = Buffer.from(topic);
  const p = Buffer.from(payload);
  const len = 2 + t.length + 2 + p.length;
  const b = Buffer.alloc(2 + len); // len < 128 here
  b[0] = 0x32; b[1] = len; b.writeUInt16BE(t.length, 2); t.copy(b, 4); b.writeUInt16BE(id, 4 + t.length); p.copy(b, 6 + t.length);
  return b;
}

interface Storm { backMs: number; deliveredMs: number; present: number; delivered: number; refused: number; errors: number; sockets: net.Socket[] }

/** Every client connects at once; resolves when each has its CONNACK and its queued message (or the budget ran out). */
function storm(port: number): Promise<Storm> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const r: Storm = { backMs: NaN, deliveredMs: NaN, present: 0, delivered: 0, refused: 0, errors: 0, sockets: [] };
    let acks = 0;
    const check = () => {
      if (acks === CLIENTS && Number.isNaN(r.backMs)) r.backMs = performance.now() - t0;
      if (r.delivered === CLIENTS && Number.isNaN(r.deliveredMs)) r.deliveredMs = performance.now() - t0;
      if (acks + r.errors >= CLIENTS && r.delivered + r.errors + r.refused >= CLIENTS) { clearTimeout(timer); resolve(r); }
    };
    const timer = setTimeout(() => resolve(r), STORM_BUDGET_MS);
    for (let i = 0; i < CLIENTS; i++) {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
      r.sockets.push(s);
      const framer = new Framer();
      let got = false;
      s.on('data', (d) => framer.push(d, { onFrame: (buf, first, start) => {
        const type = first >> 4;
        if (type === PacketType.CONNACK) {
          acks++;
          if (buf[start + 1] !== 0) r.refused++;
          else if (buf[start] & 1) r.present++;
        } else if (type === PacketType.PUBLISH) {
          const tlen = buf.readUInt16BE(start);
          if ((first & 0x06) !== 0) s.write(encodeAck(PacketType.PUBACK, buf.readUInt16BE(start + 2 + tlen)));
          if (!got) { got = true; r.delivered++; }
        }
        check();
      } }));
      s.on('error', () => { r.errors++; check(); });
      s.on('connect', () => s.write(encodeConnect(`storm-${i}`, 4, 0, false)));
    }
  });
}

function peakRssMiB(pid: number): number {
  try { const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? Number(m[1]) / 1024 : NaN; } catch { return NaN; }
}

async function runOnce(kind: Kind): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-storm-'));
  const port = await freePort();
  let b: Broker | null = null;
  try {
    b = await kind.start(dir, port);
    await setUp(port);
    await stop(b);
    b = await kind.start(dir, port);
    const pid = b.proc.pid!;
    const c0 = cpuSplit(pid);
    const r = await storm(port);
    const c1 = cpuSplit(pid);
    const rss = peakRssMiB(pid);
    for (const s of r.sockets) s.destroy();
    const f = (n: number) => (Number.isFinite(n) ? `${(n / 1000).toFixed(2)} s` : 'not all');
    return `| ${kind.name} | ${CLIENTS} | ${f(r.backMs)} | ${f(r.deliveredMs)} | ${r.present} | ${r.delivered} | ${r.refused + r.errors} | ` +
      `${(c1.user - c0.user).toFixed(2)} / ${(c1.sys - c0.sys).toFixed(2)} | ${rss.toFixed(0)} |`;
  } finally {
    if (b) await stop(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (hasTaskset()) spawnSync('taskset', ['-pc', '1', String(process.pid)]);
  console.log(`reconnect storm: ${CLIENTS} persistent sessions (MQTT 3.1.1, QoS 1 subscription, 1 queued message each), ${RUNS} run(s), taskset ${hasTaskset()}`);
  console.log('| broker | clients | all CONNACKs after | all queued delivered after | session present | delivered | refused / errors | broker CPU user / sys s | peak RSS MiB |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (let i = 0; i < RUNS; i++) {
    // Alternating order per run, so drift on a shared machine hits both.
    const order = i % 2 === 0 ? BROKERS : [...BROKERS].reverse();
    for (const name of order) {
      const kind = KINDS[name];
      if (!kind) throw new Error(`unknown broker ${name}; known: ${Object.keys(KINDS).join(', ')}`);
      console.log(await runOnce(kind).catch((err: Error) => `| ${kind.name} | ${CLIENTS} | failed: ${err.message.replace(/\s+/g, ' ').slice(0, 200)} |`));
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
