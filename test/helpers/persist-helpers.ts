// Helpers for the broker-level persistence suite (test/integration/2*-*.test.ts, issue 4).
//
// - Deployment: one data directory (fresh, under os.tmpdir()) and the broker processes started
//   on it one after the other: start(), down('SIGTERM' | 'SIGKILL'), restart(). Each start gets
//   a new port (read from the "listening" line). dispose() kills what is still running and
//   deletes the directory; anything left when the test process exits is killed / deleted too.
// - runCli(): runs the CLI to completion (bad flags, corrupt stores).
// - Clients: tracks every mqtt.js / raw client a test opens so a failing test closes them all.
// - persistentOpts(): mqtt.js options for a session that outlives its connection, per version.
// - StreamLog / QoS 1 and QoS 2 stream publishers and the checker used by the crash test.
//
// Nothing here sleeps for a fixed time to wait for the broker: every wait is bounded and fails
// with a message naming what was awaited.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { BIN, BrokerHandle, LISTEN_RE, launchWatched } from './broker';
import { Inbox, RawClient, WAIT_MS, until, Version, connectPacket } from './mqtt-helpers';

export type Durability = 'none' | 'process' | 'fsync';
export type Down = 'SIGTERM' | 'SIGKILL';

// ---------------------------------------------------------------------------------------------
// Processes and directories that must not outlive the test process

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const cleanupAll = () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
};
process.on('exit', cleanupAll);
// A test process interrupted (Ctrl-C, a runner's timeout) cleans up too. (Not SIGPIPE: a handler
// for it would turn every write to a socket the broker closed into an exit.)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => { cleanupAll(); process.exit(128 + (os.constants.signals[sig] ?? 0)); });
}

/** A fresh empty directory under os.tmpdir(), deleted by removeDir() or at process exit. */
export function makeTempDir(prefix = 'fleetmq-persist-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function removeDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}


export interface Proc extends BrokerHandle {
  alive(): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns bin/fleetmq.js with exactly `args`; resolves once it prints its listening line. */
export function launch(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; ms?: number } = {}): Promise<Proc> {
  return launchWatched(args, opts, (proc) => { live.add(proc); proc.on('exit', () => live.delete(proc)); });
}

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; listened: boolean }

/**
 * Runs the CLI and waits (bounded) for it to exit on its own. A CLI that starts listening instead
 * is SIGKILLed at once and reported with `listened: true` (so "should have refused to start"
 * cases fail with a message, not a hang).
 */
export function runCli(args: string[], opts: { cwd?: string; ms?: number } = {}): Promise<CliResult> {
  const ms = opts.ms ?? 30000;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
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
    proc.on('close', (code, signal) => { clearTimeout(timer); live.delete(proc); resolve({ code, signal, stdout, stderr, listened }); });
  });
}

// ---------------------------------------------------------------------------------------------
// A data directory and the brokers started on it

export interface DeploymentOptions {
  durability?: Durability;
  /** Extra broker flags (e.g. --max-inflight). */
  args?: string[];
  /** Extra environment (e.g. FLEETMQ_TEST_HOOKS=1). */
  env?: NodeJS.ProcessEnv;
}

export class Deployment {
  readonly dir: string;
  broker: Proc | undefined;
  private outputs: string[] = [];

  constructor(readonly workers: number, readonly opts: DeploymentOptions = {}) {
    this.dir = makeTempDir();
  }

  args(): string[] {
    return ['--port', '0', '--host', '127.0.0.1', '--workers', String(this.workers),
      '--data-dir', this.dir, '--durability', this.opts.durability ?? 'process', ...(this.opts.args ?? [])];
  }

  /** The running broker (throws if none). */
  get b(): Proc {
    if (!this.broker || !this.broker.alive()) {
      throw new Error(`broker is not running; output so far:\n${this.history()}`);
    }
    return this.broker;
  }

  get port(): number { return this.b.port; }

