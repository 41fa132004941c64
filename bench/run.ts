// `npm run bench -- [options]`: every scenario against every broker, each cell on a fresh
// broker, brokers alternating within each repeat so slow drift on a shared machine hits them
// all alike. Prints the tables, writes CSV, Markdown and SVG into bench/results/.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BROKERS, BrokerName, FLEETMQ_DEFAULT_ARGS } from './brokers';
import { CellConfig, CellResult, runCell } from './cell';
import { hasTaskset, parseCpuList, pinSelf } from './proc';
import { toCsv } from './report/csv';
import { summarize } from './report/stats';
import { comparisonChart, sweepChart } from './report/svg';
import { connectionTable, messageTable, sweepTable } from './report/table';
import { findScenarios, Scenario } from './scenarios';

const HELP = `usage: npm run bench -- [options]
  --broker LIST        fleetmq,mosquitto,aedes (default: all three)
  --scenario LIST      all | fan-in,fan-out,pairs,qos1-pairs,wildcard,pairs-fixed,idle,churn,churn-v5,
                       churn-persistent,churn-persistent-v5 (default: all)
  --repeat N           runs per cell, median and spread reported (default 3)
  --warmup S           seconds before the measured window (default 2)
  --duration S         measured window in seconds (default 3)
  --quick              1 s warm-up, 2 s window, 1 repeat, 2000 idle connections
  --workers W          fleetmq workers: 1 | 1..4 | 1,2,4 (several = sweep; default 1)
  --fleetmq-args ARGS  extra fleetmq flags, one string (default "--durability none")
  --broker-cpus LIST   CPUs the broker is pinned to (default 0)
  --load-cpus LIST     CPUs the load generator is pinned to (default: all others)
  --cpus B/L           both at once, e.g. --cpus 0-15/16-31
  --no-pin             do not use taskset
  --threads N          load generator threads (default: max(2, load CPUs))
  --protocol 4|5       MQTT 3.1.1 (4, default) or 5.0
  --payload BYTES      payload size, at least 16 (default 64)
  --rate N             fixed total msg/s for every pub/sub scenario (default: closed loop)
  --qos 0|1|2          QoS for every pub/sub scenario (default: the scenario's)
  --window N           closed loop: unseen messages per publisher (default 200)
  --inflight N         QoS 1/2 unacknowledged PUBLISHes per publisher (default 256)
  --idle-count N       connections in the idle scenario (default 10000)
  --idle N             extra idle connections in every pub/sub scenario (default 0)
  --label NAME         names the result files (default: current git branch)
  --out DIR            results directory (default bench/results)`;

const ROOT = path.resolve(__dirname, '..', '..');

type Args = Map<string, string>;

function parseArgs(argv: string[]): Args {
  const args: Args = new Map();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const [k, inline] = a.slice(2).split('=', 2);
    const flag = ['quick', 'no-pin', 'help'].includes(k);
    args.set(k, flag ? 'true' : inline ?? argv[++i] ?? '');
  }
  return args;
}

