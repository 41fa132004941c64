// What metrics and logging cost, measured as what they are: work done per second and per
// scrape, not per message. Between "on" (as shipped: --log-level info, /metrics served and
// scraped once a second) and "off" (--log-level silent --metrics false, no HTTP listener) the
// PUBLISH path runs the same code: counters live in shared memory in both modes ($SYS reads
// them) and nothing is logged per message at info. What "on" adds is a once-a-second gauge walk
// over the sessions in each worker, the HTTP listener and the scrape on the main thread, and
// latency histograms on store commits and auth checks (per commit and per CONNECT). Those are
// a fixed CPU cost per second, so their share of a saturated core is that cost divided by one
// core-second, a figure this machine resolves where msg/s, with a round-to-round spread of
// ±20–27% here (bench/obs-cost.sh), cannot resolve 2%.
//
//   node dist/bench/obs-fixed-cost.js [--rounds 6] [--seconds 20] [--clients 32] [--scrapes 300]
//
// Per round and mode: a 1-worker broker with `--clients` connected, subscribed clients, idle
// for `--seconds` (scraped once a second in "on"); the broker process's CPU time (all threads,
// /proc) over that window. Then, in "on", `--scrapes` back-to-back scrapes: CPU per scrape.
// Rounds alternate the order of the modes.
import * as mqtt from 'mqtt';
import * as http from 'node:http';
import { startBroker } from './brokers';
import { freePort, type BrokerProcess } from './brokers/process';
import { cpuSeconds } from './proc';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUNDS = opt('rounds', 6);
const SECONDS = opt('seconds', 20);
const CLIENTS = opt('clients', 32);
const SCRAPES = opt('scrapes', 300);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => { n += d.length; });
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`/metrics: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

async function connectAll(b: BrokerProcess): Promise<mqtt.MqttClient[]> {
  const clients: mqtt.MqttClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = mqtt.connect({ host: b.host, port: b.port, clientId: `obs-${i}`, reconnectPeriod: 0 });
    await new Promise<void>((res, rej) => { c.once('connect', () => res()); c.once('error', rej); });
    await c.subscribeAsync(`obs/${i >> 1}`, { qos: 1 });
    clients.push(c);
  }
  return clients;
}

interface Sample { idleCpuPerS: number; perScrapeMs: number | null }

async function round(mode: 'on' | 'off'): Promise<Sample> {
  const httpPort = mode === 'on' ? await freePort() : -1;
  const flags = mode === 'on'
    ? ['--durability', 'none', '--http-port', String(httpPort)]
    : ['--durability', 'none', '--log-level', 'silent', '--metrics', 'false', '--http-port', '-1'];
  const b = await startBroker('fleetmq', { cpus: null, timeoutMs: 20000 }, 1, flags);
  try {
    const clients = await connectAll(b);
    await sleep(2000); // connect work and the first timers settle
    const t0 = cpuSeconds(b.pid);
    for (let s = 0; s < SECONDS; s++) {
      if (mode === 'on') await get(httpPort);
      await sleep(1000);
    }
    const idleCpuPerS = (cpuSeconds(b.pid) - t0) / SECONDS;
    let perScrapeMs: number | null = null;
    if (mode === 'on') {
      const s0 = cpuSeconds(b.pid);
      for (let i = 0; i < SCRAPES; i++) await get(httpPort);
      // The idle cost runs meanwhile too; it is small next to back-to-back scrapes, and
      // counting it makes the per-scrape figure an upper bound.
      perScrapeMs = ((cpuSeconds(b.pid) - s0) / SCRAPES) * 1000;
    }
    await Promise.all(clients.map((c) => c.endAsync()));
    return { idleCpuPerS, perScrapeMs };
  } finally {
    await b.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const on: Sample[] = [];
  const off: Sample[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of (r % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>) {
      const s = await round(mode);
      (mode === 'on' ? on : off).push(s);
      process.stdout.write(`round ${r + 1} ${mode}: idle CPU ${(s.idleCpuPerS * 1000).toFixed(2)} ms/s` +
        (s.perScrapeMs !== null ? `, ${s.perScrapeMs.toFixed(2)} ms per scrape` : '') + '\n');
    }
  }
  const onIdle = median(on.map((s) => s.idleCpuPerS)) * 1000;
  const offIdle = median(off.map((s) => s.idleCpuPerS)) * 1000;
  const scrape = median(on.map((s) => s.perScrapeMs!));
  // What "on" costs a second, with one scrape a second already inside the on-mode idle figure.
  const extra = onIdle - offIdle;
  process.stdout.write(`\n${CLIENTS} clients, 1 worker, ${ROUNDS} rounds x ${SECONDS} s, medians:\n` +
    `  broker CPU while idle: off ${offIdle.toFixed(2)} ms/s, on ${onIdle.toFixed(2)} ms/s (one scrape a second)\n` +
    `  one /metrics scrape: ${scrape.toFixed(2)} ms of CPU\n` +
    `  metrics + logging, fixed cost: ${extra.toFixed(2)} ms per second = ${(extra / 10).toFixed(2)}% of one core\n`);
}

main().catch((e) => { console.error(e); process.exit(1); });
