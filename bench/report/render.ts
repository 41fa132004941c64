// Re-renders the tables and charts of a finished run from its CSV, e.g. after changing the
// report code, or to paste a table into bench/README.md:
//   node dist/bench/report/render.js bench/results/<run>.csv   → prints tables, rewrites .svg
import * as fs from 'node:fs';
import type { CellResult } from '../cell';
import { COLUMNS, parseCsv } from './csv';
import { summarize } from './stats';
import { comparisonChart, sweepChart } from './svg';
import { connectionTable, messageTable, sweepTable } from './table';

const TEXT = new Set<string>(['broker', 'scenario', 'unit', 'flags', 'error']);

function toRow(r: Record<string, string>): CellResult {
  const row: Record<string, unknown> = {};
  for (const c of COLUMNS) {
    const v = r[c] ?? '';
    row[c] = c === 'ok' ? v === 'true' : TEXT.has(c) ? v : v === '' ? NaN : Number(v);
  }
  return row as unknown as CellResult;
}

function main(): void {
  const file = process.argv[2];
  if (!file) { console.error('usage: node dist/bench/report/render.js RUN.csv'); process.exit(2); }
  const raw = parseCsv(fs.readFileSync(file, 'utf8'));
  const summaries = summarize(raw.map(toRow));
  const label = raw[0]?.label ?? 'run';
  const workers = new Set(summaries.filter((s) => s.broker === 'fleetmq').map((s) => s.workers));
  console.log(`${messageTable(summaries)}\n\n${connectionTable(summaries)}`);
  fs.writeFileSync(file.replace(/\.csv$/, '.svg'), comparisonChart(summaries, label));
  if (workers.size > 1) {
    console.log(`\n${sweepTable(summaries)}`);
    fs.writeFileSync(file.replace(/\.csv$/, '-sweep.svg'), sweepChart(summaries, label));
  }
}

main();
