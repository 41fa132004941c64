// One cell of the table: a fresh broker, one scenario, one measured window, one row of figures.
// A cell that fails (broker does not start, drops connections, stalls) becomes a row with the
// reason, and the run carries on.
import { BrokerName, startBroker } from './brokers';
import { BrokerProcess, excerpt } from './brokers/process';
import { LoadResult, runLoad } from './load/generator';
import { busyPct, cpuJiffies, cpuSplit, rssKiB } from './proc';
import type { CpuJiffies } from './proc';
import type { Scenario, ScenarioOptions } from './scenarios';

export interface CellConfig {
  brokerCpus: number[] | null;
  loadCpus: number[];
  threads: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  scenario: ScenarioOptions;
  fleetmqArgs: string[];
}

export interface CellResult {
  broker: BrokerName;
  scenario: string;
  unit: 'msg' | 'conn';
  workers: number;
  repeat: number;
  ok: boolean;
  error: string;
  /** Delivered msg/s, or connections/s for the connection scenarios. */
  rate: number;
  /** Headline: deliveries (or connections) per broker CPU-second. */
  perCore: number;
  brokerCpuPct: number;
  /** The broker's CPU split: user space and kernel (system), % of one CPU. */
  brokerUserPct: number;
  brokerSysPct: number;
  /** Broker CPU per delivered message, µs: user and system (pub/sub scenarios). */
  userUsPerMsg: number;
  sysUsPerMsg: number;
  loadCpuPct: number;
  /** CPU other processes took on the broker's / the load's CPUs in the window (% of one CPU). */
  otherOnBrokerPct: number;
  otherOnLoadPct: number;
  p50: number;
  p99: number;
  p999: number;
  published: number;
  lost: number;
  outOfOrder: number;
  rssMiB: number;
  /** idle: broker RSS growth per connection. */
  rssPerConnKiB: number;
  connections: number;
  flags: string;
}

function emptyRow(broker: BrokerName, s: Scenario, workers: number, repeat: number, error: string): CellResult {
  return {
    broker, scenario: s.name, unit: s.unit, workers, repeat, ok: false, error, rate: NaN, perCore: NaN,
    brokerCpuPct: NaN, brokerUserPct: NaN, brokerSysPct: NaN, userUsPerMsg: NaN, sysUsPerMsg: NaN, loadCpuPct: NaN, otherOnBrokerPct: NaN, otherOnLoadPct: NaN, p50: NaN, p99: NaN, p999: NaN, published: 0, lost: 0, outOfOrder: 0,
    rssMiB: NaN, rssPerConnKiB: NaN, connections: 0, flags: '',
  };
}

function flagsFor(row: CellResult, cfg: CellConfig, offeredRate: number, fanout: number): string[] {
  const flags: string[] = [];
  const brokerCores = cfg.brokerCpus?.length ?? 1;
  // The load threads share `loadCpus` cores; near their limit the broker may be starved of work.
  if (row.loadCpuPct >= 85 * cfg.loadCpus.length) flags.push('client-bound');
  // On a shared machine: who else ran on our CPUs. Per-core figures stay valid, rates do not.
  if (row.otherOnBrokerPct > 15) flags.push(`others-on-broker-cpu:${row.otherOnBrokerPct.toFixed(0)}%`);
  if (row.otherOnLoadPct > 15) flags.push(`others-on-load-cpu:${row.otherOnLoadPct.toFixed(0)}%`);
  if (row.unit === 'msg' && offeredRate === 0 && row.brokerCpuPct < 85 * brokerCores) {
    // Not saturated by its own work: either its CPUs were full with other processes' work too
    // (it got a share of them), or the load did not push it hard enough.
    const full = row.brokerCpuPct + (Number.isFinite(row.otherOnBrokerPct) ? row.otherOnBrokerPct : 0) >= 90 * brokerCores;
    flags.push(full ? 'broker-cpu-shared' : 'broker-unsaturated');
  }
  if (offeredRate > 0 && row.rate < 0.95 * offeredRate * fanout) flags.push('rate-missed');
  if (row.lost > 0) flags.push('lost');
  if (row.outOfOrder > 0) flags.push('out-of-order');
  return flags;
}

function contention(row: CellResult, a: CpuJiffies, b: CpuJiffies, cfg: CellConfig): void {
  if (!cfg.brokerCpus) return; // unpinned: broker and load share every CPU, nothing to separate
  const brokerCpus = cfg.brokerCpus;
  if (brokerCpus.some((c) => cfg.loadCpus.includes(c))) {
    // Overlapping sets: only the union can be split into broker, load and everyone else.
    const union = [...new Set([...brokerCpus, ...cfg.loadCpus])];
    row.otherOnBrokerPct = row.otherOnLoadPct = Math.max(0, busyPct(a, b, union) - row.brokerCpuPct - row.loadCpuPct);
    return;
  }
  row.otherOnBrokerPct = Math.max(0, busyPct(a, b, brokerCpus) - row.brokerCpuPct);
  row.otherOnLoadPct = Math.max(0, busyPct(a, b, cfg.loadCpus) - row.loadCpuPct);
}

