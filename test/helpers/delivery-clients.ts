// Raw-socket clients for delivery tests: a publisher that knows which of its messages the broker
// acknowledged, and a subscriber that acknowledges what it gets (QoS 1 and 2), can stop and
// resume reading, and records every PUBLISH with a hash of its payload.
//
// Payloads are numbered: the first 4 bytes are the message number, the rest is derived from it,
// so a subscriber can check that each payload arrived intact without the publisher's copy.
import * as net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import * as mqttPacket from 'mqtt-packet';
import { waitUntil } from './wait';

export type V = 4 | 5;

/** The payload of message `n`, `size` bytes (at least 4). */
export function numberedPayload(n: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(Math.max(4, size));
  b.writeUInt32BE(n, 0);
  let x = (n * 2654435761) >>> 0;
  for (let i = 4; i < b.length; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

export function digest(b: Buffer): string { return createHash('sha1').update(b).digest('hex'); }

abstract class RawPeer {
  readonly socket: net.Socket;
  protected readonly parser: mqttPacket.Parser;
  closed = false;
  parseError: Error | null = null;
  connack: mqttPacket.IConnackPacket | null = null;
  protected readonly waiting = new Map<number, (p: mqttPacket.Packet) => void>();

  protected constructor(port: number, readonly version: V) {
    this.socket = net.connect(port, '127.0.0.1');
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p) => this.onPacket(p));
    this.parser.on('error', (e: Error) => { this.parseError ??= e; });
    this.socket.on('data', (d) => this.parser.parse(d));
    this.socket.on('error', () => { /* close follows */ });
    this.socket.on('close', () => { this.closed = true; });
  }

  send(p: mqttPacket.Packet): boolean { return this.socket.write(mqttPacket.generate(p, { protocolVersion: this.version })); }

  protected async open(fields: Partial<mqttPacket.IConnectPacket>): Promise<void> {
    await once(this.socket, 'connect');
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, keepalive: 0, clientId: '', ...fields } as mqttPacket.IConnectPacket);
    await waitUntil(() => this.connack !== null || this.closed, `${fields.clientId}: CONNACK`, 20000);
    const rc = this.connack ? (this.connack.reasonCode ?? this.connack.returnCode ?? 0) : -1;
    if (rc !== 0) throw new Error(`${fields.clientId}: CONNACK ${rc} (closed: ${this.closed})`);
  }

  protected abstract onPacket(p: mqttPacket.Packet): void;

  destroy(): void { this.socket.destroy(); }
}

export interface Got { n: number; topic: string; qos: number; dup: boolean; retain: boolean; hash: string }

/** Subscribes, acknowledges every QoS 1/2 PUBLISH at once, records each one. */
export class AckingSubscriber extends RawPeer {
  readonly got: Got[] = [];
  /** Message numbers received at QoS >= 1 (a DUP resend counts once). */
  readonly qos12 = new Set<number>();
  /** Off: PUBLISHes are read and recorded but not acknowledged (they stay in flight). */
  acking = true;
  private nextSubId = 1;

  static async connect(port: number, version: V, fields: Partial<mqttPacket.IConnectPacket>): Promise<AckingSubscriber> {
    const s = new AckingSubscriber(port, version);
    await s.open(fields);
    return s;
  }

  protected onPacket(p: mqttPacket.Packet): void {
    switch (p.cmd) {
      case 'connack': this.connack = p; break;
      case 'publish': {
        const payload = p.payload as Buffer;
        const n = payload.length >= 4 ? payload.readUInt32BE(0) : -1;
        this.got.push({ n, topic: p.topic, qos: p.qos, dup: p.dup, retain: p.retain, hash: digest(payload) });
        if (p.qos > 0) this.qos12.add(n);
        if (p.qos === 1 && this.acking) this.send({ cmd: 'puback', messageId: p.messageId! });
        if (p.qos === 2 && this.acking) this.send({ cmd: 'pubrec', messageId: p.messageId! });
        break;
      }
      case 'pubrel': this.send({ cmd: 'pubcomp', messageId: p.messageId! }); break;
      case 'suback': this.waiting.get(p.messageId!)?.(p); break;
      default: break;
    }
  }

  async subscribe(topic: string, qos: 0 | 1 | 2): Promise<void> {
    const id = this.nextSubId++;
    const acked = new Promise<mqttPacket.Packet>((resolve) => this.waiting.set(id, resolve));
    this.send({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic, qos }] });
    const suback = await Promise.race([acked, waitUntil(() => this.closed, 'never', 20000).then(() => null)]);
    if (!suback) throw new Error(`connection closed before the SUBACK for ${topic}`);
    const granted = (suback as mqttPacket.ISubackPacket).granted[0];
    if (granted !== qos) throw new Error(`SUBACK for ${topic}: ${granted}, asked ${qos}`);
  }

  /** Stops reading: the kernel buffers fill, and the broker sees a slow consumer. */
  stall(): void { this.socket.pause(); }
  unstall(): void { this.socket.resume(); }
}

export interface Sent { n: number; topic: string; qos: number; size: number; hash: string; acked: boolean }

/** Publishes numbered messages and records which the broker acknowledged (PUBACK, or PUBREC for QoS 2). */
export class TrackingPublisher extends RawPeer {
  readonly sent: Sent[] = [];
  private readonly byPid = new Map<number, Sent>();
  private nextPid = 1;

  static async connect(port: number, version: V, fields: Partial<mqttPacket.IConnectPacket>): Promise<TrackingPublisher> {
    const p = new TrackingPublisher(port, version);
    await p.open(fields);
    return p;
  }

  protected onPacket(p: mqttPacket.Packet): void {
    switch (p.cmd) {
      case 'connack': this.connack = p; break;
      case 'puback': this.settle(p.messageId!, p.reasonCode ?? 0); break;
      case 'pubrec': this.settle(p.messageId!, p.reasonCode ?? 0); this.send({ cmd: 'pubrel', messageId: p.messageId! }); break;
      default: break;
    }
  }

  private settle(pid: number, reason: number): void {
    const s = this.byPid.get(pid);
    if (!s) return;
    this.byPid.delete(pid);
    // A v5 reason >= 0x80 refuses the message; only a success acknowledges it.
    s.acked = reason < 0x80;
  }

  /** Sends message `n` (its payload numbered); resolves once the socket takes more. */
  async publish(topic: string, n: number, size: number, qos: 0 | 1 | 2, retain = false): Promise<Sent> {
    const payload = numberedPayload(n, size);
    const s: Sent = { n, topic, qos, size, hash: digest(payload), acked: false };
    this.sent.push(s);
    let messageId: number | undefined;
    if (qos > 0) {
      while (this.byPid.has(this.nextPid)) this.nextPid = this.nextPid === 65535 ? 1 : this.nextPid + 1;
      messageId = this.nextPid;
      this.nextPid = messageId === 65535 ? 1 : messageId + 1;
      this.byPid.set(messageId, s);
    }
    if (!this.send({ cmd: 'publish', topic, payload, qos, retain, dup: false, messageId } as mqttPacket.IPublishPacket)) {
      await Promise.race([once(this.socket, 'drain'), once(this.socket, 'close')]);
    }
    return s;
  }

  get unacked(): number { return this.byPid.size; }
  acked(): Sent[] { return this.sent.filter((s) => s.acked); }
}
