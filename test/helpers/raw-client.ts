// A raw TCP MQTT connection for byte-level tests (malformed input, protocol errors, withheld
// acks), speaking through mqtt-packet's generator and parser.
//
// RawClient keeps two views of what the broker sent:
//   - `packets`: every packet received, in order (a test may search it, count it, or clear it);
//   - a read queue that next()/expect()/nextMatching() take packets from, in order.
// Every wait is bounded and fails naming what was awaited and what was received so far.
import * as net from 'node:net';
import * as mqttPacket from 'mqtt-packet';
import { BrokerHandle } from './broker';
import { WAIT_MS, Wakeups } from './wait';
import { uid } from './ids';

export type Packet = mqttPacket.Packet;
export type Version = 3 | 4 | 5;

/** Encodes one packet for `version` with mqtt-packet's generator. */
export function encode(packet: Packet, version: Version = 4): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: version });
}

/** Decodes exactly the packets in `bytes` (throws on malformed input or leftovers). */
export function decodeAll(bytes: Buffer, version: Version = 4): Packet[] {
  const out: Packet[] = [];
  const p = mqttPacket.parser({ protocolVersion: version });
  let error: Error | undefined;
  p.on('packet', (pk) => out.push(pk));
  p.on('error', (e: Error) => { error = error ?? e; });
  const left = p.parse(bytes);
  if (error) throw error;
  if (left !== 0) throw new Error(`${left} bytes left over after decoding`);
  return out;
}

/**
 * A CONNECT for `version`; defaults: unique client id, clean, keep-alive 0 (off: a quiet test
 * connection is never timed out; keep-alive tests set it).
 */
export function connectPacket(version: Version, fields: Partial<mqttPacket.IConnectPacket> = {}): mqttPacket.IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clientId: uid('raw'),
    clean: true,
    keepalive: 0,
    ...fields,
  };
}

/** The reason code of a CONNACK in either protocol version. */
export function connackCode(p: mqttPacket.IConnackPacket): number {
  return p.reasonCode ?? p.returnCode ?? 0;
}

/** "N packet(s): [cmd, cmd(0xRC), …]" for failure messages. */
export function summarize(ps: Packet[], max = 8): string {
  const parts = ps.slice(-max).map((p) => {
    const rc = (p as { reasonCode?: number; returnCode?: number }).reasonCode ?? (p as { returnCode?: number }).returnCode;
    return rc === undefined ? p.cmd : `${p.cmd}(0x${rc.toString(16)})`;
  });
  return `${ps.length} packet(s)${ps.length > max ? ', last' : ''}: [${parts.join(', ')}]`;
}

export class RawClient {
  /** Every packet received, in order. */
  readonly packets: Packet[] = [];
  /** True once the connection has closed. */
  closed = false;
  /** Set when the read side failed to parse what the broker sent (a broker bug worth reporting). */
  parseError: Error | undefined;
  /** Resolves when the connection closes. */
  readonly closedP: Promise<void>;
  /**
   * Acknowledge incoming QoS 1/2 PUBLISHes (PUBACK / PUBREC, PUBREL -> PUBCOMP) like a
   * well-behaved client. Off by default (tests that withhold acks); rawSession() turns it on.
   */
  autoAck = false;
  private unread: Packet[] = [];
  private events = new Wakeups();