function fill(row: CellResult, r: LoadResult, s: Scenario, cfg: CellConfig, plan: ReturnType<Scenario['build']>): void {
  const a = r.windowStart;
  const b = r.windowEnd;
  const seconds = (b.atMs - a.atMs) / 1000;
  const cpu = b.broker.cpuSeconds - a.broker.cpuSeconds;
  row.loadCpuPct = ((b.loadCpuMicros - a.loadCpuMicros) / 1e6 / seconds) * 100;
  row.brokerCpuPct = (cpu / seconds) * 100;
  const user = b.broker.userSeconds - a.broker.userSeconds;
  const sys = b.broker.sysSeconds - a.broker.sysSeconds;
  row.brokerUserPct = (user / seconds) * 100;
  row.brokerSysPct = (sys / seconds) * 100;
  row.rssMiB = b.broker.rssKiB / 1024;
  if (plan.kind === 'idle') {
    const setupCpu = r.afterSetup.broker.cpuSeconds - r.beforeSetup.broker.cpuSeconds;
    row.connections = r.afterSetup.connects;
    row.rate = row.connections / (r.setupMs / 1000);
    row.perCore = row.connections / setupCpu;
    const setupSeconds = (r.afterSetup.atMs - r.beforeSetup.atMs) / 1000;
    row.brokerCpuPct = (setupCpu / setupSeconds) * 100;
    row.brokerUserPct = ((r.afterSetup.broker.userSeconds - r.beforeSetup.broker.userSeconds) / setupSeconds) * 100;
    row.brokerSysPct = ((r.afterSetup.broker.sysSeconds - r.beforeSetup.broker.sysSeconds) / setupSeconds) * 100;
    row.loadCpuPct = ((r.afterSetup.loadCpuMicros - r.beforeSetup.loadCpuMicros) / 1e6 / ((r.afterSetup.atMs - r.beforeSetup.atMs) / 1000)) * 100;
    row.rssMiB = r.afterSetup.broker.rssKiB / 1024;
    row.rssPerConnKiB = (r.afterSetup.broker.rssKiB - r.beforeSetup.broker.rssKiB) / row.connections;
  } else if (plan.kind === 'churn') {
    row.connections = b.connects - a.connects;
    row.rate = row.connections / seconds;
    row.perCore = row.connections / cpu;
  } else {
    const delivered = b.received - a.received;
    row.rate = delivered / seconds;
    row.perCore = delivered / cpu;
    row.userUsPerMsg = (user / delivered) * 1e6;
    row.sysUsPerMsg = (sys / delivered) * 1e6;
    row.p50 = r.latencyMs.p50;
    row.p99 = r.latencyMs.p99;
    row.p999 = r.latencyMs.p999;
    row.published = r.published;
    row.lost = r.lost;
    row.outOfOrder = r.outOfOrder;
    row.connections = plan.publishers.length + plan.subscribers.length + plan.idle;
  }
  const [ca, cb] = plan.kind === 'idle' ? [r.beforeSetup, r.afterSetup] : [a, b];
  contention(row, ca.broker.machine, cb.broker.machine, cfg);
  const offered = plan.kind === 'pubsub' ? plan.rate : 0;
  row.flags = flagsFor(row, cfg, offered, plan.kind === 'pubsub' ? plan.fanout : 1).join(' ');
  const errors = b.errors - a.errors;
  if (r.fault || errors > 0) {
    row.ok = false;
    row.error = r.fault ?? `${errors} connection errors in the window`;
  } else {
    row.ok = Number.isFinite(row.perCore);
    if (!row.ok) row.error = 'no broker CPU time measured';
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} exceeded ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function runCell(broker: BrokerName, s: Scenario, workers: number, repeat: number, cfg: CellConfig): Promise<CellResult> {
  const row = emptyRow(broker, s, workers, repeat, '');
  let proc: BrokerProcess | undefined;
  try {
    proc = await startBroker(broker, { cpus: cfg.brokerCpus, timeoutMs: 20000 }, workers, cfg.fleetmqArgs);
    const pid = proc.pid;
    const plan = s.build(cfg.scenario);
    const budget = 60000 + cfg.warmupMs + cfg.measureMs + cfg.drainMs + (plan.kind === 'idle' ? plan.count * 10 : 0);
    const r = await withTimeout(runLoad(plan, proc.host, proc.port, cfg, () => { const c = cpuSplit(pid); return { cpuSeconds: c.user + c.sys, userSeconds: c.user, sysSeconds: c.sys, rssKiB: rssKiB(pid), machine: cpuJiffies() }; }), budget, 'cell');
    fill(row, r, s, cfg, plan);
    if (proc.exited()) { row.ok = false; row.error = `broker exited: ${excerpt(proc.output())}`; }
  } catch (err) {
    row.ok = false;
    row.error = (err as Error).message;
  } finally {
    if (proc) await proc.stop();
  }
  row.error = row.error.replace(/\s+/g, ' ').slice(0, 300);
  return row;
}
