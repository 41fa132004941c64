// Starts a broker as a child process (pinned with taskset when asked), waits until it accepts
// connections, and stops it again. Only the child's own pid is ever signalled.
import * as fs from 'node:fs';
import { spawn, ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { hasTaskset } from '../proc';

export interface BrokerProcess {
  name: string;
  pid: number;
  host: string;
  port: number;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  cpus: number[] | null;
  timeoutMs: number;
}

/** The first error line a crashed broker printed (a stack's last frames say little), plus its last line. */
export function excerpt(out: string): string {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => /error|exception|abort|fatal/i.test(l) && !/^at /.test(l));
  const last = lines[lines.length - 1] ?? '';
  return [first, last].filter((l, i, a) => l && a.indexOf(l) === i).join(' … ').slice(0, 300);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  /** Port known in advance (wait until it accepts), or a pattern in the output naming it. */
  port?: number;
  ready?: RegExp;
}

export async function launch(spec: SpawnSpec, opts: LaunchOptions): Promise<BrokerProcess> {
  const pinned = opts.cpus !== null && opts.cpus.length > 0 && hasTaskset();
  // taskset execs the broker, so the child's pid is the broker's own.
  const [cmd, args] = pinned ? ['taskset', ['-c', opts.cpus!.join(','), spec.command, ...spec.args]] : [spec.command, spec.args];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  const onExit = new Promise<void>((r) => child.once('exit', () => { exited = true; r(); }));
  child.stdout!.on('data', (d: Buffer) => { if (out.length < 65536) out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { if (out.length < 65536) out += d.toString(); });
  // BENCH_BROKER_LOG=FILE keeps all the broker's output (e.g. with FLEETMQ_NODE_ARGS=--trace-gc).
  if (process.env.BENCH_BROKER_LOG) {
    const log = fs.createWriteStream(process.env.BENCH_BROKER_LOG, { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
  }
  child.once('error', (err) => { out += `\nspawn error: ${err.message}`; exited = true; });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([onExit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    if (!killed && !exited) { child.kill('SIGKILL'); await Promise.race([onExit, new Promise((r) => setTimeout(r, 2000))]); }
  };
  const deadline = Date.now() + opts.timeoutMs;
  let port = spec.port ?? 0;
  let host = '127.0.0.1';
  while (Date.now() < deadline && !exited) {
    if (spec.ready) {
      const m = spec.ready.exec(out);
      if (m) { host = m[1]; port = Number(m[2]); break; }
    } else if (await canConnect(host, port)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = port > 0 && !exited && (spec.ready ? true : await canConnect(host, port));
  if (!ready) {
    await stop();
    const why = exited ? 'exited during start-up' : `did not start within ${opts.timeoutMs} ms`;
    throw new Error(`${spec.name} ${why}: ${excerpt(out)}`);
  }
  return { name: spec.name, pid: child.pid!, host, port, output: () => out, exited: () => exited, stop };
}
