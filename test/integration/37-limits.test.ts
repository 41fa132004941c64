// 37: limits, each shown taking effect and counted (in /metrics).
//
// - --max-connections: one more connection than the limit is closed unanswered; once a client
//   leaves, a new one is served again (closes are counted out), also after connections moved
//   between workers and after a worker died. A listener's own "maxConnections" bounds that
//   listener alone; the refusals show in $SYS too.
// - --max-connection-rate: a burst of connections waits for the rate, and every one of them
//   is served (none dropped); the waits are counted.
// - --max-client-msg-rate / --max-client-byte-rate: a client sending faster is slowed down (its
//   socket is read less), never dropped: every message arrives, in order, no sooner than the
//   rate allows; the pauses are counted.
// - --max-subscriptions: the filter beyond it gets 0x97 (v5) / 0x80 (3.1.1), the others and a
//   re-subscription of a held filter are granted.
// - --max-payload-size: a larger PUBLISH reaches nobody; v5 QoS 1 gets PUBACK 0x97, 3.1.1 a
//   plain PUBACK; QoS 0 is dropped; one at the limit goes through.
// - --connect-timeout-ms: a connection that sends nothing is closed; the default is 10 s.
// - SIGHUP reloads the limits from the --config file; one that does not parse keeps them.
import { describe, it, before, after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import type { ISubackPacket, ISubscribePacket, IPubackPacket, IPublishPacket } from 'mqtt-packet';
import { launchBroker, runCli, type Broker } from '../helpers/broker';
import { RawClient, rawSession, connackCode, encode } from '../helpers/raw-client';
import { uid, utopic } from '../helpers/ids';
import { delay, WAIT_MS } from '../helpers/wait';
import { SysWatcher } from '../helpers/sys-watcher';
import { metric, metricAtLeast } from '../helpers/metrics';



/** Connects and CONNECTs; 'refused' when the broker closes the connection without a CONNACK. */
async function tryConnect(port: number): Promise<RawClient | 'refused'> {
  const c = await RawClient.connect(port, 4);
  c.autoAck = true;
  c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: uid('lim'), keepalive: 60 });
  await c.waitFor((p) => p.cmd === 'connack', 'a CONNACK or a close').catch(() => undefined);
  const ack = c.packets.find((p) => p.cmd === 'connack');
  if (!ack) { c.destroy(); return 'refused'; }
  assert.equal(connackCode(ack as never), 0);
  return c;
}

const open: RawClient[] = [];
const brokers: Broker[] = [];
after(async () => {
  for (const c of open) c.destroy();
  await Promise.all(brokers.map((b) => b.stop().catch(() => undefined)));
});

async function start(extra: string[], workers = 2): Promise<Broker> {
  const b = await launchBroker(workers, ['--durability', 'none', ...extra]);
  brokers.push(b);
  return b;
}

