// 34: MQTT over WebSocket (ws://) and secure WebSocket (wss://), terminated in the worker.
//
// - mqtt.js over ws:// and wss:// and over TCP and TLS, on one broker with 2 workers: every
//   client gets every other's messages (all directions between the four transports).
// - A CONNECT sent one byte per WebSocket frame (the raw `ws` client) is accepted, and so is a
//   PINGREQ split the same way: binary frames are a byte stream [MQTT-6.0.0-2].
// - The subprotocols 'mqtt' and 'mqttv3.1' are accepted; none is refused (400) [MQTT-6.0.0-3];
//   a wrong path is 404; a text frame closes the connection with 1003 [MQTT-6.0.0-1, RFC 6455
//   §7.4.1]; each refusal is counted.
// - The `listeners` array of --config adds more listeners (here a second TCP one and a
//   WebSocket one at its own path), each working, beside the flags' ones.
// - A persistent session reconnecting over WebSocket on a worker that does not own it keeps
//   its session and its queued QoS 1 messages (the relay, workers/net/relay.ts).
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import WebSocket from 'ws';
import type * as mqtt from 'mqtt';
import { launchBroker, makeTempDir, type Broker } from '../helpers/broker';
import { makeCa, issue, type Ca, type Issued } from '../helpers/certs';
import { Clients, subscribe, publish, end, type Connected } from '../helpers/clients';
import { encode, connectPacket } from '../helpers/raw-client';
import { SysWatcher } from '../helpers/sys-watcher';
import { uid, utopic } from '../helpers/ids';
import { onceEvent, waitUntil, WAIT_MS } from '../helpers/wait';

let ca: Ca;
let server: Issued;
before(() => {
  const dir = makeTempDir('fleetmq-ws-');
  ca = makeCa(dir, 'ca');
  server = issue(ca, 'server', '/CN=localhost', '1001', 'server');
});

