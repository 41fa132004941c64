// Reading a broker process from the outside: /proc counters (Linux; the broker's threads all
// live in one process, `proc.pid`) and the output lines that mean something crashed.
import * as fs from 'node:fs';

function statusField(pid: number, field: string): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = s.match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number { return statusField(pid, 'VmRSS') * 1024; }
/** Number of threads of the process. */
export function threadCount(pid: number): number { return statusField(pid, 'Threads'); }
/** Number of open file descriptors of the process. */
export function fdCount(pid: number): number { return fs.readdirSync(`/proc/${pid}/fd`).length; }

/** Output lines that mean something crashed: stack frames, uncaught errors, aborts, dead workers. */
// A stack inside a JSON log record (src/log/) is one line with its frames escaped: "\n    at f (file:1:2)".
export const CRASH_RE = /^\s+at .+:\d+:\d+\)?$|\\n\s+at .+:\d+:\d+\)?|uncaught|unhandled|FATAL|Assertion failed|Segmentation fault|core dumped|Aborted|worker .*(died|exited|crashed)/im;

export function crashLines(output: string): string[] {
  return output.split('\n').filter((l) => CRASH_RE.test(l));
}
