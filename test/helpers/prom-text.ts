// A strict parser of the Prometheus text exposition format 0.0.4, for tests that scrape /metrics.
//
// Why not a package: the one npm parser of this format (parse-prometheus-text-format 1.1.1) is
// unmaintained since 2019 and lenient: it accepts any TYPE word, interleaved families and
// duplicate series, exactly the mistakes a test must catch. This one follows the format's line
// grammar token by token and throws, with the line number, on anything the format forbids:
//
//   exposition = *line, every line ending in "\n" (the last one too)
//   line       = blank | "# HELP" name [docstring] | "# TYPE" name type | "#" comment | sample
//   sample     = name ["{" [label *("," label) [","]] "}"] value [timestamp]
//   label      = label-name "=" '"' value with \\ \" \n escapes only '"'
//   name       = [a-zA-Z_:][a-zA-Z0-9_:]*      label-name = [a-zA-Z_][a-zA-Z0-9_]*, not "__..."
//   value      = a Go float (decimal, exponent, NaN, +Inf, -Inf)   timestamp = integer (ms)
//   type       = counter | gauge | histogram | summary | untyped
//
// and the rules across lines: at most one HELP and one TYPE per family, TYPE before the family's
// first sample, all of a family's samples in one group, no two samples with the same name and
// label set, no duplicate label name in a sample.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export interface PromSample { name: string; labels: Record<string, string>; value: number; timestamp?: number }
export interface PromFamily { name: string; type: MetricType; help: string | null; samples: PromSample[] }

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

export class PromParseError extends Error {}

function parseValue(tok: string, where: string): number {
  if (tok === 'NaN') return NaN;
  if (tok === '+Inf' || tok === 'Inf') return Infinity;
  if (tok === '-Inf') return -Infinity;
  if (!FLOAT_RE.test(tok)) throw new PromParseError(`${where}: not a float: ${JSON.stringify(tok)}`);
  return Number(tok);
}

/** A family's name for a sample name: histogram / summary samples carry suffixes. */
function familyOf(name: string, families: Map<string, PromFamily>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix !== '_bucket'))) return base.name;
  }
  return name;
}

