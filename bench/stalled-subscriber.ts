// A stalled QoS 1 subscriber: broker RSS growth while N QoS 1 messages flow past it, fleetmq next
// to Mosquitto, default limits (the subscriber's queue is bounded by --max-queued-messages /
// --max-queued-bytes, the oldest dropped and counted).
//
//   node dist/bench/stalled-subscriber.js [--broker fleetmq,mosquitto] [--messages 480000]
//     [--payload 64] [--fleetmq-args "--durability none"] [--settle-ms 2000] [--broker-cpus 0]
//
// Mosquitto runs with its own default limits (1,000 queued, 20 in flight).
// Per broker: a fresh broker; a raw v3.1.1 subscriber (clean session) SUBSCRIBEs at QoS 1 to
// bench/stall and then never reads again; one raw publisher sends N QoS 1 messages with at most 1,000
// unacknowledged. Broker VmRSS before the first PUBLISH, its peak (sampled every 50 ms) and
// `--settle-ms` after the last PUBACK: **RSS growth** = after − before, and peak − before.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startBroker, FLEETMQ_DEFAULT_ARGS, type BrokerName } from './brokers';
import { launch, freePort, type BrokerProcess, type LaunchOptions } from './brokers/process';
import { rssKiB, parseCpuList } from './proc';
import { RawConn, publishQos1 } from '../test/helpers/qos1-load';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row { broker: string; n: number; beforeMiB: number; growthMiB: number; peakGrowthMiB: number; seconds: number; stalledOpen: boolean }

/**
 * Mosquitto with ITS default limits (max_queued_messages 1000, max_inflight_messages 20), not
 * the unbounded ones bench/brokers/mosquitto.conf sets for throughput runs: the comparison is of
 * default configurations.
 */
async function mosquittoDefaults(opts: LaunchOptions): Promise<BrokerProcess> {
  const port = await freePort();
  const conf = path.join(os.tmpdir(), `fleetmq-bench-stall-mosquitto-${process.pid}.conf`);
  fs.writeFileSync(conf, `persistence false\nlog_dest stderr\nlog_type error\nallow_anonymous true\nlistener ${port} 127.0.0.1\n`);
  try {
    return await launch({ name: 'mosquitto', command: 'mosquitto', args: ['-c', conf], port }, opts);
  } finally {
    setTimeout(() => fs.rmSync(conf, { force: true }), 2000).unref();
  }
}

async function cell(name: BrokerName, n: number, payload: Buffer, fleetmqArgs: string[], cpus: number[] | null, settleMs: number): Promise<Row> {
  const opts = { cpus, timeoutMs: 120_000 };
  const b = name === 'mosquitto' ? await mosquittoDefaults(opts) : await startBroker(name, opts, 1, fleetmqArgs);
  let peak = 0;
  const sampler = setInterval(() => { try { peak = Math.max(peak, rssKiB(b.pid)); } catch { /* exited */ } }, 50);
  const conns: RawConn[] = [];
  try {
    const stalled = await RawConn.open(b.port, `stalled-${process.pid}`, true);
    conns.push(stalled);
    await stalled.subscribe('bench/stall', 1);
    stalled.sock.pause(); // never reads again: the kernel buffers fill, then the broker's
    await sleep(1000);
    const rss0 = rssKiB(b.pid);
    peak = rss0;
    const t = Date.now();
    await publishQos1(b.port, n, () => 'bench/stall', payload, 1000, 600_000);
    const seconds = (Date.now() - t) / 1000;
    await sleep(settleMs);
    const rss1 = rssKiB(b.pid);
    return { broker: name, n, beforeMiB: rss0 / 1024, growthMiB: (rss1 - rss0) / 1024, peakGrowthMiB: (Math.max(peak, rss1) - rss0) / 1024, seconds, stalledOpen: !stalled.closed };
  } finally {
    clearInterval(sampler);
    for (const c of conns) c.close();
    await b.stop();
  }
}

async function main(): Promise<void> {
  const brokers = arg('broker', 'fleetmq,mosquitto').split(',') as BrokerName[];
  const n = Number(arg('messages', '480000'));
  const payload = Buffer.alloc(Number(arg('payload', '64')), 0x61);
  const fleetmqArgs = process.argv.includes('--fleetmq-args') ? arg('fleetmq-args', '').split(' ').filter(Boolean) : FLEETMQ_DEFAULT_ARGS;
  const cpus = process.argv.includes('--broker-cpus') ? parseCpuList(arg('broker-cpus', '0')) : null;
  const settleMs = Number(arg('settle-ms', '2000'));
  console.log(`stalled-subscriber: ${n} QoS 1 messages of ${payload.length} B past a subscriber that stopped reading; fleetmq ${fleetmqArgs.join(' ')}`);
  console.log('| broker | messages | RSS before MiB | RSS growth MiB | peak growth MiB | publish s | stalled subscriber still connected |');
  console.log('|---|---|---|---|---|---|---|');
  for (const name of brokers) {
    try {
      const r = await cell(name, n, payload, fleetmqArgs, cpus, settleMs);
      console.log(`| ${r.broker} | ${r.n} | ${r.beforeMiB.toFixed(1)} | ${r.growthMiB.toFixed(1)} | ${r.peakGrowthMiB.toFixed(1)} | ${r.seconds.toFixed(1)} | ${r.stalledOpen ? 'yes' : 'NO'} |`);
    } catch (err) {
      console.log(`| ${name} | ${n} | failed: ${(err as Error).message.slice(0, 200)} |`);
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