  async start(): Promise<Proc> {
    if (this.broker?.alive()) throw new Error('start(): a broker is still running on this data dir');
    try {
      this.broker = await launch(this.args(), { env: this.opts.env });
    } catch (err) {
      const msg = (err as Error).message;
      const hint = /unknown option "--(data-dir|durability)"/.test(msg)
        ? '\n(the broker rejects the persistence flags: issue 4 is not wired into the CLI yet)' : '';
      throw new Error(`broker start #${this.outputs.length + 1} on ${this.dir} failed: ${msg}${hint}`);
    }
    this.outputs.push('');
    return this.broker;
  }

  /** Takes the running broker down: SIGTERM (clean shutdown, bounded) or SIGKILL. */
  async down(how: Down): Promise<void> {
    const b = this.b;
    if (how === 'SIGKILL') await b.kill(); else await b.stop();
    this.outputs[this.outputs.length - 1] = b.output();
  }

  async restart(how: Down): Promise<Proc> {
    await this.down(how);
    return this.start();
  }

  /** Everything every broker on this data dir printed, start by start. */
  history(): string {
    const cur = this.broker ? this.broker.output() : '';
    const outs = this.outputs.slice();
    if (outs.length) outs[outs.length - 1] = cur;
    return outs.map((o, i) => `--- start #${i + 1} ---\n${o.slice(-3000)}`).join('\n');
  }

  async dispose(): Promise<void> {
    if (this.broker?.alive()) await this.broker.kill();
    removeDir(this.dir);
  }
}

/** Runs `body` with a fresh deployment and always disposes it (and the test's clients). */
export async function withDeployment(workers: number, opts: DeploymentOptions, body: (d: Deployment, c: Clients) => Promise<void>): Promise<void> {
  const d = new Deployment(workers, opts);
  const c = new Clients();
  try {
    await body(d, c);
  } catch (err) {
    const e = err as Error;
    // Failures carry the broker's output, which usually tells why.
    e.message = `${e.message}\n[data dir ${d.dir}, broker output]\n${d.history()}`;
    throw e;
  } finally {
    await c.closeAll();
    await d.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

export interface Conn {
  client: mqtt.MqttClient;
  connack: mqttPacket.IConnackPacket;
  inbox: Inbox;
}

export class Clients {
  private mq = new Set<mqtt.MqttClient>();
  private raws = new Set<RawClient>();

  /** An mqtt.js client (reconnect off), with its CONNACK and an Inbox (and `setup`'s listeners) attached before CONNECT. */
  async mqtt(port: number, opts: mqtt.IClientOptions, setup?: (client: mqtt.MqttClient) => void): Promise<Conn> {
    const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...opts });
    this.mq.add(client);
    // Listeners go on before CONNECT: queued messages can arrive in the same read as the CONNACK.
    const inbox = new Inbox(client);
    setup?.(client);
    const connack = await new Promise<mqttPacket.IConnackPacket>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no CONNACK within ${WAIT_MS} ms for ${opts.clientId ?? 'client'}`)), WAIT_MS);
      client.once('connect', (p) => { clearTimeout(t); resolve(p as mqttPacket.IConnackPacket); });
      client.once('error', (err) => { clearTimeout(t); reject(new Error(`${opts.clientId ?? 'client'}: ${err.message}`)); });
      client.once('close', () => { clearTimeout(t); reject(new Error(`${opts.clientId ?? 'client'}: connection closed before CONNACK`)); });
    });
    client.on('error', () => { /* surfaced through assertions */ });
    return { client, connack, inbox };
  }

  /** A raw connection (mqtt-packet) that has sent CONNECT with `fields` and received its CONNACK. */
  async raw(port: number, version: Version, fields: Partial<mqttPacket.IConnectPacket>): Promise<{ raw: RawClient; connack: mqttPacket.IConnackPacket }> {
    const raw = await RawClient.open({ port } as BrokerHandle, version);
    this.raws.add(raw);
    const connack = await raw.connect(fields);
    return { raw, connack };
  }

  track(c: mqtt.MqttClient): void { this.mq.add(c); }
  trackRaw(r: RawClient): void { this.raws.add(r); }

  async closeAll(): Promise<void> {
    for (const r of this.raws) r.destroy();
    this.raws.clear();
    const all = [...this.mq];
    this.mq.clear();
    await Promise.all(all.map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))));
  }
}

export const EXPIRY = 3600;

/**
 * An mqtt.js message store that survives its client: pass the same one as `incomingStore` to
 * every connection of one persistent subscriber, so QoS 2 messages it PUBREC'd on one connection
 * are released (emitted) once when the PUBREL comes on the next. (`clean: false`: end() does not
 * empty it.)
 */
export function sessionStore(): mqtt.Store {
  return new mqtt.Store({ clean: false });
}

/**
 * mqtt.js options for a persistent session: v3.1.1 clean=false; v5 Session Expiry > 0 and, when
 * `resume` is true, Clean Start 0 (on the first connection Clean Start 1 creates the session).
 */
export function persistentOpts(version: 4 | 5, clientId: string, resume: boolean, expiry = EXPIRY): mqtt.IClientOptions {
  if (version === 4) return { protocolVersion: 4, clientId, clean: false };
  return { protocolVersion: 5, clientId, clean: !resume, properties: { sessionExpiryInterval: expiry } };
}

/** The same for a raw CONNECT. */
export function persistentConnect(version: 4 | 5, clientId: string, resume: boolean, expiry = EXPIRY): Partial<mqttPacket.IConnectPacket> {
  if (version === 4) return { clientId, clean: false };
  return { clientId, clean: !resume, properties: { sessionExpiryInterval: expiry } };
}

/** Subscribes and checks the granted QoS (a failure code there would make later checks misleading). */
export async function subscribeOk(client: mqtt.MqttClient, filters: Record<string, mqtt.IClientSubscribeOptions>, props?: NonNullable<mqtt.IClientSubscribeProperties['properties']>): Promise<void> {
  const granted = await new Promise<mqtt.ISubscriptionGrant[]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no SUBACK within ${WAIT_MS} ms for ${Object.keys(filters).join(', ')}`)), WAIT_MS);
    client.subscribe(filters as mqtt.ISubscriptionMap, (props ? { properties: props } : {}) as mqtt.IClientSubscribeOptions,
      (err, g) => { clearTimeout(t); if (err) reject(err); else resolve(g ?? []); });
  });
  for (const g of granted) {
    const want = filters[g.topic]?.qos;
    if (g.qos !== want) throw new Error(`SUBACK for ${g.topic}: granted ${g.qos}, asked ${want}`);
  }
}

