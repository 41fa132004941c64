// Cross-node messages per broker CPU-second: two fleetmq nodes (1 worker each, --durability none)
// in one cluster on a real etcd (Debian's etcd-server, via test/helpers/etcd.ts), publishers on
// node 1 and subscribers on node 2, against the same load on one node (publisher and subscriber
// on node 1, no cluster). QoS 0 and 1, 64 B and 1 KiB payloads, 8 publisher -> subscriber pairs
// of mqtt.js clients, each pair kept at most 2000 messages ahead of its subscriber. CPU is both
// brokers' processes (every thread), from /proc; the load runs in this process.
//
//   node dist/bench/cluster.js [--seconds 5] [--runs 3]
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import { cpuSeconds } from './proc';
import { startEtcd } from '../test/helpers/etcd';

const ROOT = path.resolve(__dirname, '..', '..');
const arg = (name: string, d: number) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
const SECONDS = arg('--seconds', 5);
const RUNS = arg('--runs', 3);
const PAIRS = 8;
const AHEAD = 2000;
const BURST = 64;

interface Node { proc: ChildProcess; port: number }

async function startNode(extra: string[]): Promise<Node> {
  const args = [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--workers', '1', '--durability', 'none', '--sys-interval', '0', '--http-port', '-1', ...extra];
  const proc = spawn(process.execPath, args);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d; });
  proc.stderr!.on('data', (d: Buffer) => { out += d; });
  for (let i = 0; i < 300 && !/fleetmq listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const port = Number(/fleetmq listening on [^\s:]+:(\d+)/.exec(out)?.[1]);
  if (!port) { proc.kill('SIGKILL'); throw new Error(`fleetmq did not start: ${out}`); }
  return { proc, port };
}

function client(port: number): Promise<mqtt.MqttClient> {
  const c = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0 });
  return new Promise((resolve, reject) => { c.once('connect', () => resolve(c)); c.once('error', reject); });
}

async function measure(pubPort: number, subPort: number, pids: number[], qos: 0 | 1, size: number): Promise<{ rate: number; perCpu: number }> {
  const payload = Buffer.alloc(size, 0x61);
  let delivered = 0;
  let stop = false;
  const clients: mqtt.MqttClient[] = [];
  const loops: Promise<void>[] = [];
  for (let p = 0; p < PAIRS; p++) {
    const topic = `bench/cluster/${qos}/${size}/${p}`;
    const sub = await client(subPort);
    const pub = await client(pubPort);
    clients.push(sub, pub);
    let got = 0;
    sub.on('message', () => { got++; delivered++; });
    await new Promise<void>((r) => sub.subscribe(topic, { qos }, () => r()));
    // The route reaches node 1 asynchronously: wait until a probe gets through.
    await new Promise<void>((resolve) => {
      const probe = setInterval(() => pub.publish(topic, payload, { qos: 0 }), 50);
      sub.once('message', () => { clearInterval(probe); resolve(); });
    });
    let sent = 0;
    loops.push((async () => {
      while (!stop) {
        if (sent - got < AHEAD) { for (let i = 0; i < BURST; i++) pub.publish(topic, payload, { qos }); sent += BURST; }
        await new Promise((r) => setImmediate(r));
      }
    })());
  }
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const cpu = () => pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const d0 = delivered;
  const c0 = cpu();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const d1 = delivered;
  const c1 = cpu();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => new Promise<void>((r) => c.end(true, {}, () => r()))));
  return { rate: (d1 - d0) / secs, perCpu: (d1 - d0) / (c1 - c0) };
}

async function main(): Promise<void> {
  const etcd = await startEtcd(1);
  const nodes: Node[] = [];
  try {
    const single = await startNode([]);
    nodes.push(single);
    const cluster = `bench${process.pid}`;
    const common = ['--etcd', etcd.endpoints().join(','), '--cluster-name', cluster, '--cluster-port', '0', '--lease-ttl', '10'];
    const n1 = await startNode([...common, '--node-id', 'b1']);
    nodes.push(n1);
    const n2 = await startNode([...common, '--node-id', 'b2']);
    nodes.push(n2);
    const median = (xs: number[]) => [...xs].sort((a, z) => a - z)[Math.floor(xs.length / 2)];
    console.log(`| QoS | payload | single node msg/s | single node msg/CPU-s | cross-node msg/s | cross-node msg/CPU-s (both nodes) | ÷ single |`);
    console.log(`|---|---|---|---|---|---|---|`);
    for (const qos of [0, 1] as const) {
      for (const size of [64, 1024]) {
        const one: { rate: number; perCpu: number }[] = [];
        const two: { rate: number; perCpu: number }[] = [];
        for (let r = 0; r < RUNS; r++) {
          one.push(await measure(single.port, single.port, [single.proc.pid!], qos, size));
          two.push(await measure(n1.port, n2.port, [n1.proc.pid!, n2.proc.pid!], qos, size));
        }
        const [r1, c1, r2, c2] = [median(one.map((x) => x.rate)), median(one.map((x) => x.perCpu)), median(two.map((x) => x.rate)), median(two.map((x) => x.perCpu))];
        console.log(`| ${qos} | ${size} B | ${Math.round(r1)} | ${Math.round(c1)} | ${Math.round(r2)} | ${Math.round(c2)} | ${(c2 / c1).toFixed(2)} |`);
      }
    }
  } finally {
    for (const n of nodes) n.proc.kill('SIGTERM');
    await etcd.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
