// Numbered message streams for the crash test (21): publishers that record which sequence
// numbers their broker acknowledged, and the checker that compares that with what each
// subscriber received (nothing acknowledged lost, in order, exactly once for QoS 2).
import * as net from 'node:net';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { connectPacket } from './raw-client';
import { WAIT_MS, Wakeups } from './wait';
import { persistentConnect } from './persist';

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
  private sock: net.Socket | undefined;
  protocolErrors: string[] = [];

  constructor(readonly name: string, readonly topic: string, readonly version: 4 | 5, readonly clientId: string, private window: number, private max: number) {}

  /** Opens a connection; `resume` false creates the session, true resumes it. Resolves on CONNACK. */
  async connect(port: number, resume: boolean): Promise<mqttPacket.IConnackPacket> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
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

  private events = new Wakeups();
  private wake(): void { this.events.wake(); }

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

  private waitFor(cond: () => boolean, ms: number): Promise<boolean> { return this.events.until(cond, ms); }

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

