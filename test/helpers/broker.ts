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

const LISTEN_RE = /fleetmq listening on ([^\s:]+):(\d+)/;

export async function startBroker(opts: StartOptions = {}): Promise<BrokerHandle> {
  // Each broker gets its own store in a temp dir (removed when it exits) unless the test names one.
  const own = opts.args?.includes('--data-dir') ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-test-'));
  const args = [BIN, '--port', '0', '--host', '127.0.0.1', '--workers', String(opts.workers ?? 1), ...(own ? ['--data-dir', own] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => { out += d.toString(); for (const w of waiters.slice()) w(); };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => { for (const w of waiters.slice()) w(); resolve(code); }));
  let done = false;
  exited.then(() => { done = true; if (own) fs.rmSync(own, { recursive: true, force: true }); });

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

  const m = await waitForOutput(LISTEN_RE);
  return {
    port: Number(m[2]),
    host: m[1],
    proc,
    output: () => out,
    waitForOutput,
    async stop() {
      if (!done) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
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
