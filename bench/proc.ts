// What the kernel says about a process: CPU time of all its threads and its resident memory.
// The headline figure divides deliveries by the broker's CPU seconds, so these numbers come
// from /proc, not from anything the broker reports about itself.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

let ticksPerSecond = 0;

function clockTicks(): number {
  if (ticksPerSecond === 0) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { ticksPerSecond = 100; }
  }
  return ticksPerSecond;
}

/** utime + stime of every thread of `pid`, in seconds (NaN once the process is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses; fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return NaN;
  }
}

/** utime and stime of every thread of `pid`, in seconds, apart (NaN once the process is gone). */
export function cpuSplit(pid: number): { user: number; sys: number } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / clockTicks(), sys: Number(fields[12]) / clockTicks() };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

let tasksetChecked: boolean | undefined;

export function hasTaskset(): boolean {
  if (tasksetChecked === undefined) {
    try { execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }); tasksetChecked = true; } catch { tasksetChecked = false; }
  }
  return tasksetChecked;
}

/** "0", "1-3", "0,2-4" → [0], [1,2,3], [0,2,3,4]. */
export function parseCpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a) || (b !== undefined && !Number.isInteger(b))) throw new Error(`bad CPU list '${s}'`);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

/** Pins every existing thread of this process; threads started later inherit the mask. */
export function pinSelf(cpus: readonly number[]): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(process.pid)], { stdio: 'ignore' });
}

/** Busy and total jiffies per CPU since boot, from /proc/stat (index = CPU number). */
export interface CpuJiffies { busy: number[]; total: number[] }

export function cpuJiffies(): CpuJiffies {
  const out: CpuJiffies = { busy: [], total: [] };
  try {
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal (guest time is already inside user).
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out.total[Number(m[1])] = total;
      out.busy[Number(m[1])] = total - v[3] - v[4];
    }
  } catch { /* not Linux: no contention figure */ }
  return out;
}

/** Busy share, in % of one CPU, of `cpus` between two readings. */
export function busyPct(a: CpuJiffies, b: CpuJiffies, cpus: readonly number[]): number {
  let busy = 0;
  let total = 0;
  for (const c of cpus) {
    busy += (b.busy[c] ?? 0) - (a.busy[c] ?? 0);
    total += (b.total[c] ?? 0) - (a.total[c] ?? 0);
  }
  return total > 0 ? (busy / total) * 100 * cpus.length : NaN;
}
