// --log-format pretty: one compact line per record for a human at a terminal, made from the
// JSON line pino built (so both formats carry the same fields), without another dependency:
//   12:03:04.567 INFO  worker 1  client connected clientId=c1 username=alice address=127.0.0.1:5152
// An error's stack follows on indented lines, as Node prints it.
const SKIP = new Set(['level', 'time', 'msg', 'thread', 'pid', 'hostname']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function prettyLine(json: string): string {
  let r: Record<string, unknown>;
  try { r = JSON.parse(json) as Record<string, unknown>; } catch { return json; }
  const time = typeof r.time === 'string' ? r.time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const level = String(r.level ?? '').toUpperCase().padEnd(5);
  const parts = [time, level, String(r.thread ?? '-').padEnd(11), String(r.msg ?? '')];
  let stack = '';
  for (const [k, v] of Object.entries(r)) {
    if (SKIP.has(k)) continue;
    if (k === 'err' && v && typeof v === 'object' && typeof (v as { stack?: unknown }).stack === 'string') {
      const e = v as { message?: string; stack: string };
      parts.push(`err=${value(e.message ?? '')}`);
      stack = '\n' + e.stack.split('\n').slice(1).join('\n');
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  return parts.join(' ') + stack + '\n';
}
