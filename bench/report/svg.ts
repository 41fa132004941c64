// Grouped bar charts as standalone SVG (no dependency): one group per scenario (or worker
// count), one bar per broker (or figure), a whisker from the slowest to the fastest repeat.
import type { Summary } from './stats';
import { si } from './format';

interface Bar { value: number; lo: number; hi: number }

interface Chart {
  title: string;
  yLabel: string;
  groups: string[];
  series: string[];
  bar(group: string, series: string): Bar | null;
}

const COLORS = ['#3b6fb6', '#d9822b', '#4f9d69', '#a34f9d', '#8c8c8c'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= v)!;
}

export function barChart(c: Chart): string {
  const W = 120 + c.groups.length * (c.series.length * 26 + 30);
  const H = 360;
  const top = 70;
  const bottom = 300;
  const left = 80;
  const bars = c.groups.flatMap((g) => c.series.map((s) => c.bar(g, s))).filter((b): b is Bar => b !== null);
  const max = niceMax(Math.max(0, ...bars.map((b) => (Number.isFinite(b.hi) ? b.hi : b.value))));
  const y = (v: number) => bottom - (v / max) * (bottom - top);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
    `<text x="14" y="${(top + bottom) / 2}" transform="rotate(-90 14 ${(top + bottom) / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    out.push(`<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${si(v)}</text>`);
  }
  c.groups.forEach((g, gi) => {
    const x0 = left + 15 + gi * (c.series.length * 26 + 30);
    c.series.forEach((s, si2) => {
      const b = c.bar(g, s);
      const x = x0 + si2 * 26;
      if (!b || !Number.isFinite(b.value)) {
        out.push(`<text x="${x + 11}" y="${bottom - 4}" text-anchor="middle" fill="#b00" font-size="9">×</text>`);
        return;
      }
      out.push(`<rect x="${x}" y="${y(b.value)}" width="22" height="${bottom - y(b.value)}" fill="${COLORS[si2 % COLORS.length]}"><title>${esc(`${s} ${g}: ${si(b.value)}`)}</title></rect>`);
      if (Number.isFinite(b.lo) && Number.isFinite(b.hi) && b.hi > b.lo) {
        out.push(`<line x1="${x + 11}" x2="${x + 11}" y1="${y(b.hi)}" y2="${y(b.lo)}" stroke="black"/>`);
      }
      // Values differ by 10× between brokers, so small bars carry their figure as text.
      const ty = Math.min(y(Number.isFinite(b.hi) ? Math.max(b.hi, b.value) : b.value), y(b.value)) - 4;
      out.push(`<text x="${x + 15}" y="${ty}" font-size="9" transform="rotate(-90 ${x + 15} ${ty})">${si(b.value)}</text>`);
    });
    out.push(`<text x="${x0 + (c.series.length * 26) / 2}" y="${bottom + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  c.series.forEach((s, i) => {
    out.push(`<rect x="${left + i * 110}" y="${H - 28}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${left + i * 110 + 16}" y="${H - 18}">${esc(s)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

const seriesName = (s: Summary) => (s.broker === 'fleetmq' ? `fleetmq w${s.workers}` : s.broker);

export function comparisonChart(summaries: readonly Summary[], subtitle: string): string {
  const msg = summaries.filter((s) => s.unit === 'msg');
  const groups = [...new Set(msg.map((s) => s.scenario))];
  const series = [...new Set(msg.map(seriesName))];
  return barChart({
    title: `Messages delivered per broker CPU-second (median, whisker = min..max) — ${subtitle}`, yLabel: 'msg/s per core', groups, series,
    bar: (g, name) => {
      const s = msg.find((x) => x.scenario === g && seriesName(x) === name);
      return s ? { value: s.ok ? s.perCore : NaN, lo: s.perCoreMin, hi: s.perCoreMax } : null;
    },
  });
}

export function sweepChart(summaries: readonly Summary[], subtitle: string): string {
  const fm = summaries.filter((s) => s.broker === 'fleetmq' && s.unit === 'msg').sort((a, b) => a.workers - b.workers);
  const groups = [...new Set(fm.map((s) => `${s.scenario} w${s.workers}`))];
  return barChart({
    title: `fleetmq --workers sweep — ${subtitle}`, yLabel: 'msg/s', groups, series: ['per core', 'aggregate'],
    bar: (g, series) => {
      const s = fm.find((x) => `${x.scenario} w${x.workers}` === g);
      if (!s || !s.ok) return { value: NaN, lo: NaN, hi: NaN };
      return series === 'per core' ? { value: s.perCore, lo: s.perCoreMin, hi: s.perCoreMax } : { value: s.rate, lo: NaN, hi: NaN };
    },
  });
}
