// Repeats of one cell reduced to median and spread. The spread ((max − min) / median) is shown
// next to every median so a noisy machine is visible in the table, not hidden by it.
import type { CellResult } from '../cell';

export interface Summary {
  broker: string;
  scenario: string;
  unit: 'msg' | 'conn';
  workers: number;
  runs: number;
  ok: number;
  rate: number;
  perCore: number;
  perCoreMin: number;
  perCoreMax: number;
  spreadPct: number;
  brokerCpuPct: number;
  brokerUserPct: number;
  brokerSysPct: number;
  loadCpuPct: number;
  otherOnBrokerPct: number;
  otherOnLoadPct: number;
  p50: number;
  p99: number;
  p999: number;
  lost: number;
  outOfOrder: number;
  rssMiB: number;
  rssPerConnKiB: number;
  flags: string;
  errors: string;
}

export function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function key(r: { broker: string; scenario: string; workers: number }): string {
  return `${r.scenario}\u0000${r.broker}\u0000${r.workers}`;
}

export function summarize(rows: readonly CellResult[]): Summary[] {
  const groups = new Map<string, CellResult[]>();
  for (const r of rows) {
    const g = groups.get(key(r)) ?? [];
    g.push(r);
    groups.set(key(r), g);
  }
  return [...groups.values()].map((g) => {
    const ok = g.filter((r) => r.ok);
    const pick = (f: (r: CellResult) => number) => median(ok.map(f));
    const perCores = ok.map((r) => r.perCore);
    const perCore = median(perCores);
    return {
      broker: g[0].broker, scenario: g[0].scenario, unit: g[0].unit, workers: g[0].workers, runs: g.length, ok: ok.length,
      rate: pick((r) => r.rate), perCore,
      perCoreMin: ok.length ? Math.min(...perCores) : NaN, perCoreMax: ok.length ? Math.max(...perCores) : NaN,
      spreadPct: ok.length ? ((Math.max(...perCores) - Math.min(...perCores)) / perCore) * 100 : NaN,
      brokerCpuPct: pick((r) => r.brokerCpuPct), brokerUserPct: pick((r) => r.brokerUserPct), brokerSysPct: pick((r) => r.brokerSysPct), loadCpuPct: pick((r) => r.loadCpuPct),
      otherOnBrokerPct: pick((r) => r.otherOnBrokerPct), otherOnLoadPct: pick((r) => r.otherOnLoadPct),
      p50: pick((r) => r.p50), p99: pick((r) => r.p99), p999: pick((r) => r.p999),
      lost: ok.reduce((a, r) => a + r.lost, 0), outOfOrder: ok.reduce((a, r) => a + r.outOfOrder, 0),
      rssMiB: pick((r) => r.rssMiB), rssPerConnKiB: pick((r) => r.rssPerConnKiB),
      // Contention flags carry a percentage per repeat; the medians have their own column.
      flags: [...new Set(g.flatMap((r) => r.flags.split(' ').filter(Boolean).map((f) => f.replace(/:\d+%$/, ''))))].join(' '),
      errors: [...new Set(g.filter((r) => !r.ok).map((r) => r.error))].join(' | '),
    };
  });
}