  private constructor(readonly socket: net.Socket, readonly version: Version) {
    const parser = mqttPacket.parser({ protocolVersion: version });
    parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      this.unread.push(p);
      if (this.autoAck) this.ack(p);
      this.wake();
    });
    parser.on('error', (e: Error) => { this.parseError ??= e; this.wake(); });
    socket.on('data', (d: Buffer) => { parser.parse(d); });
    socket.on('error', () => { /* ECONNRESET etc.: 'close' follows */ });
    this.closedP = new Promise((resolve) => socket.once('close', () => { this.closed = true; this.wake(); resolve(); }));
  }

  /** Opens a TCP connection (no CONNECT sent yet). */
  static connect(port: number, version: Version = 4, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => { s.removeListener('error', reject); resolve(new RawClient(s, version)); });
      s.once('error', reject);
    });
  }

  /** The same, to a broker under test. */
  static open(broker: Pick<BrokerHandle, 'port'>, version: Version = 4): Promise<RawClient> {
    return RawClient.connect(broker.port, version);
  }

  private ack(p: Packet): void {
    if (this.socket.destroyed) return;
    if (p.cmd === 'publish' && p.qos === 1) this.send({ cmd: 'puback', messageId: p.messageId! });
    else if (p.cmd === 'publish' && p.qos === 2) this.send({ cmd: 'pubrec', messageId: p.messageId! });
    else if (p.cmd === 'pubrel') this.send({ cmd: 'pubcomp', messageId: p.messageId! });
  }

  private wake(): void { this.events.wake(); }

  /** Resolves true once `cond()` holds, false after `ms` (checked on every packet and on close). */
  private wait(cond: () => boolean, ms: number): Promise<boolean> { return this.events.until(cond, ms); }

  describe(): string {
    return `${summarize(this.packets)}${this.closed ? ' then closed' : ''}${this.parseError ? ` (parse error: ${this.parseError.message})` : ''}`;
  }

  /** PUBLISHes received so far (optionally only those on `topic`). */
  publishes(topic?: string): mqttPacket.IPublishPacket[] {
    return this.packets.filter((p) => p.cmd === 'publish' && (topic === undefined || p.topic === topic)) as mqttPacket.IPublishPacket[];
  }

  /** Packets received and not taken by next() yet. */
  pending(): Packet[] { return this.unread.slice(); }

  send(p: Packet): boolean { return this.socket.write(encode(p, this.version)); }
  write(bytes: Buffer | number[]): boolean { return this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)); }

  /** The next packet received (in order). Rejects if the connection closes first or on timeout. */
  async next(what = 'a packet', ms = WAIT_MS): Promise<Packet> {
    const ok = await this.wait(() => this.unread.length > 0 || this.closed || !!this.parseError, ms);
    if (this.unread.length > 0) return this.unread.shift()!;
    if (this.parseError) throw new Error(`broker sent bytes that do not parse while waiting for ${what}: ${this.parseError.message}`);
    if (!ok) throw new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${this.describe()}`);
    throw new Error(`connection closed while waiting for ${what}; received: ${this.describe()}`);
  }

  /** The next packet, which must be a `cmd`. */
  async expect<T extends Packet = Packet>(cmd: Packet['cmd'], ms = WAIT_MS): Promise<T> {
    const p = await this.next(`a ${cmd.toUpperCase()}`, ms);
    if (p.cmd !== cmd) throw new Error(`expected ${cmd.toUpperCase()}, got ${p.cmd.toUpperCase()} ${JSON.stringify(p)}`);
    return p as T;
  }

  /** Takes packets until one matches `pred` (e.g. a PUBLISH on some topic); returns it. */
  async nextMatching<T extends Packet = Packet>(pred: (p: Packet) => boolean, what: string, ms = WAIT_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = await this.next(what, Math.max(1, deadline - Date.now()));
      if (pred(p)) return p as T;
    }
  }

  /**
   * Waits until a packet received (at index `from` or later in `packets`, taken or not)
   * satisfies `pred`; rejects with `what` on timeout or close.
   */
  async waitFor<T extends Packet = Packet>(pred: (p: Packet) => boolean, what: string, ms = WAIT_MS, from = 0): Promise<T> {
    let found: Packet | undefined;
    const scan = () => {
      for (let i = from; i < this.packets.length; i++) if (pred(this.packets[i])) { found = this.packets[i]; return true; }
      return false;
    };
    await this.wait(() => scan() || this.closed, ms);
    if (found) return found as T;
    if (this.closed) throw new Error(`connection closed while waiting for ${what}; received: ${this.describe()}`);
    throw new Error(`no ${what} within ${ms} ms; received: ${this.describe()}`);
  }

  /** Resolves true if the broker closed the connection within `ms`, false otherwise (never rejects). */
  waitClosed(ms = WAIT_MS): Promise<boolean> {
    return this.wait(() => this.closed, ms);
  }

  /**
   * Waits for the broker to close the connection; returns the packets received before the close
   * that were not taken yet. Rejects if still open after `ms`.
   */
  async expectClose(what = 'the broker to close the connection', ms = WAIT_MS): Promise<Packet[]> {
    if (!await this.waitClosed(ms)) throw new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${this.describe()}`);
    return this.unread.splice(0);
  }

  /** Sends CONNECT (connectPacket() defaults overridden by `fields`) and returns the CONNACK, whatever its code. */
  async handshake(fields: Partial<mqttPacket.IConnectPacket> = {}, ms = WAIT_MS): Promise<mqttPacket.IConnackPacket> {
    this.send(connectPacket(this.version, fields));
    return this.expect<mqttPacket.IConnackPacket>('connack', ms);
  }

  /** SUBSCRIBE one filter and wait for its SUBACK. */
  async subscribe(topic: string, qos: 0 | 1 | 2 = 0, messageId = 1, ms = WAIT_MS): Promise<mqttPacket.ISubackPacket> {
    const from = this.packets.length;
    this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] } as mqttPacket.ISubscribePacket);
    return this.waitFor<mqttPacket.ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`, ms, from);
  }

  /**
   * PINGREQ round trip: proves everything sent before it has been processed. Takes packets up to
   * the PINGRESP and returns the ones before it.
   */
  async ping(ms = WAIT_MS): Promise<Packet[]> {
    this.send({ cmd: 'pingreq' });
    const before: Packet[] = [];
    await this.nextMatching((p) => { if (p.cmd === 'pingresp') return true; before.push(p); return false; }, 'a PINGRESP', ms);
    return before;
  }

  destroy(): void { this.socket.destroy(); }
}

/** Connects, CONNECTs and requires a successful CONNACK; the session acks QoS 1/2 deliveries (`autoAck`). */
export async function rawSession(port: number, version: 4 | 5, connect: Partial<mqttPacket.IConnectPacket> = {}): Promise<RawClient> {
  const c = await RawClient.connect(port, version);
  c.autoAck = true;
  const ack = await c.handshake(connect);
  if (connackCode(ack) !== 0) { c.destroy(); throw new Error(`CONNACK refused: ${JSON.stringify(ack)}`); }
  return c;
}
