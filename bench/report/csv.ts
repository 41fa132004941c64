// Raw rows (one per cell and repeat) go to CSV so two runs — a branch and main — can be
// compared later by bench/compare.ts without re-running either.
import type { CellResult } from '../cell';

export const COLUMNS: Array<keyof CellResult> = ['broker', 'scenario', 'unit', 'workers', 'repeat', 'ok', 'rate', 'perCore',
  'brokerCpuPct', 'brokerUserPct', 'brokerSysPct', 'loadCpuPct', 'otherOnBrokerPct', 'otherOnLoadPct', 'p50', 'p99', 'p999', 'published', 'lost', 'outOfOrder', 'rssMiB', 'rssPerConnKiB',
  'connections', 'flags', 'error'];

function cell(v: unknown): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(Math.round(v * 1000) / 1000) : '') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: readonly CellResult[], label: string, date: string): string {
  const header = ['label', 'date', ...COLUMNS].join(',');
  return [header, ...rows.map((r) => [label, date, ...COLUMNS.map((c) => r[c])].map(cell).join(','))].join('\n') + '\n';
}

export function parseCsv(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const split = (line: string) => {
    const out: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') { out.push(cur); cur = ''; } else cur += ch;
    }
    out.push(cur);
    return out;
  };
  const header = split(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(split(l).map((v, i) => [header[i], v])));
}
