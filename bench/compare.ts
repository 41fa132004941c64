// Compares two result CSVs cell by cell — typically a branch against main, each run with
// `npm run bench -- --label NAME` on the same machine:
//   node dist/bench/compare.js bench/results/<main>.csv bench/results/<branch>.csv
// For every (scenario, broker, workers) present in both: median per-core rate of each, the
// change, and whether the change exceeds the larger of the two spreads (else it is noise).
import * as fs from 'node:fs';
import { parseCsv } from './report/csv';
import { median } from './report/stats';
import { fixed, si } from './report/format';

interface Cell { perCore: number; spreadPct: number; p99: number; label: string }

function load(file: string): Map<string, Cell> {
  const groups = new Map<string, Array<Record<string, string>>>();
  for (const r of parseCsv(fs.readFileSync(file, 'utf8'))) {
    if (r.ok !== 'true') continue;
    const key = `${r.scenario} | ${r.broker}${r.broker === 'fleetmq' ? ` w${r.workers}` : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out = new Map<string, Cell>();
  for (const [key, rows] of groups) {
    const v = rows.map((r) => Number(r.perCore));
    const m = median(v);
    out.set(key, { perCore: m, spreadPct: ((Math.max(...v) - Math.min(...v)) / m) * 100, p99: median(rows.map((r) => Number(r.p99))), label: rows[0].label });
  }
  return out;
}

function main(): void {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) { console.error('usage: node dist/bench/compare.js BASE.csv CANDIDATE.csv'); process.exit(2); }
  const base = load(a);
  const cand = load(b);
  const keys = [...base.keys()].filter((k) => cand.has(k));
  if (keys.length === 0) { console.error('no cell appears (successfully) in both files'); process.exit(1); }
  const la = base.get(keys[0])!.label;
  const lb = cand.get(keys[0])!.label;
  console.log(`| scenario | broker | ${la} per core | ${lb} per core | change | beyond spread | p99 ms ${la} → ${lb} |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const k of keys.sort()) {
    const x = base.get(k)!;
    const y = cand.get(k)!;
    const change = ((y.perCore - x.perCore) / x.perCore) * 100;
    const noise = Math.max(x.spreadPct, y.spreadPct);
    const [scenario, broker] = k.split(' | ');
    console.log(`| ${scenario} | ${broker} | ${si(x.perCore)} | ${si(y.perCore)} | ${change >= 0 ? '+' : ''}${fixed(change, 1)}% | ${Math.abs(change) > noise ? 'yes' : `no (±${fixed(noise / 2, 0)}%)`} | ${fixed(x.p99, 2)} → ${fixed(y.p99, 2)} |`);
  }
}

main();