describe('--max-connections', () => {
  it('refuses one more than the limit at accept, counts it, and serves again once a client leaves', async () => {
    const b = await start(['--max-connections', '3']);
    const held: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await tryConnect(b.port);
      assert.notEqual(c, 'refused', `connection ${i + 1} of 3 should be served`);
      held.push(c as RawClient);
      open.push(c as RawClient);
    }
    assert.equal(await tryConnect(b.port), 'refused', 'the 4th connection is closed without a CONNACK');
    await metricAtLeast(b, 'fleetmq_limit_refused_total', { reason: 'max_connections' }, 1);
    // A client leaves: its close is counted out by its worker, so one more fits again.
    held[0].socket.end();
    await held[0].closedP;
    const deadline = Date.now() + WAIT_MS;
    let again: RawClient | 'refused' = 'refused';
    while (again === 'refused' && Date.now() < deadline) { again = await tryConnect(b.port); if (again === 'refused') await delay(50); }
    assert.notEqual(again, 'refused', 'a connection is served again after one closed');
    open.push(again as RawClient);
    assert.equal(await tryConnect(b.port), 'refused', 'and the limit holds again');
  });

  it('connections moved to the worker that owns their session are counted once, and out when they close', async () => {
    // 3 workers: a persistent session's reconnects land on other workers and are moved to its
    // owner (a dup'd fd). Counted out where they leave and in where they arrive, a limit of 2
    // still admits exactly 2 afterwards.
    const b = await start(['--max-connections', '2'], 3);
    const id = uid('moved');
    for (let i = 0; i < 6; i++) {
      const c = await RawClient.connect(b.port, 4);
      const ack = await c.handshake({ clientId: id, clean: false });
      assert.equal(connackCode(ack), 0, `reconnect ${i}`);
      c.send({ cmd: 'disconnect' });
      await c.closedP;
    }
    // A moved connection counts again in connections_total: some of the 6 were moved.
    assert.ok(await metric(b, 'fleetmq_connections_total') > 6, 'some reconnects were moved to the owner');
    const deadline = Date.now() + WAIT_MS;
    const held: RawClient[] = [];
    while (held.length < 2 && Date.now() < deadline) {
      const c = await tryConnect(b.port);
      if (c === 'refused') await delay(50);
      else { held.push(c); open.push(c); }
    }
    assert.equal(held.length, 2, 'two connections fit after the moves');
    assert.equal(await tryConnect(b.port), 'refused', 'and a third does not');
  });

  it('a worker that dies takes its connections out of the count', async () => {
    // The dead worker never ran its close handlers: the supervisor zeroes its row.
    const b = await launchBroker(1, ['--durability', 'none', '--max-connections', '2'], { env: { FLEETMQ_TEST_HOOKS: '1' } });
    brokers.push(b);
    const a = await tryConnect(b.port);
    const c = await tryConnect(b.port);
    assert.ok(a !== 'refused' && c !== 'refused');
    open.push(a as RawClient, c as RawClient);
    assert.equal(await tryConnect(b.port), 'refused');
    (a as RawClient).send({ cmd: 'publish', topic: '$fleetmq/test/crash-worker', payload: Buffer.from('boom'), qos: 0, retain: false, dup: false } as IPublishPacket);
    assert.ok(await (a as RawClient).waitClosed(WAIT_MS) && await (c as RawClient).waitClosed(WAIT_MS), 'the worker\'s connections are gone');
    const deadline = Date.now() + 3 * WAIT_MS;
    const held: RawClient[] = [];
    while (held.length < 2 && Date.now() < deadline) {
      const n = await tryConnect(b.port).catch(() => 'refused' as const);
      if (n === 'refused') await delay(100);
      else { held.push(n); open.push(n); }
    }
    assert.equal(held.length, 2, 'two connections fit again on the replacement worker');
  });

  it('a listener\'s maxConnections bounds that listener only', async () => {
    const b = await start(['--listeners', JSON.stringify([{ transport: 'tcp', port: 0, maxConnections: 1 }])]);
    const port = Number((await b.waitForOutput(/fleetmq: tcp listener on [^\s:]+:(\d+)/))[1]);
    const first = await tryConnect(port);
    assert.notEqual(first, 'refused');
    open.push(first as RawClient);
    assert.equal(await tryConnect(port), 'refused', 'a 2nd connection to the bounded listener is refused');
    for (let i = 0; i < 2; i++) {
      const c = await tryConnect(b.port);
      assert.notEqual(c, 'refused', '--port has no bound of its own');
      open.push(c as RawClient);
    }
    assert.ok(await metric(b, 'fleetmq_limit_refused_total', { reason: 'max_connections' }) >= 1);
  });

  it('the refusals are in $SYS too', async () => {
    const b = await start(['--max-connections', '1', '--sys-interval', '1'], 1);
    const watcher = await SysWatcher.start(b.port); // the one connection allowed
    assert.equal(await tryConnect(b.port), 'refused');
    await watcher.waitCounter(/^\$SYS\/broker\/clients\/refused\/max-connections$/, 1, 'refusals in $SYS');
    watcher.c.destroy();
  });
});

describe('--max-connection-rate', () => {
  it('makes a burst wait for the rate and serves every connection of it', async () => {
    const b = await start(['--max-connection-rate', '5']);
    const n = 15;
    const t0 = Date.now();
    const all = await Promise.all(Array.from({ length: n }, () => tryConnect(b.port)));
    const took = Date.now() - t0;
    for (const c of all) if (c !== 'refused') open.push(c);
    assert.equal(all.filter((c) => c === 'refused').length, 0, 'no connection of the burst is dropped');
    // 5 pass at once (a second's worth of tokens), the other 10 at 5 per second: at least ~2 s.
    assert.ok(took >= 1500, `15 connections at 5/s were all served after ${took} ms: the rate did not hold them`);
    assert.ok(await metric(b, 'fleetmq_accept_rate_waits_total') >= 8, 'the waiting connections are counted');
  });
});

