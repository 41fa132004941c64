// mqtt.js clients for tests: connecting with bounded waits, collecting what a client receives
// (Inbox), tracking every client a test opens so a failing test still closes them all
// (Clients, clientPool), and promise forms of subscribe / publish / end with bounded waits.
import { after, afterEach } from 'node:test';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { BrokerHandle } from './broker';
import { RawClient, Version } from './raw-client';
import { WAIT_MS, waitUntil } from './wait';
import { uid } from './ids';

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
    await waitUntil(() => this.on(topic).length >= n, () => `${n} message(s)${topic ? ` on ${topic}` : ''} (got ${this.on(topic).length}: ${this.describe()})`, ms);
    return this.on(topic);
  }
  /** Waits for a message whose payload equals `payload`; returns the messages before it (on any topic). */
  async waitForPayload(payload: string, ms = WAIT_MS): Promise<Received[]> {
    await waitUntil(() => this.msgs.some((m) => m.payload.toString() === payload), () => `a message with payload "${payload}" (got: ${this.describe()})`, ms);
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
 * Connects an mqtt.js client (reconnect off, a unique client id unless `opts` names one) to
 * `port` and resolves with its CONNACK and an Inbox. The Inbox and `setup`'s listeners go on
 * before CONNECT: queued messages can arrive in the same read as the CONNACK. `onCreate` sees
 * the client at once (to track it for cleanup even if the connect fails). Rejects on error,
 * close or timeout before the CONNACK.
 */
export async function connectClient(
  port: number, opts: mqtt.IClientOptions = {},
  hooks: { setup?: (client: mqtt.MqttClient) => void; onCreate?: (client: mqtt.MqttClient) => void } = {},
): Promise<Connected> {
  const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: WAIT_MS, clientId: uid('mq'), ...opts });
  hooks.onCreate?.(client);
  const inbox = new Inbox(client);
  hooks.setup?.(client);
  const name = opts.clientId ?? 'client';
  const connack = await new Promise<mqttPacket.IConnackPacket>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no CONNACK within ${WAIT_MS} ms for ${name}`)), WAIT_MS);
    // The refusal's reason code (mqtt.js puts it on the error as `code`) stays on the error.
    const onErr = (err: Error) => { clearTimeout(t); client.end(true); reject(Object.assign(new Error(`${name}: ${err.message}`), { code: (err as { code?: unknown }).code })); };
    client.once('connect', (p) => { clearTimeout(t); client.removeListener('error', onErr); resolve(p as mqttPacket.IConnackPacket); });
    client.once('error', onErr);
    client.once('close', () => { clearTimeout(t); reject(new Error(`${name}: connection closed before CONNACK`)); });
  });
  client.on('error', () => { /* surfaced through assertions, not as an unhandled event */ });
  return { client, connack, inbox };
}

/** Every client a test opens (mqtt.js and raw), so all are closed even when the test fails half-way. */
export class Clients {
  private mq = new Set<mqtt.MqttClient>();
  private raws = new Set<RawClient>();

  /** An mqtt.js client (see connectClient), tracked. */
  mqtt(port: number, opts: mqtt.IClientOptions = {}, setup?: (client: mqtt.MqttClient) => void): Promise<Connected> {
    return connectClient(port, opts, { setup, onCreate: (c) => this.mq.add(c) });
  }

  /** A raw connection (not yet sending CONNECT), tracked. */
  async open(port: number, version: Version = 4): Promise<RawClient> {
    const raw = await RawClient.connect(port, version);
    this.raws.add(raw);
    return raw;
  }

  /** A raw connection that has sent CONNECT with `fields` and received its CONNACK (whatever its code). */
  async raw(port: number, version: Version, fields: Partial<mqttPacket.IConnectPacket> = {}): Promise<{ raw: RawClient; connack: mqttPacket.IConnackPacket }> {
    const raw = await this.open(port, version);
    const connack = await raw.handshake(fields);
    return { raw, connack };
  }

  track(c: mqtt.MqttClient): void { this.mq.add(c); }

  async closeAll(): Promise<void> {
    for (const r of this.raws) r.destroy();
    this.raws.clear();
    const all = [...this.mq];
    this.mq.clear();
    await Promise.all(all.map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))));
  }
}

/**
 * A Clients set closed in `afterEach` (or `after`) of the enclosing describe block, addressed by
 * broker: `const pool = clientPool();` then `pool.connect(broker(), opts)`.
 */
export function clientPool(hook: 'afterEach' | 'after' = 'afterEach') {
  const set = new Clients();
  const cleanup = () => set.closeAll();
  (hook === 'afterEach' ? afterEach : after)(cleanup);
  return {
    /** Connects an `mqtt` client and returns it with its CONNACK and an Inbox. */
    connect: (broker: BrokerHandle, opts: mqtt.IClientOptions = {}) => set.mqtt(broker.port, opts),
    /** Opens a raw connection (not yet sending CONNECT). */
    raw: (broker: BrokerHandle, version: Version = 4) => set.open(broker.port, version),
    /** Raw connection that has sent CONNECT (with `connect` fields) and received CONNACK. */
    rawConnected: (broker: BrokerHandle, version: Version, connect: Partial<mqttPacket.IConnectPacket> = {}) => set.raw(broker.port, version, connect),
    track: (c: mqtt.MqttClient) => set.track(c),
    cleanup,
  };
}

export function subscribe(client: mqtt.MqttClient, topic: string | string[] | mqtt.ISubscriptionMap, opts: mqtt.IClientSubscribeOptions = { qos: 0 }): Promise<mqtt.ISubscriptionGrant[]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no SUBACK within ${WAIT_MS} ms for ${JSON.stringify(topic)}`)), WAIT_MS);
    client.subscribe(topic as string, opts, (err, granted) => { clearTimeout(t); if (err) reject(err); else resolve(granted ?? []); });
  });
}

