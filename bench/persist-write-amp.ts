// Store write amplification and disk use under steady load:
// bytes the broker made the kernel write to storage (/proc/PID/io write_bytes: WAL, memtable
// flushes, compactions) and broker CPU time per QoS 1 message to a persistent session, and the
// data dir's size after each round of a steady load that queues and then drains messages.
// (The publisher and subscriber are single mqtt.js clients here, not the bench load generator:
// the CPU figure compares broker builds with each other, not with other brokers.)
//
//   node dist/bench/persist-write-amp.js [--messages 50000] [--rounds 5] [--payload 64]
//        [--durability process|fsync] [--dir DIR]
//
// Two cases per round:
//   offline  the subscriber is offline: every message is written (body + queue slot), then
//            deleted when the subscriber reconnects and acknowledges it;
//   online   the subscriber is online and acknowledges at once: with write-behind
//            (--commit-linger-ms) most messages are never written.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqtt from 'mqtt';

const ROOT = path.resolve(__dirname, '..', '..');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}

function writeBytes(pid: number): number {
  const m = /write_bytes:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no write_bytes in /proc/${pid}/io`);
  return Number(m[1]);
}

/** The broker's CPU time so far, seconds (all threads: utime + stime from /proc/PID/stat). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15; USER_HZ is 100 on Linux
}

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

function startBroker(dir: string, durability: string, queue: number): Promise<{ proc: ChildProcess; port: number }> {
  const nodeArgs = (process.env.FLEETMQ_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  const proc = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--host', '127.0.0.1',
    '--workers', '1', '--data-dir', dir, '--durability', durability, '--sys-interval', '0',
    '--max-queued-messages', String(queue), '--max-queued-bytes', String(2 ** 40)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no listening line within 60 s:\n${log}`)); }, 60_000);
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /fleetmq listening on [^\s:]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]) }); }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`broker exited (${code}):\n${log}`)); });
  });
}

/** `counter` counts messages from before CONNACK on: queued ones can arrive in the same read. */
function connect(port: number, clientId: string, clean: boolean, counter?: Counter): Promise<mqtt.MqttClient> {
  const c = mqtt.connect({ host: '127.0.0.1', port, clientId, clean, protocolVersion: 4, reconnectPeriod: 0 });
  if (counter) c.on('message', () => counter.add());
  return new Promise((resolve, reject) => { c.once('connect', () => resolve(c)); c.once('error', reject); });
}

class Counter {
  private got = 0;
  private want = Infinity;
  private done: (() => void) | null = null;
  add(): void { if (++this.got >= this.want) this.done?.(); }
  /** Resolves once `n` more messages than at the last reset have arrived. */
  until(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.want = n;
      this.done = resolve;
      if (this.got >= n) resolve();
    });
  }
  reset(): void { this.got = 0; this.want = Infinity; this.done = null; }
}

const end = (c: mqtt.MqttClient) => new Promise<void>((r) => c.end(false, {}, () => r()));

/** Publishes `n` QoS 1 messages with up to 256 unacknowledged; resolves when all are acknowledged. */
function publishAll(c: mqtt.MqttClient, topic: string, n: number, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < n && sent - acked < 256) {
        sent++;
        c.publish(topic, payload, { qos: 1 }, (err) => {
          if (err) { reject(err); return; }
          if (++acked === n) resolve(); else pump();
        });
      }
    };
    pump();
  });
}

async function main(): Promise<void> {
  const messages = Number(arg('messages', '50000'));
  const rounds = Number(arg('rounds', '5'));
  const payload = Buffer.alloc(Number(arg('payload', '64')), 0x61);
  const durability = arg('durability', 'process');
  const dir = arg('dir', fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-wamp-')));
  const { proc, port } = await startBroker(dir, durability, messages);
  const pid = proc.pid!;
  const topic = 'wamp/t';
  console.log(`fleetmq --durability ${durability}, ${messages} QoS 1 messages of ${payload.length} B per case per round, data dir ${dir}`);
  console.log('| round | case | bytes written per message | broker CPU µs per message | data dir after (MiB) |');
  console.log('|---|---|---|---|---|');
  try {
    const sub0 = await connect(port, 'wamp-sub', false);
    await new Promise<void>((r, j) => sub0.subscribe(topic, { qos: 1 }, (e) => (e ? j(e) : r())));
    await end(sub0);
    const pub = await connect(port, 'wamp-pub', true);
    for (let round = 1; round <= rounds; round++) {
      // offline: queued while the subscriber is away, drained when it comes back.
      let before = writeBytes(pid);
      let cpu = cpuSeconds(pid);
      await publishAll(pub, topic, messages, payload);
      const counter = new Counter();
      const sub = await connect(port, 'wamp-sub', false, counter);
      await counter.until(messages);
      counter.reset();
      // online: the same subscriber stays connected and acknowledges as messages arrive.
      const offline = writeBytes(pid) - before;
      const offlineCpu = cpuSeconds(pid) - cpu;
      console.log(`| ${round} | offline | ${(offline / messages).toFixed(0)} | ${(offlineCpu * 1e6 / messages).toFixed(1)} | ${(dirBytes(dir) / 2 ** 20).toFixed(1)} |`);
      before = writeBytes(pid);
      cpu = cpuSeconds(pid);
      const got = counter.until(messages);
      await publishAll(pub, topic, messages, payload);
      await got;
      const online = writeBytes(pid) - before;
      const onlineCpu = cpuSeconds(pid) - cpu;
      await end(sub);
      console.log(`| ${round} | online | ${(online / messages).toFixed(0)} | ${(onlineCpu * 1e6 / messages).toFixed(1)} | ${(dirBytes(dir) / 2 ** 20).toFixed(1)} |`);
    }
    await end(pub);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    if (!process.argv.includes('--dir')) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
