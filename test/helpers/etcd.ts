// Starts real etcd servers (Debian's etcd-server, etcd 3.4) for tests: one member or three, on
// free loopback ports, data dirs on tmpfs (/dev/shm). Finds the leader, SIGKILLs a member, stops
// everything and removes the data dirs. No etcd binary = the test fails with how to install it.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort } from './broker';

export const INSTALL_HINT = 'install etcd-server (apt-get install etcd-server)';

/** Path of the etcd binary; throws (so the test fails, never skips) when it is missing. */
export function etcdBinary(): string {
  const forced = process.env.ETCD_BIN;
  if (forced) {
    if (fs.existsSync(forced)) return forced;
    throw new Error(`etcd binary not found at ETCD_BIN=${forced}: ${INSTALL_HINT}`);
  }
  for (const p of ['/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (fs.existsSync(p)) return p;
  }
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`etcd binary not found: ${INSTALL_HINT}`);
}

export { freePort };

// etcd processes still running when this process exits (a crashed test) are killed with it.
const liveEtcd = new Set<ChildProcess>();
process.on('exit', () => { for (const p of liveEtcd) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | null;
  /** Everything this member printed. */
  output(): string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs of the members still running. */
  endpoints(): string[];
  /** Name of the current leader as the running members see it (waits up to `ms`). */
  leader(ms?: number): Promise<EtcdMember>;
  /** SIGKILL one member and wait for its exit. */
  kill(member: EtcdMember): Promise<void>;
  /** SIGKILL all members still running, remove the data dirs. Safe to call twice. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function memberStatus(url: string): Promise<{ id: string; leader: string } | null> {
  const c = new Etcd3({ hosts: url, defaultCallOptions: () => ({ deadline: Date.now() + 500 }), dialTimeout: 500 });
  try {
    const st = await c.maintenance.status();
    return { id: String(st.header.member_id), leader: String(st.leader) };
  } catch {
    return null;
  } finally {
    c.close();
  }
}

/** Starts a cluster of `size` members (1 or 3) and waits until every member reports the same leader. */
export async function startEtcd(size = 1, opts: { readyMs?: number } = {}): Promise<EtcdCluster> {
  const bin = etcdBinary();
  const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fleetmq-etcd-'));
  const token = path.basename(base);
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const [c, p] = [await freePort(), await freePort()];
    const m: EtcdMember = {
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${c}`,
      peerUrl: `http://127.0.0.1:${p}`,
      dataDir: path.join(base, `m${i}`),
      proc: null,
      output: () => '',
    };
    members.push(m);
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const cluster: EtcdCluster = {
    members,
    endpoints: () => members.filter((m) => m.proc).map((m) => m.clientUrl),
    async leader(ms = 15000) {
      const end = Date.now() + ms;
      for (;;) {
        const live = members.filter((m) => m.proc);
        const st = await Promise.all(live.map((m) => memberStatus(m.clientUrl)));
        if (st.every((s) => s && s.leader !== '0') && new Set(st.map((s) => s!.leader)).size === 1) {
          const idx = st.findIndex((s) => s!.id === s!.leader);
          if (idx >= 0) return live[idx];
        }
        if (Date.now() > end) throw new Error(`etcd: no agreed leader after ${ms} ms: ${JSON.stringify(st)}`);
        await sleep(100);
      }
    },
    async kill(m) {
      const proc = m.proc;
      if (!proc) return;
      m.proc = null;
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      for (const m of members) await cluster.kill(m);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) {
      let out = '';
      const proc = spawn(bin, [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl,
        '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        '--logger', 'zap',
        '--log-level', 'warn',
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (d: Buffer) => { out += d.toString(); if (out.length > 200_000) out = out.slice(-100_000); };
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      liveEtcd.add(proc);
      proc.once('exit', () => { liveEtcd.delete(proc); if (m.proc === proc) m.proc = null; });
      m.proc = proc;
      m.output = () => out;
    }
    const end = Date.now() + (opts.readyMs ?? 20000);
    for (;;) {
      const dead = members.find((m) => !m.proc);
      if (dead) throw new Error(`etcd member ${dead.name} exited at start (port taken?):\n${dead.output().slice(-2000)}`);
      try {
        await cluster.leader(500);
        return cluster;
      } catch { /* not ready yet */ }
      if (Date.now() > end) throw new Error(`etcd cluster of ${size} not ready after ${opts.readyMs ?? 20000} ms:\n${members.map((m) => m.output().slice(-1000)).join('\n')}`);
      await sleep(100);
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** startEtcd with up to three tries: a free port can be taken by someone else before etcd binds it. */
export async function startEtcdRetrying(size = 1): Promise<EtcdCluster> {
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try { return await startEtcd(size); } catch (err) {
      last = err;
      if (err instanceof Error && err.message.includes(INSTALL_HINT)) throw err;
    }
  }
  throw last;
}
