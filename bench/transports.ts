// Messages per broker CPU-second over each transport: plain TCP, TLS, WebSocket and secure
// WebSocket, on one fleetmq (1 worker, --durability none), QoS 0, 64-byte payloads, 8
// publisher → subscriber pairs of mqtt.js clients per transport, each pair kept at most 2000
// messages ahead of its subscriber. The broker is pinned to CPU 0 and this load to CPU 1 when
// taskset exists; the CPU is the broker process's (every thread), from /proc.
// --rate N paces the publishers to N msg/s in all (every 10 ms): CPU per message at the same
// load, which is the fair comparison when mqtt.js over WebSocket cannot saturate the broker (a
// slower load means smaller reads, and a broker's cost per message rises as its batches shrink);
// --rate 0 publishes as fast as the window allows.
//
// --kinds tcp,ws measures only those transports (TCP first: it is the ÷ TCP column's base).
// `ws1` is WebSocket with mqtt.js over a stream that sends what one tick wrote as one frame:
// mqtt.js corks a TCP socket per tick, so over TCP a burst of publishes is one write, but its
// stock WebSocket stream sends every piece of every packet as its own frame and TCP segment (a
// PUBLISH is ~4); `ws1` shows the broker's cost at equal client behaviour (`wss1`: the same over TLS).
//
//   node dist/bench/transports.js [--seconds 5] [--runs 3] [--rate 8000] [--kinds tcp,tls,ws,wss,ws1,wss1]
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import * as mqtt from 'mqtt';
import WebSocket from 'ws';
import { cpuSeconds, hasTaskset, pinSelf } from './proc';

const ROOT = path.resolve(__dirname, '..', '..');
const arg = (name: string, d: number) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
const SECONDS = arg('--seconds', 5);
const RUNS = arg('--runs', 3);
const PAIRS = 8;
const AHEAD = 2000;
const BURST = 64;
const PAYLOAD = Buffer.alloc(64, 0x61);
const RATE = arg('--rate', 8000);
const KINDS_ARG = process.argv.indexOf('--kinds');

type Kind = 'tcp' | 'tls' | 'ws' | 'wss' | 'ws1' | 'wss1';

function certs(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed (apt-get install openssl): ${r.stderr ?? r.error}`);
  return { cert, key };
}

async function startBroker(c: { cert: string; key: string }) {
  const args = [path.join(ROOT, 'bin', 'fleetmq.js'), '--port', '0', '--workers', '1', '--durability', 'none', '--sys-interval', '0',
    '--tls-port', '0', '--ws-port', '0', '--wss-port', '0', '--cert', c.cert, '--key', c.key];
  const proc = hasTaskset() ? spawn('taskset', ['-c', '0', process.execPath, ...args]) : spawn(process.execPath, args);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => { out += d; });
  proc.stderr.on('data', (d: Buffer) => { out += d; });
  for (let i = 0; i < 300 && !/fleetmq listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const port = (k: string) => Number(new RegExp(`${k} listener on [^\\s:]+:(\\d+)`).exec(out)?.[1]);
  const main = Number(/fleetmq listening on [^\s:]+:(\d+)/.exec(out)?.[1]);
  if (!main) { proc.kill('SIGKILL'); throw new Error(`fleetmq did not start: ${out}`); }
  return { proc, ports: { tcp: main, tls: port('tls'), ws: port('ws'), wss: port('wss'), ws1: port('ws'), wss1: port('wss') } as Record<Kind, number> };
}

/** mqtt.js's stream for `ws1`: the chunks of one write batch (mqtt-packet corks per tick) as one binary frame. */
function batchedWs(port: number, cert: string | null): Duplex {
  const ws = cert === null ? new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt')
    : new WebSocket(`wss://127.0.0.1:${port}/mqtt`, 'mqtt', { ca: fs.readFileSync(cert) });
  const d = new Duplex({
    read() { /* pushed from 'message' */ },
    write(chunk: Buffer, _e, cb) { ws.send(chunk, { binary: true }, cb); },
    writev(chunks, cb) { ws.send(Buffer.concat(chunks.map((c) => c.chunk as Buffer)), { binary: true }, cb); },
    destroy(err, cb) { ws.terminate(); cb(err); },
  });
  d.cork();
  ws.once('open', () => d.uncork());
  ws.on('message', (m: Buffer) => d.push(m));
  ws.on('close', () => d.push(null));
  ws.on('error', (err) => d.destroy(err));
  return d;
}

