// The brokers a run can compare, each started fresh per cell.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BrokerProcess, freePort, launch, LaunchOptions } from './process';

export const BROKERS = ['fleetmq', 'mosquitto', 'aedes'] as const;
export type BrokerName = (typeof BROKERS)[number];

const ROOT = path.resolve(__dirname, '..', '..', '..');

async function mosquitto(opts: LaunchOptions): Promise<BrokerProcess> {
  const port = await freePort();
  const base = fs.readFileSync(path.join(ROOT, 'bench', 'brokers', 'mosquitto.conf'), 'utf8');
  const conf = path.join(os.tmpdir(), `fleetmq-bench-mosquitto-${process.pid}-${port}.conf`);
  fs.writeFileSync(conf, `${base}\nlistener ${port} 127.0.0.1\n`);
  try {
    return await launch({ name: 'mosquitto', command: 'mosquitto', args: ['-c', conf], port }, opts);
  } finally {
    setTimeout(() => fs.rmSync(conf, { force: true }), 2000).unref();
  }
}

function aedes(opts: LaunchOptions): Promise<BrokerProcess> {
  const script = path.join(ROOT, 'dist', 'bench', 'brokers', 'aedes-server.js');
  return launch({ name: 'aedes', command: process.execPath, args: [script, '0'], ready: /aedes listening on ([^\s:]+):(\d+)/ }, opts);
}

// Memory only, like Mosquitto (persistence false) and Aedes here; it also keeps a run from
// colliding with another fleetmq's RocksDB lock on ./data.
export const FLEETMQ_DEFAULT_ARGS = ['--durability', 'none'];

const nodeArgs = (): string[] => (process.env.FLEETMQ_NODE_ARGS ?? '').split(' ').filter(Boolean);

function fleetmq(opts: LaunchOptions, workers: number, extra: string[]): Promise<BrokerProcess> {
  // FLEETMQ_BIN=/other/tree/bin/fleetmq.js runs another build under the same load (before / after).
  const bin = process.env.FLEETMQ_BIN ?? path.join(ROOT, 'bin', 'fleetmq.js');
  return launch({
    name: 'fleetmq', command: process.execPath,
    // FLEETMQ_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles every broker thread
    // (node refuses --cpu-prof in NODE_OPTIONS).
    args: [...nodeArgs(), bin, '--port', '0', '--host', '127.0.0.1', '--workers', String(workers), ...extra],
    ready: /fleetmq listening on ([^\s:]+):(\d+)/,
  }, opts);
}

export function startBroker(name: BrokerName, opts: LaunchOptions, workers = 1, fleetmqArgs = FLEETMQ_DEFAULT_ARGS): Promise<BrokerProcess> {
  if (name === 'mosquitto') return mosquitto(opts);
  if (name === 'aedes') return aedes(opts);
  return fleetmq(opts, workers, fleetmqArgs);
}