describe('per-client rates', () => {
  let b: Broker;
  before(async () => { b = await start(['--max-client-msg-rate', '50', '--max-client-byte-rate', '20000']); });

  async function flood(count: number, size: number): Promise<{ took: number; got: string[] }> {
    const topic = utopic('rate');
    const sub = await rawSession(b.port, 4);
    open.push(sub);
    await sub.subscribe(topic, 0);
    const pub = await rawSession(b.port, 4);
    open.push(pub);
    const pad = 'x'.repeat(Math.max(0, size - 8));
    // Every PUBLISH in one write: the broker gets them as fast as TCP carries them.
    const frames = Array.from({ length: count }, (_, i) => encode({ cmd: 'publish', topic, payload: Buffer.from(`${String(i).padStart(6, '0')}${pad}`), qos: 0, retain: false, dup: false } as IPublishPacket));
    const t0 = Date.now();
    pub.write(Buffer.concat(frames));
    await sub.waitFor(() => sub.publishes(topic).length >= count, `${count} messages`, 30000);
    const took = Date.now() - t0;
    return { took, got: sub.publishes(topic).map((p) => p.payload.toString().slice(0, 6)) };
  }

  it('--max-client-msg-rate slows a fast publisher down and loses nothing', async () => {
    const { took, got } = await flood(150, 10);
    assert.deepEqual(got, Array.from({ length: 150 }, (_, i) => String(i).padStart(6, '0')), 'every message, in order');
    // 50 at once, the other 100 at 50 per second: at least ~2 s.
    assert.ok(took >= 1500, `150 messages at 50/s arrived in ${took} ms: not rate-limited`);
    assert.ok(await metric(b, 'fleetmq_client_rate_pauses_total') >= 1);
  });

  it('--max-client-byte-rate slows a publisher of large messages down and loses nothing', async () => {
    const before = await metric(b, 'fleetmq_client_rate_pauses_total');
    const { took, got } = await flood(10, 5000);
    assert.equal(got.length, 10);
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => String(i).padStart(6, '0')));
    // ~50 KB at 20 KB/s with a 20 KB burst: at least ~1.5 s.
    assert.ok(took >= 1000, `50 KB at 20 KB/s arrived in ${took} ms: not rate-limited`);
    assert.ok(await metric(b, 'fleetmq_client_rate_pauses_total') > before);
  });
});

