// Helpers for the numbered protocol conformance suite (test/integration/0*-*.test.ts).
//
// Three building blocks, all bounded by explicit timeouts that fail with a message naming
// what was awaited (never a fixed sleep):
//   - eachWorkerCount(): runs one describe block against a broker with --workers 1 and 3;
//   - Inbox: collects what an `mqtt` client receives and waits for it;
//   - RawClient: a raw TCP connection speaking MQTT through mqtt-packet's generate/parser,
//     for byte-level edge cases (malformed input, protocol errors, withheld acks).
import { describe, before, after, afterEach } from 'node:test';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { startBroker, rawConnect, BrokerHandle, StartOptions } from './broker';

export type Packet = mqttPacket.Packet;
export type Version = 3 | 4 | 5;

/** Default bound for anything a test waits for. Generous: the suite runs on 2 loaded cores. */
export const WAIT_MS = 10000;

let idSeq = 0;
/** A client id unique within this test process (and readable in broker logs). */
export function uid(prefix = 'c'): string {
  idSeq += 1;
  return `${prefix}-${process.pid}-${idSeq}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A topic unique to one test, so tests sharing a broker never see each other's traffic. */
export function utopic(prefix = 't'): string {
  return `${uid(prefix)}/x`.replace(/-/g, '_');
}

// ---------------------------------------------------------------------------------------
// Brokers

/**
 * A new empty store directory for one broker. Every broker under test gets its own: the default
 * ./data is shared by every broker started from the repo (other suites, benchmarks) and holds a
 * lock, and state from an earlier run must not leak into a test.
 */
/**
 * Extra broker flags for every broker of the suite, for diagnosis only (e.g.
 * FLEETMQ_IT_ARGS="--durability none" separates protocol failures from store failures).
 * The suite's verdict is the run without it.
 */
export const EXTRA_ARGS: string[] = (process.env.FLEETMQ_IT_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Where each suite's broker output is kept after the run, for diagnosing failures. */
export const LOG_DIR = path.join(os.tmpdir(), 'fleetmq-it-logs');

/** Saves a broker's output as LOG_DIR/<title>.log. */
export function saveBrokerLog(title: string, output: string): void {
  try {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    fs.writeFileSync(path.join(LOG_DIR, `${title.replace(/[^\w.=-]+/g, '_')}.log`), output);
  } catch { /* diagnostics only */ }
}

export function freshDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-it-'));
}

export interface BrokerCtx {
  /** The running broker (throws if it failed to start, so every test fails loudly). */
  (): BrokerHandle;
}

/**
 * Runs `body` inside one describe block per worker count (default 1 and 3), each with its own
 * broker started in `before` and stopped (SIGTERM) in `after`. With 3 workers the main thread
 * assigns connections least-loaded-first, so consecutive connections land on different workers:
 * publisher and subscriber of a test are on different workers.
 */
export function eachWorkerCount(
  title: string,
  body: (broker: BrokerCtx, workers: number) => void,
  opts: { workers?: number[]; args?: string[]; env?: StartOptions['env']; concurrency?: boolean } = {},
): void {
  for (const workers of opts.workers ?? [1, 3]) {
    // concurrency: the block's tests run at once (each on its own connections; use
    // clientPool('after') there, since an afterEach cleanup would cut the others' clients).
    describe(`${title} [workers=${workers}]`, { concurrency: opts.concurrency ?? false }, () => {
      let broker: BrokerHandle | undefined;
      let startError: Error | undefined;
      let dataDir: string | undefined;
      before(async () => {
        try {
          dataDir = freshDataDir();
          broker = await startBroker({ workers, args: ['--data-dir', dataDir, ...(opts.args ?? []), ...EXTRA_ARGS], env: opts.env });
        } catch (err) {
          startError = err as Error;
          throw err;
        }
      });
      after(async () => {
        if (broker) {
          await broker.stop();
          saveBrokerLog(`${title} [workers=${workers}]`, broker.output());
        }
        if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      });
      const get: BrokerCtx = () => {
        if (!broker) throw new Error(`broker did not start: ${startError?.message ?? 'unknown'}`);
        if (broker.proc.exitCode !== null || broker.proc.signalCode !== null) {
          throw new Error(`broker is no longer running (exit ${broker.proc.exitCode ?? broker.proc.signalCode}); output:\n${broker.output().slice(-4000)}`);
        }
        return broker;
      };
      body(get, workers);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Waiting

/** Resolves when `cond()` is true; rejects with `what` after `ms`. Polls every 5 ms. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves with the first emission of `event`; rejects with `what` after `ms`. */
export function onceEvent<T = unknown>(em: NodeJS.EventEmitter, event: string, what: string, ms = WAIT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { em.removeListener(event, on); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const on = (...args: unknown[]) => { clearTimeout(t); resolve(args[0] as T); };
    em.once(event, on);
  });
}

/** Resolves after `ms`. Only for bounded observation windows where no event exists to wait on. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// mqtt.js clients

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqttPacket.IPublishPacket;
}

/** Everything one `mqtt` client receives, in order, with bounded waits. */
export class Inbox {
  readonly msgs: Received[] = [];
  constructor(client: mqtt.MqttClient) {
    client.on('message', (topic, payload, packet) => { this.msgs.push({ topic, payload, packet: packet as mqttPacket.IPublishPacket }); });
  }
  /** Messages on `topic` (all if omitted). */
  on(topic?: string): Received[] {
    return topic === undefined ? this.msgs.slice() : this.msgs.filter((m) => m.topic === topic);
  }
  /** Waits until `n` messages on `topic` (any topic if undefined) have arrived; returns them. */
  async waitFor(n: number, topic?: string, ms = WAIT_MS): Promise<Received[]> {
    await until(() => this.on(topic).length >= n, `${n} message(s)${topic ? ` on ${topic}` : ''} (got ${this.on(topic).length}: ${this.describe()})`, ms);
    return this.on(topic);
  }
  /** Waits for a message whose payload equals `payload`; returns the messages before it (on any topic). */
  async waitForPayload(payload: string, ms = WAIT_MS): Promise<Received[]> {
    await until(() => this.msgs.some((m) => m.payload.toString() === payload), `a message with payload "${payload}" (got: ${this.describe()})`, ms);
    const i = this.msgs.findIndex((m) => m.payload.toString() === payload);
    return this.msgs.slice(0, i);
  }
  describe(): string {
    return JSON.stringify(this.msgs.slice(-10).map((m) => `${m.topic}:${m.payload.toString().slice(0, 40)}`));
  }
  clear(): void { this.msgs.length = 0; }
}

export interface Connected {
  client: mqtt.MqttClient;
  connack: mqttPacket.IConnackPacket;
  inbox: Inbox;
}

/**
 * Tracks every client a test file opens so they are all closed in `afterEach`/`after` even when
 * a test fails half-way. Create one per describe block: `const pool = clientPool();`.
 */
export function clientPool(hook: 'afterEach' | 'after' = 'afterEach') {
  const clients = new Set<mqtt.MqttClient>();
  const raws = new Set<RawClient>();
  const cleanup = async () => {
    const all = [...clients];
    clients.clear();
    for (const r of raws) r.destroy();
    raws.clear();
    await Promise.all(all.map((c) => new Promise<void>((resolve) => {
      if (c.disconnected || !c.connected) { c.end(true, {}, () => resolve()); return; }
      c.end(true, {}, () => resolve());
    })));
  };
  (hook === 'afterEach' ? afterEach : after)(cleanup);
  return {
    /** Connects an `mqtt` client (reconnect off) and returns it with its CONNACK and an Inbox. */
    async connect(broker: BrokerHandle, opts: mqtt.IClientOptions = {}): Promise<Connected> {
      const client = mqtt.connect({
        host: '127.0.0.1', port: broker.port, reconnectPeriod: 0, connectTimeout: WAIT_MS,
        clientId: uid('mq'), ...opts,
      });
      clients.add(client);
      const inbox = new Inbox(client);
      const connack = await new Promise<mqttPacket.IConnackPacket>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no CONNACK within ${WAIT_MS} ms for ${opts.clientId ?? 'client'}`)), WAIT_MS);
        const onErr = (err: Error) => { clearTimeout(t); client.end(true); reject(err); };
        client.once('connect', (p) => { clearTimeout(t); client.removeListener('error', onErr); resolve(p as mqttPacket.IConnackPacket); });
        client.once('error', onErr);
        client.once('close', () => { clearTimeout(t); reject(new Error('connection closed before CONNACK')); });
      });
      client.on('error', () => { /* surfaced through assertions, not as an unhandled event */ });
      return { client, connack, inbox };
    },
    /** Opens a raw connection (not yet sending CONNECT). */
    async raw(broker: BrokerHandle, version: Version = 4): Promise<RawClient> {
      const r = await RawClient.open(broker, version);
      raws.add(r);
      return r;
    },
    /** Raw connection that has sent CONNECT (with `connect` fields) and received CONNACK. */
    async rawConnected(broker: BrokerHandle, version: Version, connect: Partial<mqttPacket.IConnectPacket> = {}): Promise<{ raw: RawClient; connack: mqttPacket.IConnackPacket }> {
      const raw = await this.raw(broker, version);
      const connack = await raw.connect(connect);
      return { raw, connack };
    },
    track(c: mqtt.MqttClient) { clients.add(c); },
    cleanup,
  };
}

