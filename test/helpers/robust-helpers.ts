// Helpers for the robustness / operations integration tests (test/integration/1*-*.test.ts).
//
// - launch(): spawns bin/fleetmq.js with exactly the arguments given (no implicit --port/--workers,
//   so CLI and config tests control everything), waits for the listening line, and never leaks
//   the process: a failed start kills it, and every broker still running when the test process
//   exits is SIGKILLed.
// - runCli(): runs the CLI to completion with a bounded wait (for --help and bad-flag cases).
// - RawClient: a raw TCP MQTT connection driven by mqtt-packet, for byte-level tests.
// - FrameCounter: a streaming MQTT frame counter cheap enough for a million PUBLISH frames.
// - /proc readers (RSS, threads, open fds) and a seeded PRNG.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqttPacket from 'mqtt-packet';
import { BIN, BrokerHandle, launchWatched } from './broker';

export { BIN };


// Every broker this file started and that has not exited yet: killed when the test process exits,
// so a failing or timed-out test never leaves a broker behind.
const live = new Set<ChildProcess>();
const killLive = () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* already gone */ } } };
process.on('exit', killLive);
// A test process stopped by a signal (a runner's timeout, ^C) does not run 'exit' handlers:
// kill the brokers first, then die of the same signal.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => { killLive(); process.kill(process.pid, sig); });
}

export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  /** Bound on the wait for the listening line (default 20 s). */
  ms?: number;
}

export interface Broker extends BrokerHandle {
  /** True while the broker process has not exited. */
  alive(): boolean;
  /** Resolves with the exit code / signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits (bounded) for the process to exit without signalling it; rejects with the output if it does not. */
  waitExit(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and waits (bounded) for the exit; rejects with the output if it does not exit. */
  signalAndWait(sig: NodeJS.Signals, ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns the broker with `args`, resolves once it prints `fleetmq listening on HOST:PORT`.
 * Each broker gets its own fresh `--data-dir` (removed when it exits) unless `args` names one:
 * the default store (./data) is a single-owner lock, shared by every broker started in the
 * same directory, so tests running side by side would otherwise refuse each other.
 */
export async function launch(args: string[], opts: LaunchOptions = {}): Promise<Broker> {
  const ownDir = !args.some((a) => a === '--data-dir' || a.startsWith('--data-dir='));
  const dataDir = ownDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-robust-')) : undefined;
  const fullArgs = dataDir ? [...args, '--data-dir', dataDir] : args;
  const b = await launchWatched(fullArgs, { env: opts.env, ms: opts.ms ?? 20000 }, (proc) => {
    live.add(proc);
    proc.on('exit', () => live.delete(proc));
    if (dataDir) proc.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  });
  return { ...b, waitExit: (ms = 20000) => b.waitExit(ms, 'waiting') };
}

/** The usual test broker: loopback, any free port, N workers, plus extra flags. */
export function launchBroker(workers: number, extra: string[] = [], opts: LaunchOptions = {}): Promise<Broker> {
  return launch(['--port', '0', '--host', '127.0.0.1', '--workers', String(workers), ...extra], opts);
}

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the CLI and waits (bounded) for it to exit on its own; a CLI still running after `ms` is killed and reported. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; ms?: number } = {}): Promise<CliResult> {
  const ms = opts.ms ?? 15000;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`fleetmq ${args.join(' ')} still running after ${ms} ms (expected it to exit); stdout: ${JSON.stringify(stdout)} stderr: ${JSON.stringify(stderr)}`));
    }, ms);
    proc.on('close', (code, signal) => { clearTimeout(timer); live.delete(proc); resolve({ code, signal, stdout, stderr }); });
  });
}

// ---------------------------------------------------------------------------------------------
// Raw MQTT connections

export type Packet = mqttPacket.Packet;

