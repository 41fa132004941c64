// Retained messages at scale, fleetmq next to Mosquitto: broker RSS growth per retained message
// (32 B payloads), how fast they are set and cleared, and how long a wildcard SUBSCRIBE matching
// 1% of them takes to its last retained message.
//
//   node dist/bench/retained-scale.js [--broker fleetmq,mosquitto] [--counts 100000,1000000]
//     [--fleetmq-args "--durability none"] [--connections 2] [--settle-ms 3000] [--broker-cpus 0]
//
// Per broker and count: a fresh broker; N retained PUBLISHes (QoS 0, topics bench/r/<i % 100>/<i>)
// pipelined over raw connections, each ending with a PINGREQ whose PINGRESP says the broker has
// read them all (bench set rate); RSS before and `--settle-ms` after (bytes per message); a raw
// subscriber's SUBSCRIBE to bench/r/7/+ until the N/100-th retained message arrives (latency);
// then every topic cleared with an empty retained PUBLISH (clear rate) and RSS again.
import * as net from 'node:net';
import { startBroker, FLEETMQ_DEFAULT_ARGS, type BrokerName } from './brokers';
import { rssKiB, parseCpuList } from './proc';
import { publishRetainedBulk } from '../test/helpers/bulk-publish';
import { encode, connectPacket } from '../test/helpers/raw-client';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const BUCKETS = 100;
const topicOf = (i: number) => `bench/r/${i % BUCKETS}/${i}`;
const PAYLOAD = Buffer.alloc(32, 0x61);
const EMPTY = Buffer.alloc(0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Subscribes to `filter` on a raw connection; resolves with ms from the SUBSCRIBE write to the `want`-th PUBLISH. */
async function subscribeLatency(port: number, filter: string, want: number, timeoutMs: number): Promise<number> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  try {
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    let buf: Buffer = Buffer.alloc(0);
    let connacked = false;
    let publishes = 0;
    let onChange: () => void = () => undefined;
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let o = 0;
      for (;;) {
        if (buf.length - o < 2) break;
        let len = 0, mul = 1, i = o + 1;
        for (; i < buf.length && i < o + 5; i++) { len += (buf[i] & 0x7f) * mul; mul *= 128; if ((buf[i] & 0x80) === 0) break; }
        if (i >= buf.length || buf.length - (i + 1) < len) break;
        const type = buf[o] >> 4;
        if (type === 2) connacked = true;
        else if (type === 3) publishes++;
        o = i + 1 + len;
      }
      buf = buf.subarray(o);
      onChange();
    });
    const until = (cond: () => boolean, what: string) => new Promise<void>((resolve, reject) => {
      if (cond()) { resolve(); return; }
      const t = setTimeout(() => reject(new Error(`${what}: timed out after ${timeoutMs} ms (${publishes} received)`)), timeoutMs);
      onChange = () => { if (cond()) { clearTimeout(t); resolve(); } };
    });
    sock.write(encode(connectPacket(4, { clientId: `retained-bench-${process.pid}` })));
    await until(() => connacked, 'CONNACK');
    const started = process.hrtime.bigint();
    sock.write(encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] }));
    await until(() => publishes >= want, `${want} retained messages on ${filter}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    sock.destroy();
  }
}

interface Row { broker: string; n: number; setPerS: number; bytesPerMsg: number; rssMiB: number; subMs: number; clearPerS: number; afterClearMiB: number }

async function cell(name: BrokerName, n: number, fleetmqArgs: string[], cpus: number[] | null, conns: number, settleMs: number): Promise<Row> {
  const b = await startBroker(name, { cpus, timeoutMs: 120_000 }, 1, fleetmqArgs);
  try {
    await sleep(1000);
    const rss0 = rssKiB(b.pid);
    let t = Date.now();
    await publishRetainedBulk(b.port, n, topicOf, () => PAYLOAD, conns, 1_800_000);
    const setMs = Date.now() - t;
    await sleep(settleMs);
    const rss1 = rssKiB(b.pid);
    const subMs = await subscribeLatency(b.port, `bench/r/7/+`, n / BUCKETS, 600_000);
    t = Date.now();
    await publishRetainedBulk(b.port, n, topicOf, () => EMPTY, conns, 1_800_000);
    const clearMs = Date.now() - t;
    await sleep(settleMs);
    const rss2 = rssKiB(b.pid);
    return {
      broker: name, n, setPerS: n / (setMs / 1000), bytesPerMsg: ((rss1 - rss0) * 1024) / n, rssMiB: rss1 / 1024,
      subMs, clearPerS: n / (clearMs / 1000), afterClearMiB: rss2 / 1024,
    };
  } finally {
    await b.stop();
  }
}

const k = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)}K` : x.toFixed(0));

async function main(): Promise<void> {
  const brokers = arg('broker', 'fleetmq,mosquitto').split(',') as BrokerName[];
  const counts = arg('counts', '100000,1000000').split(',').map(Number);
  const fleetmqArgs = process.argv.includes('--fleetmq-args') ? arg('fleetmq-args', '').split(' ').filter(Boolean) : FLEETMQ_DEFAULT_ARGS;
  const cpus = process.argv.includes('--broker-cpus') ? parseCpuList(arg('broker-cpus', '0')) : null;
  const conns = Number(arg('connections', '2'));
  const settleMs = Number(arg('settle-ms', '3000'));
  console.log(`retained-scale: brokers ${brokers.join(', ')}; counts ${counts.join(', ')}; fleetmq ${fleetmqArgs.join(' ')}; 32 B payloads, 1% wildcard bench/r/7/+`);
  console.log('| broker | retained | set/s | RSS growth B/msg | RSS MiB | SUBSCRIBE 1% → last, ms | clear/s | RSS after clear MiB |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const n of counts) {
    for (const name of brokers) {
      try {
        const r = await cell(name, n, fleetmqArgs, cpus, conns, settleMs);
        console.log(`| ${r.broker} | ${k(r.n)} | ${k(r.setPerS)} | ${r.bytesPerMsg.toFixed(0)} | ${r.rssMiB.toFixed(1)} | ${r.subMs.toFixed(0)} | ${k(r.clearPerS)} | ${r.afterClearMiB.toFixed(1)} |`);
      } catch (err) {
        console.log(`| ${name} | ${k(n)} | failed: ${(err as Error).message.slice(0, 200)} |`);
      }
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
