// Broker CPU per QoS 1 message queued for an offline persistent session, in the default
// configuration (`--durability process`: each one is in the RocksDB WAL before its PUBACK).
//
//   node dist/bench/offline-queue.js [--sessions 10000] [--messages 100000] [--payload 64]
//     [--fleetmq-args "--durability none"] [--workers 1] [--broker-cpus 0]
//
// A fresh broker on a temporary data dir; `--sessions` v3.1.1 persistent sessions (clean 0), each
// subscribed at QoS 1 to its own topic bench/off/<i>, go offline (test/helpers/session-burst.ts);
// one raw publisher sends `--messages` QoS 1 messages round-robin over those topics (at most
// 1,000 unacknowledged), so each message is queued for exactly one offline session. Broker CPU
// (all threads, /proc/<pid>/stat) from the first PUBLISH to 500 ms after the last PUBACK, divided
// by the messages: **µs of broker CPU per queued message**. Also the broker's RSS growth and how
// long making the sessions took. `FLEETMQ_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`
// profiles every broker thread.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startBroker } from './brokers';
import { cpuSeconds, rssKiB, parseCpuList } from './proc';
import { publishQos1 } from '../test/helpers/qos1-load';
import { burstSessions } from '../test/helpers/session-burst';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds per thread (tid → [name, seconds]) from /proc/<pid>/task. */
function threadCpu(pid: number): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, [name, (Number(f[11]) + Number(f[12])) / 100]);
    } catch { /* thread gone */ }
  }
  return out;
}

async function main(): Promise<void> {
  const sessions = Number(arg('sessions', '10000'));
  const messages = Number(arg('messages', '100000'));
  const payload = Buffer.alloc(Number(arg('payload', '64')), 0x61);
  const workers = Number(arg('workers', '1'));
  const cpus = process.argv.includes('--broker-cpus') ? parseCpuList(arg('broker-cpus', '0')) : null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-bench-offline-'));
  const extra = process.argv.includes('--fleetmq-args') ? arg('fleetmq-args', '').split(' ').filter(Boolean) : [];
  const args = ['--data-dir', dir, '--http-port', '-1', ...extra];
  console.log(`offline-queue: ${sessions} offline persistent sessions, ${messages} QoS 1 messages of ${payload.length} B, one session each; fleetmq ${args.join(' ')}, ${workers} worker(s)`);
  const b = await startBroker('fleetmq', { cpus, timeoutMs: 120_000 }, workers, args);
  try {
    const topic = (i: number) => `bench/off/${i}`;
    let t = Date.now();
    await burstSessions(b.port, 4, sessions, (i) => ({ connect: { clientId: `bench-off-${i}`, clean: false }, subscribe: topic(i) }), 64, 120_000);
    const makeS = (Date.now() - t) / 1000;
    await sleep(1000);
    const rss0 = rssKiB(b.pid);
    const cpu0 = cpuSeconds(b.pid);
    const th0 = threadCpu(b.pid);
    t = Date.now();
    await publishQos1(b.port, messages, (i) => topic(i % sessions), payload, 1000, 900_000);
    const pubS = (Date.now() - t) / 1000;
    await sleep(500);
    const cpu = cpuSeconds(b.pid) - cpu0;
    const th1 = threadCpu(b.pid);
    const byThread = [...th1].map(([tid, [name, sec]]) => [name, sec - (th0.get(tid)?.[1] ?? 0)] as [string, number])
      .filter(([, d]) => d >= 0.05).sort((a, b) => b[1] - a[1]).map(([name, d]) => `${name} ${((d * 1e6) / messages).toFixed(1)}`).join(', ');
    const rss1 = rssKiB(b.pid);
    console.log('| sessions | messages | made sessions in s | published in s | broker CPU s | µs broker CPU per queued message | RSS growth MiB |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| ${sessions} | ${messages} | ${makeS.toFixed(1)} | ${pubS.toFixed(1)} | ${cpu.toFixed(2)} | ${((cpu * 1e6) / messages).toFixed(1)} | ${((rss1 - rss0) / 1024).toFixed(1)} |`);
    console.log(`µs per message by thread (name from /proc, ≥ 0.05 s): ${byThread}`);
  } finally {
    await b.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