/**
 * One raw TCP connection with an mqtt-packet parser on the read side. Records every packet
 * received and whether / when the broker closed the connection.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  /** Set when the read side failed to parse what the broker sent (a broker bug worth reporting). */
  parseError: Error | undefined;
  readonly closedP: Promise<void>;
  /** Acknowledge incoming QoS 1/2 PUBLISHes (PUBACK / PUBREC, PUBREL -> PUBCOMP) like a well-behaved client. */
  autoAck = true;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket, readonly protocolVersion: 3 | 4 | 5) {
    const parser = mqttPacket.parser({ protocolVersion });
    parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      if (this.autoAck) this.ack(p);
      this.wake();
    });
    parser.on('error', (e: Error) => { this.parseError ??= e; this.wake(); });
    socket.on('data', (d: Buffer) => { parser.parse(d); });
    socket.on('error', () => { /* ECONNRESET etc.: 'close' follows */ });
    this.closedP = new Promise((resolve) => socket.on('close', () => { this.closed = true; this.wake(); resolve(); }));
  }

  static connect(port: number, protocolVersion: 3 | 4 | 5 = 4, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => { s.removeListener('error', reject); resolve(new RawClient(s, protocolVersion)); });
      s.once('error', reject);
    });
  }

  private ack(p: Packet): void {
    if (this.socket.destroyed) return;
    if (p.cmd === 'publish' && p.qos === 1) this.send({ cmd: 'puback', messageId: p.messageId! });
    else if (p.cmd === 'publish' && p.qos === 2) this.send({ cmd: 'pubrec', messageId: p.messageId! });
    else if (p.cmd === 'pubrel') this.send({ cmd: 'pubcomp', messageId: p.messageId! });
  }

  /** PUBLISHes received so far (optionally only those on `topic`). */
  publishes(topic?: string): mqttPacket.IPublishPacket[] {
    return this.packets.filter((p) => p.cmd === 'publish' && (topic === undefined || p.topic === topic)) as mqttPacket.IPublishPacket[];
  }

  private wake(): void { for (const w of this.waiters.slice()) w(); }

  send(p: Packet): boolean { return this.socket.write(mqttPacket.generate(p, { protocolVersion: this.protocolVersion })); }
  write(b: Buffer): boolean { return this.socket.write(b); }

  /** Waits (bounded) until a received packet satisfies `pred`; rejects with `what` on timeout or close. */
  waitFor<T extends Packet = Packet>(pred: (p: Packet) => boolean, what: string, ms = 10000, from = 0): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.packets.length; i++) {
          if (pred(this.packets[i])) { cleanup(); resolve(this.packets[i] as T); return; }
        }
        if (this.closed) { cleanup(); reject(new Error(`connection closed while waiting for ${what}; received: ${summarize(this.packets)}`)); }
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${what} within ${ms} ms; received: ${summarize(this.packets)}`)); }, ms);
      const cleanup = () => { clearTimeout(timer); const i = this.waiters.indexOf(check); if (i >= 0) this.waiters.splice(i, 1); };
      this.waiters.push(check);
      check();
    });
  }

  /** Resolves true if the broker closed the connection within `ms`, false otherwise (never rejects). */
  waitClosed(ms = 10000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.closedP.then(() => { clearTimeout(timer); resolve(true); });
    });
  }

  /** CONNECT and wait for the CONNACK; returns it (whatever its code). */
  async handshake(opts: Partial<mqttPacket.IConnectPacket> = {}, ms = 10000): Promise<mqttPacket.IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.protocolVersion as 4 | 5, clean: true, keepalive: 0, clientId: '', ...opts } as mqttPacket.IConnectPacket);
    return this.waitFor<mqttPacket.IConnackPacket>((p) => p.cmd === 'connack', 'CONNACK', ms);
  }

  /** SUBSCRIBE and wait for the SUBACK. */
  async subscribe(topic: string, qos: 0 | 1 | 2 = 0, messageId = 1, ms = 10000): Promise<mqttPacket.ISubackPacket> {
    this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] } as mqttPacket.ISubscribePacket);
    return this.waitFor<mqttPacket.ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`, ms);
  }

  destroy(): void { this.socket.destroy(); }
}

/** Connects, CONNECTs and requires a successful CONNACK. */
export async function rawSession(port: number, protocolVersion: 4 | 5, connect: Partial<mqttPacket.IConnectPacket> = {}): Promise<RawClient> {
  const c = await RawClient.connect(port, protocolVersion);
  const ack = await c.handshake(connect);
  const code = protocolVersion === 5 ? ack.reasonCode : ack.returnCode;
  if (code !== 0) { c.destroy(); throw new Error(`CONNACK refused: ${JSON.stringify(ack)}`); }
  return c;
}

export function summarize(ps: Packet[], max = 8): string {
  const parts = ps.slice(-max).map((p) => {
    const rc = (p as { reasonCode?: number }).reasonCode;
    return rc === undefined ? p.cmd : `${p.cmd}(0x${rc.toString(16)})`;
  });
  return `${ps.length} packet(s)${ps.length > max ? ', last' : ''}: [${parts.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Streaming frame counter

/**
 * Counts complete MQTT frames in a byte stream without building packet objects, and hands each
 * PUBLISH to `onPublish(buf, start, end)` (the whole frame) so a caller can read its payload.
 * Fast enough for a million frames; tolerates frames split across reads.
 */
export class FrameCounter {
  frames = 0;
  publishes = 0;
  bytes = 0;
  private pending: Buffer | null = null;

  constructor(private readonly onPublish?: (buf: Buffer, headerByte: number, bodyStart: number, end: number) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let off = 0;
    const n = buf.length;
    while (off < n) {
      if (off + 2 > n) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let ok = false;
      for (let k = 0; k < 4 && i < n; k++, i++) {
        const b = buf[i];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { ok = true; i++; break; }
      }
      if (!ok) break; // varint incomplete
      const end = i + len;
      if (end > n) break;
      this.frames++;
      const h = buf[off];
      if ((h >> 4) === 3) {
        this.publishes++;
        if (this.onPublish) this.onPublish(buf, h, i, end);
      }
      off = end;
    }
    if (off < n) this.pending = Buffer.from(buf.subarray(off));
  }
}

// ---------------------------------------------------------------------------------------------
// /proc readers (Linux): the broker's threads all live in one process, `proc.pid`.

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

// ---------------------------------------------------------------------------------------------
// Small utilities

/** Seeded PRNG (mulberry32): the same seed gives the same sequence, so a fuzz failure reproduces. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  chance(p: number): boolean { return this.next() < p; }
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Polls `cond` every `every` ms until it is true; rejects with `what` (evaluated at the timeout) after `ms`. */
export async function waitUntil(cond: () => boolean, what: string | (() => string), ms = 10000, every = 20): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(every);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(runners);
  return out;
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

/** Races `p` against a timeout that rejects with `what`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try { return await Promise.race([p, t]); } finally { clearTimeout(timer); }
}

/** Output lines that mean something crashed: stack frames, uncaught errors, aborts, dead workers. */
export const CRASH_RE = /^\s+at .+:\d+:\d+\)?$|uncaught|unhandled|FATAL|Assertion failed|Segmentation fault|core dumped|Aborted|worker .*(died|exited|crashed)/im;

export function crashLines(output: string): string[] {
  return output.split('\n').filter((l) => CRASH_RE.test(l));
}
