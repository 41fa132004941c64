// Launching the real broker (bin/fleetmq.js) as a child process, and running its CLI.
//
// - launch(): spawns the broker with the arguments given, waits for its listening line and hands
//   back its port (tests take port 0, never a fixed one). A fresh --data-dir is added unless the
//   arguments name one or `ownDataDir: false` asks for exactly the arguments given, and
//   `--http-port 0` unless they name one (the default, 9883, is fixed: brokers side by side
//   would refuse each other).
// - launchBroker(): the usual test broker: loopback, any free port, N workers, plus extra flags.
// - runCli(): runs the CLI to completion with a bounded wait (--help, bad flags, corrupt stores).
// - makeTempDir()/removeDir(): scratch directories.
//
// Nothing outlives the test process: every broker still running and every scratch directory
// still present when it exits (or is stopped by a signal) is killed / deleted. Every wait is
// bounded and fails with a message naming what was awaited, with the broker's output.
import { spawn, ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import { BIN } from './paths';
import { Wakeups } from './wait';

export const LISTEN_RE = /fleetmq listening on ([^\s:]+):(\d+)/;
/** The operations HTTP listener's startup line (printed before LISTEN_RE, while the store loads). */
export const HTTP_LISTEN_RE = /fleetmq: http endpoints at http:\/\/(\[[^\]]+\]|[^\s:/]+):(\d+)/;

// ---------------------------------------------------------------------------------------------
// Processes and directories that must not outlive the test process

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const cleanupAll = () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* already gone */ } }
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
};
process.on('exit', cleanupAll);
// A test process stopped by a signal (a runner's timeout, ^C) does not run 'exit' handlers:
// clean up first, then die of the same signal. (Not SIGPIPE: a handler for it would turn every
// write to a socket the broker closed into an exit.)
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => { cleanupAll(); process.kill(process.pid, sig); });
}

function track(proc: ChildProcess): void {
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
}

/** A fresh empty directory under os.tmpdir(), deleted by removeDir() or at process exit. */
export function makeTempDir(prefix = 'fleetmq-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function removeDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

/** A TCP port that was free a moment ago (for tests that must name a port themselves). */
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

// ---------------------------------------------------------------------------------------------
// A broker process

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

/** What a test needs of a running broker: its address, its output, and ways to end it. */
export interface BrokerHandle {
  port: number;
  host: string;
  proc: ChildProcess;
  /** Everything the broker printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM and wait (bounded; SIGKILL if it does not exit); resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Resolves when the output matches `re` (rejects after `ms`, default 20 s). */
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

/** A launched broker with bounded waits on its exit. */
export interface Broker extends BrokerHandle {
  /** True while the broker process has not exited. */
  alive(): boolean;
  /** Resolves with the exit code / signal once the process has exited. */
  exited: Promise<Exit>;
  /** Waits (bounded) for the process to exit without signalling it; rejects with the output if it does not. */
  waitExit(ms?: number, what?: string): Promise<Exit>;
  /** Sends a signal and waits (bounded) for the exit; rejects with the output if it does not exit. */
  signalAndWait(sig: NodeJS.Signals, ms?: number): Promise<Exit>;
}

/** A broker process's output and exit, with bounded waits on both. */
export interface Watched {
  output(): string;
  alive(): boolean;
  exited: Promise<Exit>;
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  waitExit(ms?: number, what?: string): Promise<Exit>;
}

export function watchBroker(proc: ChildProcess): Watched {
  let out = '';
  let done = false;
  const events = new Wakeups();
  const onData = (d: Buffer) => { out += d.toString(); events.wake(); };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<Exit>((resolve) => proc.on('exit', (code, signal) => { done = true; events.wake(); resolve({ code, signal }); }));
  const waitForOutput = async (re: RegExp, ms = 20000): Promise<RegExpMatchArray> => {
    await events.until(() => out.match(re) !== null || done, ms);
    const m = out.match(re);
    if (m) return m;
    if (done) throw new Error(`broker exited before printing ${re}; output:\n${out}`);
    throw new Error(`broker did not print ${re} within ${ms} ms; output:\n${out}`);
  };
  const waitExit = async (ms = 20000, what = 'waiting') => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`broker did not exit within ${ms} ms (${what}); output:\n${out}`)), ms);
    });
    try { return await Promise.race([exited, timeout]); } finally { clearTimeout(timer); }
  };
  return { output: () => out, alive: () => !done, exited, waitForOutput, waitExit };
}

