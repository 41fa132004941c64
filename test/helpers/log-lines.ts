// The broker's log as records: its stdout is JSON lines (src/log/), one object per line. Lines
// that are not JSON (a startup error on stderr, a pretty-format line) are kept apart so a test
// can assert there are none, or look at them.
export type LogRecord = Record<string, unknown> & { level: string; msg: string; thread: string };

export interface ParsedLog { records: LogRecord[]; other: string[] }

export function parseLog(output: string): ParsedLog {
  const records: LogRecord[] = [];
  const other: string[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('{')) {
      try {
        const r = JSON.parse(line) as LogRecord;
        if (typeof r === 'object' && r !== null && typeof r.level === 'string' && typeof r.msg === 'string') { records.push(r); continue; }
      } catch { /* not a record */ }
    }
    other.push(line);
  }
  return { records, other };
}

export function logRecords(output: string): LogRecord[] { return parseLog(output).records; }

/** The records whose fields include every one of `fields` (a RegExp matches a string field). */
export function findRecords(output: string, fields: Record<string, unknown>): LogRecord[] {
  return logRecords(output).filter((r) => Object.entries(fields).every(([k, v]) =>
    v instanceof RegExp ? typeof r[k] === 'string' && v.test(r[k] as string) : r[k] === v));
}