/** Publishes and resolves on the ack (QoS 1 PUBACK / QoS 2 PUBCOMP); rejects on error or timeout. */
export function publishOk(client: mqtt.MqttClient, topic: string, payload: string | Buffer, opts: mqtt.IClientPublishOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`publish to ${topic} (qos ${opts.qos ?? 0}) not acknowledged within ${WAIT_MS} ms`)), WAIT_MS);
    client.publish(topic, payload, opts, (err) => { clearTimeout(t); if (err) reject(new Error(`publish to ${topic}: ${err.message}`)); else resolve(); });
  });
}

/**
 * A durability barrier for SIGKILL tests whose subject is not the last ack before the kill: a QoS 1
 * message for an offline persistent session is in the WAL before its PUBACK (issue 4), and the
 * store commits in order, so whatever the broker acknowledged before it is on disk too.
 */
export async function durableBarrier(c: Clients, port: number, base: string): Promise<void> {
  const id = `barrier-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const s = await c.mqtt(port, persistentOpts(4, id, false));
  await subscribeOk(s.client, { [`${base}/barrier`]: { qos: 1 } });
  await endOk(s.client);
  const p = await c.mqtt(port, { protocolVersion: 4, clientId: `${id}-pub` });
  await publishOk(p.client, `${base}/barrier`, 'barrier', { qos: 1 });
  await endOk(p.client);
}

/** Ends an mqtt.js client with a DISCONNECT (a normal disconnect: no will). */
export function endOk(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(false, {}, () => resolve()));
}

/** Waits for the mqtt.js client's connection to close (e.g. the broker was killed). */
export async function waitClientClosed(client: mqtt.MqttClient, what: string, ms = WAIT_MS): Promise<void> {
  await until(() => !client.connected, what, ms);
}

/** A PINGREQ round trip on a raw connection, skipping (and keeping) other packets. */
export async function rawPing(raw: RawClient, ms = WAIT_MS): Promise<mqttPacket.Packet[]> {
  raw.send({ cmd: 'pingreq' });
  const before: mqttPacket.Packet[] = [];
  await raw.nextMatching((p) => { if (p.cmd === 'pingresp') return true; before.push(p); return false; }, 'a PINGRESP', ms);
  return before;
}

// ---------------------------------------------------------------------------------------------
// Numbered streams (crash test)

/** What one subscriber identity received across all its connections: one entry per delivery. */
export interface Delivery { pub: string; seq: number; qos: number; dup: boolean; /** which connection of the subscriber (0 = before the kill) */ conn?: number; pid?: number }

export function parseStreamPayload(payload: Buffer | string): { pub: string; seq: number } | null {
  const m = /^([A-Za-z0-9_-]+):(\d+|end)$/.exec(payload.toString());
  if (!m) return null;
  return { pub: m[1], seq: m[2] === 'end' ? -1 : Number(m[2]) };
}

/** A stream publisher's record: which sequence numbers its broker acknowledged. */
export interface StreamRecord {
  name: string;
  qos: 1 | 2;
  /** QoS 1: PUBACK received. QoS 2: PUBREC received ("reached the broker"). */
  acked: Set<number>;
  /** Highest sequence number handed to the connection. */
  sent: number;
}

/**
 * QoS 1 stream with the real mqtt.js client: keeps `window` publishes outstanding until stopped
 * or `max` is reached; the publish callback (fired on PUBACK) records the ack.
 */
export class MqttQos1Stream implements StreamRecord {
  readonly qos = 1 as const;
  acked = new Set<number>();
  sent = 0;
  private outstanding = 0;
  private stopped = false;
  errors = 0;

  constructor(readonly name: string, readonly topic: string, private client: mqtt.MqttClient, private window: number, private max: number) {}

  start(): void { this.pump(); }
  stop(): void { this.stopped = true; }

  private pump(): void {
    while (!this.stopped && this.outstanding < this.window && this.sent < this.max && this.client.connected) {
      const seq = ++this.sent;
      this.outstanding++;
      this.client.publish(this.topic, `${this.name}:${seq}`, { qos: 1 }, (err) => {
        this.outstanding--;
        if (err) { this.errors++; return; }
        this.acked.add(seq);
        this.pump();
      });
    }
  }
}

/**
 * QoS 2 stream over a raw connection (exact control of the packet flow): keeps `window`
 * publishes outstanding; PUBREC marks the sequence number acked and is answered with PUBREL;
 * PUBCOMP frees the packet id. resume() reconnects (Clean Session 0 / Clean Start 0), re-sends
 * PUBREL for every packet id that got PUBREC but no PUBCOMP, and waits for their PUBCOMPs.
 * PUBLISHes that never got a PUBREC are abandoned (the broker owes nothing for them).
 */
export class RawQos2Stream implements StreamRecord {
  readonly qos = 2 as const;
  acked = new Set<number>();
  completed = new Set<number>();
  sent = 0;
  /** packet id → sequence number and phase. */
  private ids = new Map<number, { seq: number; phase: 'publish' | 'pubrel' }>();
  private nextId = 1;
  private stopped = false;
  private sock: import('node:net').Socket | undefined;
  protocolErrors: string[] = [];

  constructor(readonly name: string, readonly topic: string, readonly version: 4 | 5, readonly clientId: string, private window: number, private max: number) {}

  /** Opens a connection; `resume` false creates the session, true resumes it. Resolves on CONNACK. */
  async connect(port: number, resume: boolean): Promise<mqttPacket.IConnackPacket> {
    const net = await import('node:net');
    const sock = await new Promise<import('node:net').Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => { s.removeListener('error', reject); resolve(s); });
      s.once('error', reject);
    });
    sock.on('error', () => { /* close follows */ });
    this.sock = sock;
    const parser = mqttPacket.parser({ protocolVersion: this.version });
    let connack: ((p: mqttPacket.IConnackPacket) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<mqttPacket.IConnackPacket>((resolve, reject) => {
      connack = (p) => { clearTimeout(timer); resolve(p); };
      timer = setTimeout(() => reject(new Error(`${this.name}: no CONNACK within ${WAIT_MS} ms`)), WAIT_MS);
      sock.once('close', () => { clearTimeout(timer); reject(new Error(`${this.name}: closed before CONNACK`)); });
    });
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (p.cmd === 'connack') { connack?.(p as mqttPacket.IConnackPacket); connack = undefined; return; }
      this.onPacket(p);
    });
    parser.on('error', (e: Error) => { this.protocolErrors.push(`parse error: ${e.message}`); });
    sock.on('data', (d) => parser.parse(d));
    this.send(connectPacket(this.version, { ...persistentConnect(this.version, this.clientId, resume), keepalive: 0 }));
    return got;
  }

  private send(p: mqttPacket.Packet): void {
    if (this.sock && !this.sock.destroyed) this.sock.write(mqttPacket.generate(p, { protocolVersion: this.version }));
  }

  private waiters: Array<() => void> = [];
  private wake(): void { for (const w of this.waiters.slice()) w(); }

  private onPacket(p: mqttPacket.Packet): void {
    const id = (p as { messageId?: number }).messageId;
    const rc = (p as { reasonCode?: number }).reasonCode ?? 0;
    if (p.cmd === 'pubrec' && id !== undefined) {
      const e = this.ids.get(id);
      if (!e) { this.protocolErrors.push(`PUBREC for unknown packet id ${id}`); return; }
      if (rc >= 0x80) { this.protocolErrors.push(`PUBREC ${id} (seq ${e.seq}) reason 0x${rc.toString(16)}`); this.ids.delete(id); this.pump(); return; }
      if (e.seq >= 0) this.acked.add(e.seq); // seq -1: publishOne() (end marker), not part of the stream
      e.phase = 'pubrel';
      this.send({ cmd: 'pubrel', messageId: id });
    } else if (p.cmd === 'pubcomp' && id !== undefined) {
      const e = this.ids.get(id);
      if (!e || e.phase !== 'pubrel') { this.protocolErrors.push(`PUBCOMP for packet id ${id} not awaiting one`); return; }
      if (rc >= 0x80) this.protocolErrors.push(`PUBCOMP ${id} (seq ${e.seq}) reason 0x${rc.toString(16)}`);
      else if (e.seq >= 0) this.completed.add(e.seq);
      this.ids.delete(id);
      this.pump();
    } else if (p.cmd === 'disconnect' || p.cmd === 'pingresp') {
      // nothing
    } else {
      this.protocolErrors.push(`unexpected ${p.cmd.toUpperCase()}`);
    }
    this.wake();
  }

  start(): void { this.stopped = false; this.pump(); }
  stop(): void { this.stopped = true; }

  private allocId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.ids.has(id)) return id;
    }
    throw new Error('no free packet id');
  }

  private pump(): void {
    while (!this.stopped && this.sock && !this.sock.destroyed && this.ids.size < this.window && this.sent < this.max) {
      const seq = ++this.sent;
      const id = this.allocId();
      this.ids.set(id, { seq, phase: 'publish' });
      this.send({ cmd: 'publish', topic: this.topic, payload: Buffer.from(`${this.name}:${seq}`), qos: 2, retain: false, dup: false, messageId: id });
    }
  }

  /** After a broker restart: resume the session, complete every PUBREC'd flow with PUBREL → PUBCOMP. */
  async resume(port: number): Promise<mqttPacket.IConnackPacket> {
    this.sock?.destroy();
    for (const [id, e] of [...this.ids]) if (e.phase === 'publish') this.ids.delete(id);
    const connack = await this.connect(port, true);
    const pending = [...this.ids].sort((a, b) => a[1].seq - b[1].seq);
    for (const [id] of pending) this.send({ cmd: 'pubrel', messageId: id });
    const ok = await this.waitFor(() => this.ids.size === 0, WAIT_MS);
    if (!ok) throw new Error(`${this.name}: ${this.ids.size} PUBREL(s) re-sent after the restart got no PUBCOMP within ${WAIT_MS} ms (seqs ${[...this.ids.values()].map((e) => e.seq).slice(0, 10).join(', ')}); protocol notes: ${this.protocolErrors.slice(0, 5).join('; ')}`);
    return connack;
  }

  /** Publishes one more QoS 2 message (e.g. the end marker) and waits for its PUBCOMP. */
  async publishOne(payload: string): Promise<void> {
    const id = this.allocId();
    this.ids.set(id, { seq: -1, phase: 'publish' });
    this.send({ cmd: 'publish', topic: this.topic, payload: Buffer.from(payload), qos: 2, retain: false, dup: false, messageId: id });
    const ok = await this.waitFor(() => !this.ids.has(id), WAIT_MS);
    if (!ok) throw new Error(`${this.name}: "${payload}" not completed (PUBREC/PUBCOMP) within ${WAIT_MS} ms`);
  }

  private waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => { if (cond()) { done(); resolve(true); } };
      const t = setTimeout(() => { done(); resolve(false); }, ms);
      const done = () => { clearTimeout(t); const i = this.waiters.indexOf(check); if (i >= 0) this.waiters.splice(i, 1); };
      this.waiters.push(check);
      check();
    });
  }

  close(): void { this.stopped = true; this.sock?.destroy(); }
}

/**
 * Checks one subscriber's deliveries from one publisher: every acked sequence number arrived;
 * first occurrences are in increasing order; with `exactlyOnce`, no sequence number twice.
 * Returns a list of problems (empty when fine).
 */
export function checkStream(sub: string, rec: StreamRecord, got: Delivery[], exactlyOnce: boolean): string[] {
  const problems: string[] = [];
  const mine = got.filter((d) => d.pub === rec.name && d.seq >= 0);
  const seen = new Map<number, number>();
  const firsts: number[] = [];
  for (const d of mine) {
    const n = (seen.get(d.seq) ?? 0) + 1;
    seen.set(d.seq, n);
    if (n === 1) firsts.push(d.seq);
  }
  const missing = [...rec.acked].filter((s) => !seen.has(s)).sort((a, b) => a - b);
  if (missing.length) {
    problems.push(`${sub} <- ${rec.name} (QoS ${rec.qos}): ${missing.length} of ${rec.acked.size} acknowledged messages never arrived: ${summarizeSeqs(missing)}`);
  }
  for (let i = 1; i < firsts.length; i++) {
    if (firsts[i] < firsts[i - 1]) {
      problems.push(`${sub} <- ${rec.name}: out of order: ${firsts[i]} arrived (first time) after ${firsts[i - 1]} (first occurrences around there: ${firsts.slice(Math.max(0, i - 5), i + 5).join(', ')})`);
      break;
    }
  }
  if (exactlyOnce) {
    const dups = [...seen].filter(([, n]) => n > 1).map(([s]) => s).sort((a, b) => a - b);
    if (dups.length) {
      const how = dups.slice(0, 3).map((q) => `${q}: ${mine.filter((d) => d.seq === q).map((d) => `[conn ${d.conn ?? '?'} id ${d.pid ?? '?'}${d.dup ? ' DUP' : ''}]`).join(' ')}`).join('; ');
      problems.push(`${sub} <- ${rec.name}: QoS 2 messages delivered more than once: ${summarizeSeqs(dups)} (${how})`);
    }
  }
  return problems;
}

export function summarizeSeqs(s: number[]): string {
  if (s.length === 0) return '(none)';
  const ranges: string[] = [];
  let a = s[0];
  let b = s[0];
  for (let i = 1; i <= s.length; i++) {
    if (i < s.length && s[i] === b + 1) { b = s[i]; continue; }
    ranges.push(a === b ? `${a}` : `${a}-${b}`);
    if (i < s.length) { a = s[i]; b = s[i]; }
  }
  return ranges.length > 12 ? `${ranges.slice(0, 12).join(', ')}, … (${s.length} in all)` : ranges.join(', ');
}

// ---------------------------------------------------------------------------------------------
// Files

/** sha256 of every file under `dir` (relative path → hash), to prove a store was left untouched. */
export function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(dir, p), crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** Differences between two hashTree() results, as readable lines. */
export function diffTrees(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, h] of before) {
    if (!after.has(f)) out.push(`deleted: ${f}`);
    else if (after.get(f) !== h) out.push(`changed: ${f}`);
  }
  for (const f of after.keys()) if (!before.has(f)) out.push(`created: ${f}`);
  return out;
}

/** Every file under `dir`, relative. */
export function listTree(dir: string): string[] {
  return [...hashTree(dir).keys()].sort();
}
