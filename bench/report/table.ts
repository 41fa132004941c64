// The comparison table: one row per (scenario, broker, workers), medians over repeats.
// Printed as Markdown so the same text goes to the console and into bench/README.md.
import type { Summary } from './stats';
import { fixed, ms, si } from './format';

function render(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function messageTable(summaries: readonly Summary[]): string {
  const rows = summaries.filter((s) => s.unit === 'msg').map((s) => [
    s.scenario, s.broker + (s.broker === 'fleetmq' ? ` w${s.workers}` : ''), s.ok === 0 ? 'FAILED' : si(s.perCore),
    s.ok === 0 ? '—' : `±${fixed(s.spreadPct / 2, 0)}%`, si(s.rate), fixed(s.brokerCpuPct, 0),
    `${fixed(s.brokerUserPct, 0)} / ${fixed(s.brokerSysPct, 0)}`, `${fixed(s.userUsPerMsg, 2)} / ${fixed(s.sysUsPerMsg, 2)}`, fixed(s.loadCpuPct, 0),
    `${fixed(s.otherOnBrokerPct, 0)} / ${fixed(s.otherOnLoadPct, 0)}`, `${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.p999)}`, si(s.lost), si(s.outOfOrder), fixed(s.rssMiB, 0), `${s.ok}/${s.runs}`,
    [s.flags, s.errors].filter(Boolean).join('; ').slice(0, 120),
  ]);
  return render(['scenario', 'broker', 'msg/s per core', 'spread', 'msg/s', 'broker CPU %', 'broker usr / sys %', 'broker µs per msg usr / sys', 'load CPU %', 'others % b/l',
    'latency p50/p99/p999 ms', 'lost', 'out of order', 'RSS MiB', 'ok', 'notes'], rows);
}

/** Broker CPU per connection in µs, from a share of one CPU (%) and connections per second. */
function perConnUs(pct: number, rate: number): string {
  return Number.isFinite(pct) && rate > 0 ? fixed((pct / 100 / rate) * 1e6, 0) : '—';
}

export function connectionTable(summaries: readonly Summary[]): string {
  const rows = summaries.filter((s) => s.unit === 'conn').map((s) => [
    s.scenario, s.broker + (s.broker === 'fleetmq' ? ` w${s.workers}` : ''), s.ok === 0 ? 'FAILED' : si(s.rate),
    s.ok === 0 ? '—' : si(s.perCore), s.ok === 0 ? '—' : `±${fixed(s.spreadPct / 2, 0)}%`, fixed(s.brokerCpuPct, 0),
    `${perConnUs(s.brokerUserPct, s.rate)} / ${perConnUs(s.brokerSysPct, s.rate)}`, fixed(s.loadCpuPct, 0), `${fixed(s.otherOnBrokerPct, 0)} / ${fixed(s.otherOnLoadPct, 0)}`, s.scenario === 'idle' ? fixed(s.rssPerConnKiB, 2) : '—', fixed(s.rssMiB, 0), `${s.ok}/${s.runs}`,
    [s.flags, s.errors].filter(Boolean).join('; ').slice(0, 120),
  ]);
  return render(['scenario', 'broker', 'connects/s', 'connects per CPU-s', 'spread', 'broker CPU %', 'user / sys µs per connect', 'load CPU %',
    'others % b/l', 'RSS KiB per conn', 'RSS MiB', 'ok', 'notes'], rows);
}

export function sweepTable(summaries: readonly Summary[]): string {
  const rows = summaries.filter((s) => s.broker === 'fleetmq' && s.unit === 'msg').sort((a, b) => a.workers - b.workers).map((s) => [
    s.scenario, String(s.workers), s.ok === 0 ? 'FAILED' : si(s.perCore), si(s.rate), fixed(s.brokerCpuPct, 0), `${s.ok}/${s.runs}`,
    s.errors.slice(0, 120),
  ]);
  return render(['scenario', 'workers', 'msg/s per core', 'aggregate msg/s', 'broker CPU %', 'ok', 'notes'], rows);
}