export function subscribe(client: mqtt.MqttClient, topic: string | string[] | mqtt.ISubscriptionMap, opts: mqtt.IClientSubscribeOptions = { qos: 0 }): Promise<mqtt.ISubscriptionGrant[]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no SUBACK within ${WAIT_MS} ms for ${JSON.stringify(topic)}`)), WAIT_MS);
    client.subscribe(topic as string, opts, (err, granted) => { clearTimeout(t); if (err) reject(err); else resolve(granted ?? []); });
  });
}

export function unsubscribe(client: mqtt.MqttClient, topic: string | string[], opts: object = {}): Promise<mqttPacket.IUnsubackPacket | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no UNSUBACK within ${WAIT_MS} ms for ${JSON.stringify(topic)}`)), WAIT_MS);
    client.unsubscribe(topic, opts, (err, packet) => { clearTimeout(t); if (err) reject(err); else resolve(packet as mqttPacket.IUnsubackPacket | undefined); });
  });
}

/** Publishes and resolves when the flow completes (QoS 0: written; 1: PUBACK; 2: PUBCOMP). */
export function publish(client: mqtt.MqttClient, topic: string, payload: string | Buffer, opts: mqtt.IClientPublishOptions = {}): Promise<mqttPacket.Packet | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`publish to ${topic} (qos ${opts.qos ?? 0}) not acknowledged within ${WAIT_MS} ms`)), WAIT_MS);
    client.publish(topic, payload, opts, (err, packet) => { clearTimeout(t); if (err) reject(err); else resolve(packet); });
  });
}