function client(kind: Kind, port: number, cert: string): Promise<mqtt.MqttClient> {
  if (kind === 'ws1' || kind === 'wss1') {
    const c1 = new mqtt.MqttClient(() => batchedWs(port, kind === 'wss1' ? cert : null), { reconnectPeriod: 0 });
    return new Promise((resolve, reject) => { c1.once('connect', () => resolve(c1)); c1.once('error', reject); });
  }
  const secure = kind === 'tls' || kind === 'wss' ? { ca: fs.readFileSync(cert), servername: 'localhost' } : {};
  const protocol = ({ tcp: 'mqtt', tls: 'mqtts', ws: 'ws', wss: 'wss' } as const)[kind as Exclude<Kind, 'ws1' | 'wss1'>];
  const c = mqtt.connect({ protocol, host: '127.0.0.1', port, path: '/mqtt', reconnectPeriod: 0, ...secure });
  return new Promise((resolve, reject) => { c.once('connect', () => resolve(c)); c.once('error', reject); });
}

async function measure(kind: Kind, port: number, pid: number, cert: string): Promise<{ rate: number; perCpu: number; cpu: number }> {
  let delivered = 0;
  let stop = false;
  const clients: mqtt.MqttClient[] = [];
  const loops: Promise<void>[] = [];
  for (let p = 0; p < PAIRS; p++) {
    const topic = `bench/${kind}/${p}`;
    const sub = await client(kind, port, cert);
    const pub = await client(kind, port, cert);
    clients.push(sub, pub);
    let got = 0;
    sub.on('message', () => { got++; delivered++; });
    await new Promise<void>((r) => sub.subscribe(topic, { qos: 0 }, () => r()));
    let sent = 0;
    loops.push((async () => {
      const start = Date.now();
      while (!stop) {
        // Paced: what this pair owes by now (RATE / PAIRS per second), at most a burst at a time.
        const due = RATE > 0 ? Math.min(BURST, Math.floor(((Date.now() - start) * RATE) / PAIRS / 1000) - sent) : BURST;
        if (due > 0 && sent - got < AHEAD) { for (let i = 0; i < due; i++) pub.publish(topic, PAYLOAD, { qos: 0 }); sent += due; }
        await new Promise((r) => (RATE > 0 ? setTimeout(r, 10) : setImmediate(r)));
      }
    })());
  }
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const d0 = delivered;
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const d1 = delivered;
  const c1 = cpuSeconds(pid);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => new Promise<void>((r) => c.end(true, {}, () => r()))));
  return { rate: (d1 - d0) / secs, perCpu: (d1 - d0) / (c1 - c0), cpu: ((c1 - c0) / secs) * 100 };
}

async function main(): Promise<void> {
  if (hasTaskset() && os.availableParallelism() > 1) pinSelf([1]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-bench-tls-'));
  const c = certs(dir);
  const b = await startBroker(c);
  try {
    const all: Kind[] = ['tcp', 'tls', 'ws', 'wss', 'ws1', 'wss1'];
    const kinds: Kind[] = KINDS_ARG > 0 ? all.filter((k) => process.argv[KINDS_ARG + 1].split(',').includes(k)) : all;
    if (!kinds.includes('tcp')) throw new Error('--kinds must include tcp (the base of the ÷ TCP column)');
    const results: Record<Kind, { rate: number; perCpu: number; cpu: number }[]> = { tcp: [], tls: [], ws: [], wss: [], ws1: [], wss1: [] };
    for (let r = 0; r < RUNS; r++) for (const k of kinds) results[k].push(await measure(k, b.ports[k], b.proc.pid!, c.cert));
    const median = (xs: number[]) => [...xs].sort((a, z) => a - z)[Math.floor(xs.length / 2)];
    const tcp = median(results.tcp.map((x) => x.perCpu));
    console.log(`| transport | msg/s | broker CPU % | msg per broker CPU-second | ÷ TCP |`);
    console.log(`|---|---|---|---|---|`);
    for (const k of kinds) {
      const per = median(results[k].map((x) => x.perCpu));
      console.log(`| ${k} | ${Math.round(median(results[k].map((x) => x.rate)))} | ${Math.round(median(results[k].map((x) => x.cpu)))} | ${Math.round(per)} | ${(per / tcp).toFixed(2)} |`);
    }
  } finally {
    b.proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