describe('--max-subscriptions, --max-payload-size, --connect-timeout-ms', () => {
  let b: Broker;
  before(async () => { b = await start(['--max-subscriptions', '2', '--max-payload-size', '100', '--connect-timeout-ms', '500']); });

  async function subscribeCodes(c: RawClient, filters: string[], messageId: number): Promise<number[]> {
    const from = c.packets.length;
    c.send({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) } as ISubscribePacket);
    const ack = await c.waitFor<ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`, undefined, from);
    return ack.granted as number[];
  }

  it('refuses the filter beyond --max-subscriptions: 0x97 on v5, 0x80 on 3.1.1', async () => {
    const v5 = await rawSession(b.port, 5);
    open.push(v5);
    assert.deepEqual(await subscribeCodes(v5, ['q/a', 'q/b', 'q/c'], 1), [1, 1, 0x97]);
    assert.deepEqual(await subscribeCodes(v5, ['q/a'], 2), [1], 'a filter the session holds is replaced, not refused');
    const v3 = await rawSession(b.port, 4);
    open.push(v3);
    assert.deepEqual(await subscribeCodes(v3, ['q/a', 'q/b', 'q/c', 'q/d'], 1), [1, 1, 0x80, 0x80]);
    await metricAtLeast(b, 'fleetmq_subscriptions_refused_quota_total', {}, 3);
  });

  it('drops a payload over --max-payload-size: v5 PUBACK 0x97, 3.1.1 a plain PUBACK, nobody receives it', async () => {
    const topic = utopic('big');
    const sub = await rawSession(b.port, 4);
    open.push(sub);
    await sub.subscribe(topic, 1);
    const v5 = await rawSession(b.port, 5);
    const v3 = await rawSession(b.port, 4);
    open.push(v5, v3);
    const over = Buffer.alloc(101, 0x61);
    const at = Buffer.alloc(100, 0x62);
    const before = await metric(b, 'fleetmq_messages_payload_too_large_total');
    v5.send({ cmd: 'publish', topic, payload: over, qos: 1, messageId: 11, retain: false, dup: false } as IPublishPacket);
    const ack5 = await v5.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === 11, 'PUBACK 11');
    assert.equal(ack5.reasonCode, 0x97, 'v5: Quota exceeded');
    v3.send({ cmd: 'publish', topic, payload: over, qos: 1, messageId: 12, retain: false, dup: false } as IPublishPacket);
    await v3.waitFor((p) => p.cmd === 'puback' && (p as IPubackPacket).messageId === 12, 'PUBACK 12');
    v3.send({ cmd: 'publish', topic, payload: over, qos: 0, retain: false, dup: false } as IPublishPacket);
    // The one at the limit is delivered, and after it (in order) nothing of the larger ones came.
    v5.send({ cmd: 'publish', topic, payload: at, qos: 1, messageId: 13, retain: false, dup: false } as IPublishPacket);
    const ok = await v5.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === 13, 'PUBACK 13');
    assert.equal(ok.reasonCode ?? 0, 0);
    await sub.waitFor(() => sub.publishes(topic).length >= 1, 'the message at the limit');
    await v3.ping();
    await sub.ping();
    assert.deepEqual(sub.publishes(topic).map((p) => p.payload.length), [100], 'only the payload at the limit arrives');
    assert.equal(await metricAtLeast(b, 'fleetmq_messages_payload_too_large_total', {}, before + 3), before + 3);
  });

  it('closes a connection that sends no CONNECT within --connect-timeout-ms', async () => {
    const idle = await RawClient.connect(b.port, 4);
    open.push(idle);
    assert.ok(await idle.waitClosed(WAIT_MS), 'the silent connection is closed');
    const c = await tryConnect(b.port);
    assert.notEqual(c, 'refused', 'a client that sends CONNECT at once is served');
    open.push(c as RawClient);
  });

  it('SIGHUP reloads the limits from the --config file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-limits-'));
    try {
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(file, JSON.stringify({ maxSubscriptions: 1, maxConnections: 2 }));
      const r = await start(['--config', file], 1);
      const c = await rawSession(r.port, 5);
      open.push(c);
      assert.deepEqual(await subscribeCodes(c, ['h/a', 'h/b'], 1), [1, 0x97]);
      const other = await tryConnect(r.port);
      assert.notEqual(other, 'refused');
      open.push(other as RawClient);
      assert.equal(await tryConnect(r.port), 'refused', '3rd connection over maxConnections 2');
      fs.writeFileSync(file, JSON.stringify({ maxSubscriptions: 3, maxConnections: 3 }));
      r.proc.kill('SIGHUP');
      await r.waitForOutput(/SIGHUP: limits reloaded: .*maxConnections 3.*maxSubscriptions 3/);
      assert.deepEqual(await subscribeCodes(c, ['h/b', 'h/c', 'h/d'], 2), [1, 1, 0x97], 'the same session, the new quota');
      const third = await tryConnect(r.port);
      assert.notEqual(third, 'refused', 'a 3rd connection fits now');
      open.push(third as RawClient);
      // A file that no longer parses keeps the limits in force.
      fs.writeFileSync(file, '{ not json');
      r.proc.kill('SIGHUP');
      await r.waitForOutput(/SIGHUP: limits not reloaded, the configuration does not parse/);
      assert.equal(await tryConnect(r.port), 'refused', 'maxConnections 3 still holds');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--connect-timeout-ms defaults to 10 s and is in --help', async () => {
    const r = await runCli(['--help']);
    assert.match(r.stdout, /--connect-timeout-ms N\s+.*\[10000\]/);
  });
});
