// Starts the real broker as a child process on a free port (port 0) and hands tests its port.
// Every integration test goes through this, so a test never depends on a fixed port or timing.
import { spawn, ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as mqtt from 'mqtt';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'fleetmq.js');

export interface BrokerHandle {
  port: number;
  host: string;
  proc: ChildProcess;
  /** Everything the broker printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Resolves when the output matches `re` (rejects after `ms`, default 20 s). */
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

export interface StartOptions {
  workers?: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

export const LISTEN_RE = /fleetmq listening on ([^\s:]+):(\d+)/;

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

/** A broker process's output and exit, with bounded waits on both; every launcher shares it. */
export interface Watched {
  output(): string;
  alive(): boolean;
  exited: Promise<Exit>;
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  waitExit(ms: number, what: string): Promise<Exit>;
}

export function watchBroker(proc: ChildProcess): Watched {
  let out = '';
  let done = false;
  const waiters: Array<() => void> = [];
  const wake = () => { for (const w of waiters.slice()) w(); };
  const onData = (d: Buffer) => { out += d.toString(); wake(); };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<Exit>((resolve) => proc.on('exit', (code, signal) => { done = true; wake(); resolve({ code, signal }); }));
  const waitForOutput = (re: RegExp, ms = 20000) => new Promise<RegExpMatchArray>((resolve, reject) => {
    const check = () => {
      const m = out.match(re);
      if (m) { cleanup(); resolve(m); return; }
      if (done) { cleanup(); reject(new Error(`broker exited before printing ${re}; output:\n${out}`)); }
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`broker did not print ${re} within ${ms} ms; output:\n${out}`)); }, ms);
    const cleanup = () => { clearTimeout(timer); const i = waiters.indexOf(check); if (i >= 0) waiters.splice(i, 1); };
    waiters.push(check);
    check();
  });
  const waitExit = async (ms: number, what: string) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`broker did not exit within ${ms} ms (${what}); output:\n${out}`)), ms);
    });
    try { return await Promise.race([exited, timeout]); } finally { clearTimeout(timer); }
  };
  return { output: () => out, alive: () => !done, exited, waitForOutput, waitExit };
}

/** A launched broker with bounded waits on its exit (the persistence and robustness suites' shape). */
export interface LaunchedBroker extends BrokerHandle {
  alive(): boolean;
  exited: Promise<Exit>;
  waitExit(ms: number, what: string): Promise<Exit>;
  /** Sends a signal and waits (bounded) for the exit; rejects with the output if it does not exit. */
  signalAndWait(sig: NodeJS.Signals, ms?: number): Promise<Exit>;
}

/**
 * Spawns bin/fleetmq.js with exactly `args` and resolves once it prints its listening line (a
 * broker that fails to start is killed, never left behind). `onSpawn` lets a suite track the
 * process for its own cleanup.
 */
export async function launchWatched(
  args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; ms?: number } = {}, onSpawn?: (proc: ChildProcess) => void,
): Promise<LaunchedBroker> {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  onSpawn?.(proc);
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

export async function startBroker(opts: StartOptions = {}): Promise<BrokerHandle> {
  // Each broker gets its own store in a temp dir (removed when it exits) unless the test names one.
  const own = opts.args?.includes('--data-dir') ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-test-'));
  const args = ['--port', '0', '--host', '127.0.0.1', '--workers', String(opts.workers ?? 1), ...(own ? ['--data-dir', own] : []), ...(opts.args ?? [])];
  return launchWatched(args, { env: opts.env, ms: 20000 }, (proc) => {
    if (own) proc.on('exit', () => fs.rmSync(own, { recursive: true, force: true }));
  });
}

/** Connects the real `mqtt` client; rejects on connect error. */
export function connectClient(broker: BrokerHandle, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: '127.0.0.1', port: broker.port, reconnectPeriod: 0, connectTimeout: 10000, ...opts });
    const onErr = (err: Error) => { client.end(true); reject(err); };
    client.once('connect', () => { client.removeListener('error', onErr); resolve(client); });
    client.once('error', onErr);
  });
}

export function endClient(client: mqtt.MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}

/** A raw TCP connection for byte-level tests. */
export function rawConnect(broker: BrokerHandle): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(broker.port, '127.0.0.1', () => { s.removeListener('error', reject); resolve(s); });
    s.once('error', reject);
  });
}