/** Parses `text`; returns the families by name, in order of appearance. Throws PromParseError. */
export function parsePromText(text: string): Map<string, PromFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new PromParseError('the exposition does not end with a line feed');
  const families = new Map<string, PromFamily>();
  const seenSeries = new Set<string>();
  const closed = new Set<string>(); // families whose group of samples has ended
  let current: string | null = null; // the family whose samples came last
  const lines = text.split('\n');
  lines.pop(); // after the final "\n"
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (!f) { f = { name, type: 'untyped', help: null, samples: [] }; families.set(name, f); }
    return f;
  };
  const hasType = new Set<string>();
  lines.forEach((raw, i) => {
    const where = `line ${i + 1} (${JSON.stringify(raw.slice(0, 80))})`;
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const rest = m[2];
      const nm = NAME_RE.exec(rest);
      if (!nm) throw new PromParseError(`${where}: ${m[1]} without a valid metric name`);
      const name = nm[0];
      const after = rest.slice(name.length);
      if (after !== '' && !/^[ \t]/.test(after)) throw new PromParseError(`${where}: invalid metric name`);
      const f = family(name);
      if (m[1] === 'HELP') {
        if (f.help !== null) throw new PromParseError(`${where}: second HELP for ${name}`);
        const doc = after.replace(/^[ \t]+/, '');
        if (/\\(?![\\n])/.test(doc.replace(/\\\\/g, ''))) throw new PromParseError(`${where}: HELP escapes are \\\\ and \\n only`);
        f.help = doc.replace(/\\(\\|n)/g, (_s, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (hasType.has(name)) throw new PromParseError(`${where}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new PromParseError(`${where}: TYPE for ${name} after its samples`);
        const t = after.trim();
        if (!TYPES.includes(t as MetricType)) throw new PromParseError(`${where}: unknown type ${JSON.stringify(t)}`);
        f.type = t as MetricType;
        hasType.add(name);
      }
      return;
    }
    // A sample.
    const nm = NAME_RE.exec(line);
    if (!nm) throw new PromParseError(`${where}: a sample must start with a metric name`);
    const name = nm[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ' || line[pos] === '\t') pos++;
        if (line[pos] === '}') { pos++; break; }
        const ln = LABEL_RE.exec(line.slice(pos));
        if (!ln) throw new PromParseError(`${where}: invalid label name at column ${pos + 1}`);
        const label = ln[0];
        if (label.startsWith('__')) throw new PromParseError(`${where}: label name ${label} is reserved`);
        if (label in labels) throw new PromParseError(`${where}: label ${label} twice`);
        pos += label.length;
        while (line[pos] === ' ' || line[pos] === '\t') pos++;
        if (line[pos] !== '=') throw new PromParseError(`${where}: expected = after label ${label}`);
        pos++;
        while (line[pos] === ' ' || line[pos] === '\t') pos++;
        if (line[pos] !== '"') throw new PromParseError(`${where}: label ${label} value must be quoted`);
        pos++;
        let v = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) throw new PromParseError(`${where}: unterminated value of label ${label}`);
          if (c === '"') { pos++; break; }
          if (c === '\\') {
            const e = line[pos + 1];
            if (e === '\\') v += '\\';
            else if (e === '"') v += '"';
            else if (e === 'n') v += '\n';
            else throw new PromParseError(`${where}: invalid escape \\${e ?? ''} in label ${label}`);
            pos += 2;
            continue;
          }
          v += c;
          pos++;
        }
        labels[label] = v;
        while (line[pos] === ' ' || line[pos] === '\t') pos++;
        if (line[pos] === ',') { pos++; continue; }
        if (line[pos] === '}') { pos++; break; }
        throw new PromParseError(`${where}: expected , or } after label ${label}`);
      }
    }
    const rest = line.slice(pos);
    if (!/^[ \t]/.test(rest)) throw new PromParseError(`${where}: expected whitespace before the value`);
    const toks = rest.trim().split(/[ \t]+/);
    if (toks.length < 1 || toks.length > 2 || toks[0] === '') throw new PromParseError(`${where}: expected a value and an optional timestamp`);
    const value = parseValue(toks[0], where);
    let timestamp: number | undefined;
    if (toks.length === 2) {
      if (!/^-?\d+$/.test(toks[1])) throw new PromParseError(`${where}: timestamp must be an integer`);
      timestamp = Number(toks[1]);
    }
    const fam = familyOf(name, families);
    if (current !== fam) {
      if (closed.has(fam)) throw new PromParseError(`${where}: samples of ${fam} are not in one group`);
      if (current !== null) closed.add(current);
      current = fam;
    }
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
    if (seenSeries.has(key)) throw new PromParseError(`${where}: duplicate series ${key}`);
    seenSeries.add(key);
    family(fam).samples.push({ name, labels, value, ...(timestamp !== undefined ? { timestamp } : {}) });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/**
 * A histogram's rules: only `_bucket`, `_sum` and `_count` samples; per label set (le aside) the
 * buckets in increasing `le` order, their counts cumulative (never decreasing), the last one
 * `le="+Inf"` and equal to `_count`; one `_sum` and one `_count`; `le` on buckets only.
 */
function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, { les: number[]; counts: number[]; sum: number | null; count: number | null }>();
  const groupOf = (labels: Record<string, string>) => {
    const key = Object.keys(labels).filter((k) => k !== 'le').sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',');
    let g = groups.get(key);
    if (!g) { g = { les: [], counts: [], sum: null, count: null }; groups.set(key, g); }
    return g;
  };
  for (const smp of f.samples) {
    const suffix = smp.name.slice(f.name.length);
    const g = groupOf(smp.labels);
    if (suffix === '_bucket') {
      if (!('le' in smp.labels)) throw new PromParseError(`histogram ${f.name}: a bucket without le`);
      const le = parseValue(smp.labels.le, `histogram ${f.name} le`);
      if (g.les.length > 0 && !(le > g.les[g.les.length - 1])) throw new PromParseError(`histogram ${f.name}: le ${smp.labels.le} not above the previous bucket's`);
      if (g.counts.length > 0 && smp.value < g.counts[g.counts.length - 1]) throw new PromParseError(`histogram ${f.name}: bucket le=${smp.labels.le} counts fewer than the one before (not cumulative)`);
      g.les.push(le);
      g.counts.push(smp.value);
    } else if (suffix === '_sum' || suffix === '_count') {
      if ('le' in smp.labels) throw new PromParseError(`histogram ${f.name}: le on ${smp.name}`);
      if (suffix === '_sum') g.sum = smp.value; else g.count = smp.value;
    } else {
      throw new PromParseError(`histogram ${f.name}: sample ${smp.name} is not _bucket, _sum or _count`);
    }
  }
  for (const [key, g] of groups) {
    const where = `histogram ${f.name}{${key}}`;
    if (g.les.length === 0 || g.les[g.les.length - 1] !== Infinity) throw new PromParseError(`${where}: no le="+Inf" bucket last`);
    if (g.sum === null || g.count === null) throw new PromParseError(`${where}: _sum or _count missing`);
    if (g.count !== g.counts[g.counts.length - 1]) throw new PromParseError(`${where}: _count ${g.count} is not the +Inf bucket's ${g.counts[g.counts.length - 1]}`);
  }
}

/** A histogram's buckets (le → cumulative count), sum and count, for the series matching `labels`. */
export function histogramOf(families: Map<string, PromFamily>, family: string, labels: Record<string, string> = {}): { buckets: [number, number][]; sum: number; count: number } {
  const f = families.get(family);
  if (!f || f.type !== 'histogram') throw new Error(`no histogram family ${family}`);
  const match = (s: PromSample) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const buckets = f.samples.filter((s) => s.name === `${family}_bucket` && match(s)).map((s) => [parseValue(s.labels.le, 'le'), s.value] as [number, number]);
  const one = (suffix: string) => {
    const hits = f.samples.filter((s) => s.name === `${family}${suffix}` && match(s));
    if (hits.length !== 1) throw new Error(`${family}${suffix}${JSON.stringify(labels)}: ${hits.length} samples match`);
    return hits[0].value;
  };
  return { buckets, sum: one('_sum'), count: one('_count') };
}

/** The one sample of `family` whose labels include `labels` (throws if none or several match). */
export function sampleValue(families: Map<string, PromFamily>, family: string, labels: Record<string, string> = {}): number {
  const f = families.get(family);
  if (!f) throw new Error(`no metric family ${family}; families: ${[...families.keys()].join(', ')}`);
  const hits = f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${family}${JSON.stringify(labels)}: ${hits.length} samples match`);
  return hits[0].value;
}