function num(args: Args, k: string, dflt: number): number {
  const v = args.get(k);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} needs a number, got '${v}'`);
  return n;
}

function qosArg(args: Args): 0 | 1 | 2 | undefined {
  if (!args.has('qos')) return undefined;
  const q = num(args, 'qos', 0);
  if (q !== 0 && q !== 1 && q !== 2) throw new Error('--qos is 0, 1 or 2');
  return q;
}

function workerCounts(spec: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(spec);
  if (range) return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
  return spec.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

function gitLabel(): string {
  try { return execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: ROOT }).toString().trim().replace(/[^\w.-]+/g, '_'); } catch { return 'run'; }
}

interface Pinning { broker: number[] | null; load: number[] }

function pinning(args: Args): Pinning {
  const all = Array.from({ length: os.cpus().length }, (_, i) => i);
  if (args.has('no-pin') || !hasTaskset() || all.length < 2) return { broker: null, load: all };
  // --cpus BROKER/LOAD is shorthand for --broker-cpus BROKER --load-cpus LOAD.
  const [cb, cl] = (args.get('cpus') ?? '').split('/');
  const broker = parseCpuList(args.get('broker-cpus') ?? (cb || '0'));
  const loadSpec = args.get('load-cpus') ?? cl;
  const load = loadSpec ? parseCpuList(loadSpec) : all.filter((c) => !broker.includes(c));
  if (load.length === 0) throw new Error('no CPU left for the load generator; pass --load-cpus');
  pinSelf(load);
  return { broker, load };
}

interface Cell { broker: BrokerName; scenario: Scenario; workers: number; repeat: number }

/** Within each repeat every broker runs once; the order flips every other repeat. */
function schedule(brokers: BrokerName[], scenarios: Scenario[], workers: number[], repeats: number): Cell[] {
  const cells: Cell[] = [];
  for (const scenario of scenarios) {
    for (let repeat = 1; repeat <= repeats; repeat++) {
      const round: Cell[] = brokers.flatMap((broker) => (broker === 'fleetmq' ? workers : [1]).map((w) => ({ broker, scenario, workers: w, repeat })));
      cells.push(...(repeat % 2 === 0 ? round.reverse() : round));
    }
  }
  return cells;
}

function describeMachine(p: Pinning): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const pin = p.broker ? `broker on CPU ${p.broker.join(',')}, load on CPU ${p.load.join(',')}` : 'not pinned';
  return `${os.cpus().length} × ${cpu}, Node ${process.version}, ${os.platform()} ${os.release()}; ${pin}`;
}

function writeResults(outDir: string, label: string, rows: CellResult[], header: string, sweep: boolean): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  const date = new Date().toISOString();
  const base = path.join(outDir, `${date.slice(0, 19).replace(/[:T]/g, '-')}-${label}`);
  const summaries = summarize(rows);
  const md = [header, '', messageTable(summaries), '', connectionTable(summaries), ...(sweep ? ['', sweepTable(summaries)] : [])].join('\n') + '\n';
  const files = [`${base}.csv`, `${base}.md`, `${base}.svg`];
  fs.writeFileSync(files[0], toCsv(rows, label, date));
  fs.writeFileSync(files[1], md);
  fs.writeFileSync(files[2], comparisonChart(summaries, label));
  if (sweep) { files.push(`${base}-sweep.svg`); fs.writeFileSync(files[3], sweepChart(summaries, label)); }
  return files;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.has('help')) { console.log(HELP); return; }
  const quick = args.has('quick');
  const brokers = (args.get('broker') ?? BROKERS.join(',')).split(',').map((b) => b.trim()) as BrokerName[];
  for (const b of brokers) if (!BROKERS.includes(b)) throw new Error(`unknown broker '${b}'`);
  const scenarios = findScenarios(args.get('scenario') ?? 'all');
  const repeats = num(args, 'repeat', quick ? 1 : 3);
  const workers = workerCounts(args.get('workers') ?? '1');
  const pins = pinning(args);
  const payload = num(args, 'payload', 64);
  if (payload < 16) throw new Error('--payload must be at least 16 bytes (the stamp)');
  const protocol = num(args, 'protocol', 4);
  if (protocol !== 4 && protocol !== 5) throw new Error('--protocol is 4 (MQTT 3.1.1) or 5');
  const cfg: CellConfig = {
    brokerCpus: pins.broker, loadCpus: pins.load,
    threads: num(args, 'threads', Math.max(2, pins.load.length)),
    warmupMs: num(args, 'warmup', quick ? 1 : 2) * 1000, measureMs: num(args, 'duration', quick ? 2 : 3) * 1000,
    drainMs: Math.max(5, num(args, 'duration', 3)) * 1000,
    fleetmqArgs: args.has('fleetmq-args') ? args.get('fleetmq-args')!.split(/\s+/).filter(Boolean) : FLEETMQ_DEFAULT_ARGS,
    scenario: {
      version: protocol, payload, rate: args.has('rate') ? num(args, 'rate', 0) : undefined, qos: qosArg(args),
      window: num(args, 'window', 200),
      inflight: num(args, 'inflight', 256), idleCount: num(args, 'idle-count', quick ? 2000 : 10000), extraIdle: num(args, 'idle', 0),
    },
  };
  const label = args.get('label') ?? gitLabel();
  const cells = schedule(brokers, scenarios, workers, repeats);
  const header = `fleetmq bench '${label}', ${new Date().toISOString()}: ${describeMachine(pins)}; ${cfg.threads} load threads; ` +
    `MQTT ${protocol === 5 ? '5.0' : '3.1.1'}, ${payload} B payload; fleetmq ${cfg.fleetmqArgs.join(' ')}; ${cfg.warmupMs / 1000} s warm-up + ${cfg.measureMs / 1000} s window; ${repeats} repeats`;
  console.error(`${header}\n${cells.length} cells`);
  const rows: CellResult[] = [];
  for (const [i, c] of cells.entries()) {
    const row = await runCell(c.broker, c.scenario, c.workers, c.repeat, cfg);
    rows.push(row);
    const what = row.ok ? `${row.perCore.toFixed(0)} ${c.scenario.unit}/CPU-s, ${row.rate.toFixed(0)} ${c.scenario.unit}/s, broker ${row.brokerCpuPct.toFixed(0)}% (usr ${row.brokerUserPct.toFixed(0)} sys ${row.brokerSysPct.toFixed(0)}${Number.isFinite(row.userUsPerMsg) ? `, ${row.userUsPerMsg.toFixed(2)} + ${row.sysUsPerMsg.toFixed(2)} µs/msg` : ''}) load ${row.loadCpuPct.toFixed(0)}% ${row.flags}` : `FAILED: ${row.error}`;
    console.error(`[${i + 1}/${cells.length}] ${c.scenario.name} ${c.broker}${c.broker === 'fleetmq' ? ` w${c.workers}` : ''} #${c.repeat}: ${what}`);
  }
  const summaries = summarize(rows);
  console.log(`\n${header}\n\n${messageTable(summaries)}\n\n${connectionTable(summaries)}`);
  const sweep = brokers.includes('fleetmq') && workers.length > 1;
  if (sweep) console.log(`\n${sweepTable(summaries)}`);
  const files = writeResults(path.resolve(args.get('out') ?? path.join(ROOT, 'bench', 'results')), label, rows, header, sweep);
  console.log(`\nwrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

main().catch((err) => { console.error((err as Error).message); process.exit(1); });