/** Ends a client cleanly (DISCONNECT) and resolves when closed. */
export function end(client: mqtt.MqttClient, opts: object = {}): Promise<void> {
  return new Promise((resolve) => client.end(false, opts, () => resolve()));
}

/** Resolves when the client's connection closes (rejects after `ms`). */
export function waitClosed(client: mqtt.MqttClient, what = 'the broker to close the connection', ms = WAIT_MS): Promise<void> {
  if (client.disconnected && !client.connected) return Promise.resolve();
  return onceEvent<void>(client as unknown as NodeJS.EventEmitter, 'close', what, ms).then(() => undefined);
}

// ---------------------------------------------------------------------------------------
// Raw byte-level client

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
 * A raw TCP connection. Incoming bytes are decoded with mqtt-packet (for the protocol version
 * given) into a queue; `next()` takes packets in order. `closed` resolves when the broker
 * closes the connection.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  readonly all: Packet[] = [];
  isClosed = false;
  parseError: Error | undefined;
  readonly closed: Promise<void>;
  private parser: mqttPacket.Parser;
  private notify: Array<() => void> = [];

  private constructor(readonly socket: net.Socket, public version: Version) {
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p) => { this.packets.push(p); this.all.push(p); this.wake(); });
    this.parser.on('error', (e: Error) => { this.parseError = this.parseError ?? e; this.wake(); });
    socket.on('data', (d) => this.parser.parse(d));
    socket.on('error', () => { /* ECONNRESET etc.: a close follows */ });
    this.closed = new Promise((resolve) => socket.once('close', () => { this.isClosed = true; this.wake(); resolve(); }));
  }

  static async open(broker: BrokerHandle, version: Version = 4): Promise<RawClient> {
    return new RawClient(await rawConnect(broker), version);
  }

  private wake(): void { for (const w of this.notify.slice()) w(); }

  private wait(cond: () => boolean, what: string, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => { if (cond()) { done(); resolve(); } };
      const t = setTimeout(() => { done(); reject(new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${this.describe()}`)); }, ms);
      const done = () => { clearTimeout(t); const i = this.notify.indexOf(check); if (i >= 0) this.notify.splice(i, 1); };
      this.notify.push(check);
      check();
    });
  }

  describe(): string {
    const pk = this.all.map((p) => {
      const rc = (p as { reasonCode?: number; returnCode?: number }).reasonCode ?? (p as { returnCode?: number }).returnCode;
      return rc === undefined ? p.cmd : `${p.cmd}(0x${rc.toString(16)})`;
    });
    return `[${pk.join(', ')}]${this.isClosed ? ' then closed' : ''}${this.parseError ? ` (parse error: ${this.parseError.message})` : ''}`;
  }

  send(packet: Packet): void { this.socket.write(encode(packet, this.version)); }
  sendBytes(bytes: Buffer | number[]): void { this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)); }

  /** The next packet received (in order). Rejects if the connection closes first or on timeout. */
  async next(what = 'a packet', ms = WAIT_MS): Promise<Packet> {
    await this.wait(() => this.packets.length > 0 || this.isClosed || !!this.parseError, what, ms);
    if (this.packets.length > 0) return this.packets.shift()!;
    if (this.parseError) throw new Error(`broker sent bytes that do not parse while waiting for ${what}: ${this.parseError.message}`);
    throw new Error(`connection closed while waiting for ${what}; received: ${this.describe()}`);
  }

  /** The next packet, which must be a `cmd`. */
  async expect<T extends Packet = Packet>(cmd: Packet['cmd'], ms = WAIT_MS): Promise<T> {
    const p = await this.next(`a ${cmd.toUpperCase()}`, ms);
    if (p.cmd !== cmd) throw new Error(`expected ${cmd.toUpperCase()}, got ${p.cmd.toUpperCase()} ${JSON.stringify(p)}`);
    return p as T;
  }

  /** Skips packets until one matches `pred` (e.g. a PUBLISH on some topic); returns it. */
  async nextMatching<T extends Packet = Packet>(pred: (p: Packet) => boolean, what: string, ms = WAIT_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = await this.next(what, Math.max(1, deadline - Date.now()));
      if (pred(p)) return p as T;
    }
  }

  /**
   * Waits for the broker to close the connection. Returns the packets received before the close
   * that were not taken yet. Rejects if still open after `ms`.
   */
  async waitClose(what = 'the broker to close the connection', ms = WAIT_MS): Promise<Packet[]> {
    await this.wait(() => this.isClosed, what, ms);
    const rest = this.packets.splice(0);
    return rest;
  }

  /** Sends CONNECT (defaults: unique client id, clean, keepalive 60) and returns the CONNACK. */
  async connect(fields: Partial<mqttPacket.IConnectPacket> = {}): Promise<mqttPacket.IConnackPacket> {
    this.send(connectPacket(this.version, fields));
    return this.expect<mqttPacket.IConnackPacket>('connack');
  }

  /** PINGREQ round trip: proves everything sent before it has been processed. */
  async ping(ms = WAIT_MS): Promise<void> {
    this.send({ cmd: 'pingreq' });
    await this.nextMatching((p) => p.cmd === 'pingresp', 'a PINGRESP', ms);
  }

  destroy(): void { this.socket.destroy(); }
}

export function connectPacket(version: Version, fields: Partial<mqttPacket.IConnectPacket> = {}): mqttPacket.IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clientId: uid('raw'),
    clean: true,
    keepalive: 60,
    ...fields,
  };
}

/** The reason code of a CONNACK in either protocol version. */
export function connackCode(p: mqttPacket.IConnackPacket): number {
  return p.reasonCode ?? p.returnCode ?? 0;
}

/** Both protocol versions the suite runs client-level cases with. */
export const VERSIONS: Array<4 | 5> = [4, 5];