/** Subscribes and checks the granted QoS (a failure code there would make later checks misleading). */
export async function subscribeOk(client: mqtt.MqttClient, filters: Record<string, mqtt.IClientSubscribeOptions>, props?: NonNullable<mqtt.IClientSubscribeProperties['properties']>): Promise<void> {
  const granted = await subscribe(client, filters as mqtt.ISubscriptionMap, (props ? { properties: props } : {}) as mqtt.IClientSubscribeOptions);
  for (const g of granted) {
    const want = filters[g.topic]?.qos;
    if (g.qos !== want) throw new Error(`SUBACK for ${g.topic}: granted ${g.qos}, asked ${want}`);
  }
}

export function unsubscribe(client: mqtt.MqttClient, topic: string | string[], opts: object = {}): Promise<mqttPacket.IUnsubackPacket | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no UNSUBACK within ${WAIT_MS} ms for ${JSON.stringify(topic)}`)), WAIT_MS);
    client.unsubscribe(topic, opts, (err, packet) => { clearTimeout(t); if (err) reject(err); else resolve(packet as mqttPacket.IUnsubackPacket | undefined); });
  });
}

/** Publishes and resolves when the flow completes (QoS 0: written; 1: PUBACK; 2: PUBCOMP); rejects on error or timeout. */
export function publish(client: mqtt.MqttClient, topic: string, payload: string | Buffer, opts: mqtt.IClientPublishOptions = {}): Promise<mqttPacket.Packet | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`publish to ${topic} (qos ${opts.qos ?? 0}) not acknowledged within ${WAIT_MS} ms`)), WAIT_MS);
    client.publish(topic, payload, opts, (err, packet) => { clearTimeout(t); if (err) { err.message = `publish to ${topic}: ${err.message}`; reject(err); } else resolve(packet); });
  });
}

/** Ends a client (by default cleanly, with a DISCONNECT: no will) and resolves when closed. */
export function end(client: mqtt.MqttClient, opts: object = {}, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, opts, () => resolve()));
}