describe('34 WebSocket and secure WebSocket listeners, 2 workers', () => {
  let broker: Broker;
  let ports: { tls: number; ws: number; wss: number };
  let sys: SysWatcher;
  const clients = new Clients();

  before(async () => {
    broker = await launchBroker(2, ['--tls-port', '0', '--ws-port', '0', '--wss-port', '0', '--cert', server.cert, '--key', server.key,
      '--sys-interval', '1', '--durability', 'none']);
    const port = async (kind: string) => Number((await broker.waitForOutput(new RegExp(`fleetmq: ${kind} listener on [^\\s:]+:(\\d+)`)))[1]);
    ports = { tls: await port('tls'), ws: await port('ws'), wss: await port('wss') };
    sys = await SysWatcher.start(broker.port);
  });
  after(async () => { sys?.close(); await clients.closeAll(); await broker?.stop(); });

  const secure = () => ({ ca: fs.readFileSync(ca.cert), servername: 'localhost' });
  const open: Record<string, (o?: mqtt.IClientOptions) => Promise<Connected>> = {
    tcp: (o = {}) => clients.mqtt(broker.port, o),
    tls: (o = {}) => clients.mqtt(ports.tls, { protocol: 'mqtts', ...secure(), ...o }),
    ws: (o = {}) => clients.mqtt(ports.ws, { protocol: 'ws', path: '/mqtt', ...o }),
    wss: (o = {}) => clients.mqtt(ports.wss, { protocol: 'wss', path: '/mqtt', ...secure(), ...o }),
  };

  /** A raw WebSocket client (the `ws` package); resolves once open, rejects with the refusal. */
  const rawWs = (url: string, protocols?: string | string[], opts: WebSocket.ClientOptions = {}): Promise<WebSocket> => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, opts);
    const t = setTimeout(() => { ws.terminate(); reject(new Error(`no WebSocket open within ${WAIT_MS} ms`)); }, WAIT_MS);
    ws.once('open', () => { clearTimeout(t); resolve(ws); });
    ws.once('error', (err) => { clearTimeout(t); reject(err); });
  });
  /** Collects the bytes of a raw WebSocket's binary messages. */
  const bytesOf = (ws: WebSocket) => {
    const got: Buffer[] = [];
    ws.on('message', (d: Buffer) => got.push(d));
    return () => Buffer.concat(got);
  };

  it('mqtt.js over ws:// and wss://, TCP and TLS: every client gets every message, in all directions', async () => {
    const t = utopic('mix');
    const names = Object.keys(open);
    const conns: Record<string, Connected> = {};
    for (const n of names) {
      conns[n] = await open[n]();
      await subscribe(conns[n].client, `${t}/#`, { qos: 1 });
    }
    for (const n of names) await publish(conns[n].client, `${t}/${n}`, `from-${n}`, { qos: 1 });
    for (const n of names) {
      const got = await conns[n].inbox.waitFor(names.length);
      assert.deepEqual(got.map((m) => m.payload.toString()).sort(), names.map((x) => `from-${x}`).sort(), `what the ${n} client got`);
    }
    for (const n of names) await end(conns[n].client);
  });

  it('a CONNECT sent one byte per WebSocket frame is accepted; a PINGREQ split the same way is answered', async () => {
    const ws = await rawWs(`ws://127.0.0.1:${ports.ws}/mqtt`, 'mqtt');
    const bytes = bytesOf(ws);
    try {
      for (const b of encode(connectPacket(4))) ws.send(Buffer.from([b]), { binary: true });
      await waitUntil(() => bytes().length >= 4, () => `a CONNACK (got ${bytes().toString('hex')})`);
      assert.equal(bytes().subarray(0, 4).toString('hex'), '20020000', 'CONNACK, accepted');
      ws.send(Buffer.from([0xc0]), { binary: true });
      ws.send(Buffer.from([0x00]), { binary: true });
      await waitUntil(() => bytes().length >= 6, () => `a PINGRESP (got ${bytes().toString('hex')})`);
      assert.equal(bytes().subarray(4, 6).toString('hex'), 'd000');
    } finally { ws.terminate(); }
  });

  it('subprotocols mqtt and mqttv3.1 are accepted; none is refused (400); a wrong path is 404; each counted', async () => {
    const before = await sys.current('clients/refused/websocket');
    for (const p of ['mqtt', 'mqttv3.1']) {
      const ws = await rawWs(`ws://127.0.0.1:${ports.ws}/mqtt`, p);
      assert.equal(ws.protocol, p);
      ws.terminate();
    }
    await assert.rejects(rawWs(`ws://127.0.0.1:${ports.ws}/mqtt`), /Unexpected server response: 400/);
    await assert.rejects(rawWs(`ws://127.0.0.1:${ports.ws}/mqtt`, 'stomp'), /Unexpected server response: 400/);
    await assert.rejects(rawWs(`ws://127.0.0.1:${ports.ws}/elsewhere`, 'mqtt'), /Unexpected server response: 404/);
    await assert.rejects(rawWs(`wss://127.0.0.1:${ports.wss}/elsewhere`, 'mqtt', secure()), /Unexpected server response: 404/);
    await sys.waitCounter(/clients\/refused\/websocket$/, before + 4, 'the refused upgrades counted');
  });

  it('a text frame closes the connection with 1003 (unsupported data)', async () => {
    const ws = await rawWs(`ws://127.0.0.1:${ports.ws}/mqtt`, 'mqtt');
    const bytes = bytesOf(ws);
    ws.send(encode(connectPacket(4)), { binary: true });
    await waitUntil(() => bytes().length >= 4, 'a CONNACK');
    const closed = onceEvent<number>(ws, 'close', 'the broker to close after a text frame');
    ws.send('a text frame');
    assert.equal(await closed, 1003);
  });

  it('a persistent session reconnecting over ws:// on the other worker keeps its session and its queued QoS 1 messages', async () => {
    const id = uid('wssess');
    const t = utopic('wssess');
    const relayedBefore = await sys.current('clients/relayed');
    const first = await open.ws({ clientId: id, clean: false });
    await subscribe(first.client, t, { qos: 1 });
    await end(first.client);
    const pub = await open.tcp();
    const fillers: net.Socket[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 3; i++) await publish(pub.client, t, `r${round}-m${i}`, { qos: 1 });
        const f = net.connect(broker.port, '127.0.0.1');
        fillers.push(f);
        await onceEvent(f, 'connect', 'a filler connection');
        const again = await (round === 1 ? open.wss : open.ws)({ clientId: id, clean: false });
        assert.equal(again.connack.sessionPresent, true, `round ${round}: session present`);
        const got = await again.inbox.waitFor(3, t);
        assert.deepEqual(got.map((m) => m.payload.toString()), [0, 1, 2].map((i) => `r${round}-m${i}`));
        await end(again.client);
      }
    } finally {
      for (const f of fillers) f.destroy();
    }
    await sys.waitCounter(/clients\/relayed$/, relayedBefore + 1, 'a reconnect relayed to the worker that owns the session');
  });
});

describe('34 the listeners array of --config', () => {
  let broker: Broker;
  const clients = new Clients();
  let extra: { tcp: number; ws: number };

  before(async () => {
    const dir = makeTempDir('fleetmq-listeners-');
    const file = path.join(dir, 'fleetmq.json');
    fs.writeFileSync(file, JSON.stringify({ listeners: [{ transport: 'tcp', port: 0 }, { transport: 'ws', port: 0, path: '/other' }] }));
    broker = await launchBroker(1, ['--config', file, '--durability', 'none']);
    extra = {
      tcp: Number((await broker.waitForOutput(/fleetmq: tcp listener on [^\s:]+:(\d+)/))[1]),
      ws: Number((await broker.waitForOutput(/fleetmq: ws listener on [^\s:]+:(\d+) path \/other/))[1]),
    };
  });
  after(async () => { await clients.closeAll(); await broker?.stop(); });

  it('each listener of the array serves MQTT beside --port, the WebSocket one at its own path only', async () => {
    const t = utopic('listeners');
    const sub = await clients.mqtt(extra.ws, { protocol: 'ws', path: '/other' });
    await subscribe(sub.client, t, { qos: 1 });
    const pub = await clients.mqtt(extra.tcp);
    await publish(pub.client, t, 'via-extra-tcp', { qos: 1 });
    const pub2 = await clients.mqtt(broker.port);
    await publish(pub2.client, t, 'via-port', { qos: 1 });
    assert.deepEqual((await sub.inbox.waitFor(2, t)).map((m) => m.payload.toString()), ['via-extra-tcp', 'via-port']);
    await assert.rejects(clients.mqtt(extra.ws, { protocol: 'ws', path: '/mqtt' }));
  });
});