export interface LaunchOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Bound on the wait for the listening line (default 30 s). */
  ms?: number;
  /**
   * Add a fresh --data-dir (removed when the broker exits) unless `args` names one (default
   * true): the default store (./data) is a single-owner lock, shared by every broker started in
   * the same directory, so tests running side by side would otherwise refuse each other. False:
   * exactly `args` (a test about what the broker does without the flag).
   */
  ownDataDir?: boolean;
}

/**
 * Spawns bin/fleetmq.js with `args` and resolves once it prints `fleetmq listening on HOST:PORT`
 * (a broker that fails to start is killed, never left behind).
 */
export async function launch(args: string[], opts: LaunchOptions = {}): Promise<Broker> {
  const named = args.some((a) => a === '--data-dir' || a.startsWith('--data-dir='));
  const dataDir = (opts.ownDataDir ?? true) && !named ? makeTempDir('fleetmq-broker-') : undefined;
  const httpNamed = args.some((a) => a === '--http-port' || a.startsWith('--http-port='));
  // A cluster member's peer server binds --cluster-port (default 7883): a free one unless named.
  const clusterPort = args.includes('--etcd') && !args.some((a) => a === '--cluster-port' || a.startsWith('--cluster-port=')) ? ['--cluster-port', '0'] : [];
  const fullArgs = [...args, ...(dataDir ? ['--data-dir', dataDir] : []), ...(httpNamed ? [] : ['--http-port', '0']), ...clusterPort];
  const proc = spawn(process.execPath, [BIN, ...fullArgs], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  track(proc);
  if (dataDir) proc.on('exit', () => removeDir(dataDir));
  const w = watchBroker(proc);
  let m: RegExpMatchArray;
  try {
    m = await w.waitForOutput(LISTEN_RE, opts.ms ?? 30000);
  } catch (err) {
    if (w.alive()) proc.kill('SIGKILL');
    await w.exited;
    throw err;
  }
  const signalAndWait = async (sig: NodeJS.Signals, ms = 30000) => {
    if (w.alive()) proc.kill(sig);
    return w.waitExit(ms, `after ${sig}`);
  };
  return {
    port: Number(m[2]),
    host: m[1],
    proc,
    output: w.output,
    waitForOutput: w.waitForOutput,
    alive: w.alive,
    exited: w.exited,
    waitExit: w.waitExit,
    signalAndWait,
    async stop() {
      // Bounded: a broker that ignores SIGTERM is killed so it does not outlive the test.
      try { return (await signalAndWait('SIGTERM')).code; } catch (err) { proc.kill('SIGKILL'); await w.exited; throw err; }
    },
    async kill() {
      if (w.alive()) proc.kill('SIGKILL');
      await w.exited;
    },
  };
}

/** The usual test broker: loopback, any free port, N workers, plus extra flags. */
export function launchBroker(workers: number, extra: string[] = [], opts: LaunchOptions = {}): Promise<Broker> {
  return launch(['--port', '0', '--host', '127.0.0.1', '--workers', String(workers), ...extra], opts);
}

export interface CliResult extends Exit { stdout: string; stderr: string; listened: boolean }

/**
 * Runs the CLI and waits (bounded, default 30 s) for it to exit on its own. A CLI that starts
 * listening instead is SIGKILLed at once and reported with `listened: true`, and one still
 * running after `ms` is killed and reported (so "should have refused to start" cases fail with
 * a message, not a hang).
 */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; ms?: number } = {}): Promise<CliResult> {
  const ms = opts.ms ?? 30000;
  // As launch(): a broker run here binds its HTTP listener (before the store opens) on a free
  // port, never the fixed default; `passwd` takes no broker flags.
  const httpNamed = args[0] === 'passwd' || args.some((a) => a === '--http-port' || a.startsWith('--http-port='));
  // In front: a test may end with a flag that lacks its value on purpose.
  const clusterPort = args.includes('--etcd') && !args.some((a) => a === '--cluster-port' || a.startsWith('--cluster-port=')) ? ['--cluster-port', '0'] : [];
  const fullArgs = [...(httpNamed ? [] : ['--http-port', '0']), ...clusterPort, ...args];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...fullArgs], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    track(proc);
    let stdout = '';
    let stderr = '';
    let listened = false;
    proc.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!listened && LISTEN_RE.test(stdout)) { listened = true; proc.kill('SIGKILL'); }
    });
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`fleetmq ${args.join(' ')} still running after ${ms} ms (expected it to exit); stdout: ${JSON.stringify(stdout)} stderr: ${JSON.stringify(stderr)}`));
    }, ms);
    proc.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, listened }); });
  });
}
