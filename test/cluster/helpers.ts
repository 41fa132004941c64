// Shared by the cluster tests: in-process members that record every event with a monotonic
// timestamp, member processes (fixtures/member.js), and a bounded poll.
import { spawn, ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3Client } from '../../src/cluster/etcd-client';
import { Membership, MembershipOptions, ClusterView, FencedEvent, JoinedEvent } from '../../src/cluster/membership';

export const now = () => performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms; rejects naming `what` after `ms`. */
export async function waitFor<T>(what: string, ms: number, cond: () => T | undefined | null | false): Promise<T> {
  const end = now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface Recorded {
  m: Membership;
  client: Etcd3Client;
  views: Array<{ at: number; view: ClusterView }>;
  fenced: FencedEvent[];
  joined: JoinedEvent[];
  logs: string[];
  /** Ids in the latest view. */
  ids(): string[];
  /** Monotonic time of the first view after `after` in which `nodeId` is absent (or present). */
  firstViewAt(after: number, nodeId: string, present: boolean): number | undefined;
  close(): Promise<void>;
}

export function member(endpoints: string[], nodeId: string, extra: Partial<MembershipOptions> = {}): Recorded {
  const client = new Etcd3Client({ endpoints });
  const m = new Membership({
    client, cluster: extra.cluster ?? 'test', nodeId, advertise: '127.0.0.1', clusterPort: 7000, ttlSec: 2, ...extra,
    log: (l) => r.logs.push(`${Math.round(now())} ${nodeId}: ${l}`),
  });
  const r: Recorded = {
    m, client, views: [], fenced: [], joined: [], logs: [],
    ids: () => m.view().members.map((x) => x.nodeId),
    firstViewAt(after, id, present) {
      const v = r.views.find((x) => x.at > after && x.view.members.some((y) => y.nodeId === id) === present);
      return v?.at;
    },
    async close() { await m.leave(); client.close(); },
  };
  m.on('view', (view: ClusterView) => r.views.push({ at: now(), view }));
  m.on('fenced', (e: FencedEvent) => r.fenced.push(e));
  m.on('joined', (e: JoinedEvent) => r.joined.push(e));
  return r;
}

export const FIXTURE = path.join(__dirname, 'fixtures', 'member.js');

export interface MemberProc {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal) within `ms`. */
  exit(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  kill(): Promise<void>;
}

// Member processes still running when this process exits (a crashed test) are killed with it.
const liveMembers = new Set<ChildProcess>();
process.on('exit', () => { for (const p of liveMembers) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export function spawnMember(cfg: Record<string, unknown>): MemberProc {
  const proc = spawn(process.execPath, [FIXTURE, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveMembers.add(proc);
  proc.once('exit', () => liveMembers.delete(proc));
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, at: now() })));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exit: (ms) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`member process still running after ${ms} ms; stderr:\n${err}`)), ms);
      void exited.then((e) => { clearTimeout(t); resolve(e); });
    }),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited; }
    },
  };
}
