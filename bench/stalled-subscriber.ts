// A stalled QoS 1 subscriber: broker RSS growth while N QoS 1 messages flow past it, fleetmq next
// to Mosquitto, default limits (the subscriber's queue is bounded by --max-queued-messages /
// --max-queued-bytes, the oldest dropped and counted).
//
//   node dist/bench/stalled-subscriber.js [--broker fleetmq,mosquitto] [--messages 480000]
//     [--payload 64] [--fleetmq-args "--durability none"] [--settle-ms 2000] [--broker-cpus 0]
//
// Per broker: a fresh broker; a raw v3.1.1 subscriber (clean session) SUBSCRIBEs at QoS 1 to
// bench/stall and then never reads again; one raw publisher sends N QoS 1 messages with at most 1,000
// unacknowledged. Broker VmRSS before the first PUBLISH, its peak (sampled every 50 ms) and
// `--settle-ms` after the last PUBACK: **RSS growth** = after − before, and peak − before.
import { startBroker, FLEETMQ_DEFAULT_ARGS, type BrokerName } from './brokers';
import { rssKiB, parseCpuList } from './proc';
import { RawConn, publishQos1 } from './qos1-load';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row { broker: string; n: number; beforeMiB: number; growthMiB: number; peakGrowthMiB: number; seconds: number }

async function cell(name: BrokerName, n: number, payload: Buffer, fleetmqArgs: string[], cpus: number[] | null, settleMs: number): Promise<Row> {
  const b = await startBroker(name, { cpus, timeoutMs: 120_000 }, 1, fleetmqArgs);
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
    return { broker: name, n, beforeMiB: rss0 / 1024, growthMiB: (rss1 - rss0) / 1024, peakGrowthMiB: (Math.max(peak, rss1) - rss0) / 1024, seconds };
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
  console.log('| broker | messages | RSS before MiB | RSS growth MiB | peak growth MiB | publish s |');
  console.log('|---|---|---|---|---|---|');
  for (const name of brokers) {
    try {
      const r = await cell(name, n, payload, fleetmqArgs, cpus, settleMs);
      console.log(`| ${r.broker} | ${r.n} | ${r.beforeMiB.toFixed(1)} | ${r.growthMiB.toFixed(1)} | ${r.peakGrowthMiB.toFixed(1)} | ${r.seconds.toFixed(1)} |`);
    } catch (err) {
      console.log(`| ${name} | ${n} | failed: ${(err as Error).message.slice(0, 200)} |`);
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
