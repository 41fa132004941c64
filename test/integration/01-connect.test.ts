// 01 connect: CONNECT / CONNACK for MQTT 3.1.1 (level 4) and 5.0, protocol state (first packet
// CONNECT, no second CONNECT), client identifiers, and clean shutdown on SIGTERM.
import { describe, it, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { uid, utopic } from '../helpers/ids';
import { launchBroker, BrokerHandle, makeTempDir, removeDir } from '../helpers/broker';
import { connackCode, connectPacket, RawClient } from '../helpers/raw-client';
import { clientPool, subscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('01 connect', (broker) => {
  const pool = clientPool();

  for (const v of VERSIONS) {
    it(`v${v}: CONNECT with clean session is accepted, session present 0 [MQTT-3.2.2-1]`, async () => {
      const { connack } = await pool.connect(broker(), { protocolVersion: v, clean: true });
      assert.equal(connackCode(connack), 0);
      assert.equal(connack.sessionPresent, false);
    });

    it(`v${v}: CONNECT with username, password and will is accepted (no auth configured)`, async () => {
      const { connack } = await pool.connect(broker(), {
        protocolVersion: v, username: 'u', password: 'p',
        will: { topic: utopic('will'), payload: Buffer.from('x'), qos: 1, retain: false },
      });
      assert.equal(connackCode(connack), 0);
    });

    it(`v${v}: a client id with multi-byte UTF-8 is accepted and usable`, async () => {
      const t = utopic('utf8');
      const { client, inbox } = await pool.connect(broker(), { protocolVersion: v, clientId: `ünïcødé-✓-${uid()}` });
      await subscribe(client, t);
      await publish(client, t, 'hi');
      await inbox.waitFor(1, t);
    });

    it(`v${v}: keepalive 0 is accepted [MQTT-3.1.2-10 3.1.1 MQTT-3.1.2-24]`, async () => {
      const { connack } = await pool.connect(broker(), { protocolVersion: v, keepalive: 0 });
      assert.equal(connackCode(connack), 0);
      // No --max-keepalive: the broker keeps the client's 0 (no limit) and so sends no Server Keep
      // Alive; the client's value stands [MQTT5-3.2.2-22].
      if (v === 5) assert.equal(connack.properties?.serverKeepAlive, undefined, 'no Server Keep Alive when the broker keeps the client\'s value');
    });

    it(`v${v}: a second CONNECT on the same connection is a protocol error: the broker closes [MQTT-3.1.0-2]`, async () => {
      const { raw } = await pool.rawConnected(broker(), v);
      raw.send(connectPacket(v));
      const rest = await raw.expectClose('the broker to close after a second CONNECT');
      for (const p of rest) {
        assert.equal(p.cmd, 'disconnect', `only a DISCONNECT may precede the close, got ${p.cmd}`);
        assert.equal((p as { reasonCode?: number }).reasonCode, 0x82, 'DISCONNECT reason must be 0x82 Protocol Error');
      }
    });

    it(`v${v}: a first packet other than CONNECT is refused: the broker closes without a reply [MQTT-3.1.0-1]`, async () => {
      const raw = await pool.raw(broker(), v);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] });
      raw.send({ cmd: 'pingreq' });
      const rest = await raw.expectClose('the broker to close a connection that did not start with CONNECT');
      assert.deepEqual(rest.map((p) => p.cmd).filter((c) => c !== 'disconnect'), [], 'nothing but a close (v5: at most a DISCONNECT) may follow');
    });

    it(`v${v}: CONNACK is the first packet the broker sends, even when messages are ready [MQTT-3.2.0-1]`, async () => {
      // A persistent session with a queued message: the queued PUBLISH must come after CONNACK.
      const id = uid('first');
      const t = utopic('first');
      const a = await pool.connect(broker(), { protocolVersion: v, clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) });
      await subscribe(a.client, t, { qos: 1 });
      await new Promise<void>((r) => a.client.end(false, {}, () => r()));
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'queued', { qos: 1 });
      const raw = await pool.raw(broker(), v);
      raw.send(connectPacket(v, { clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) }));
      const first = await raw.next('CONNACK');
      assert.equal(first.cmd, 'connack');
      const p = await raw.expect<import('mqtt-packet').IPublishPacket>('publish');
      assert.equal(p.payload.toString(), 'queued');
    });
  }

  it('v4: empty client id without clean session -> CONNACK 0x02 identifier rejected, then close [MQTT-3.1.3-8]', async () => {
    const raw = await pool.raw(broker(), 4);
    // CONNECT level 4, flags 0 (clean session off), keepalive 60, empty client id (mqtt-packet refuses to encode it)
    raw.write(Buffer.from('100c00044d5154540400003c0000', 'hex'));
    const ack = await raw.expect<import('mqtt-packet').IConnackPacket>('connack');
    assert.equal(connackCode(ack), 0x02);
    await raw.expectClose('the broker to close after CONNACK 0x02 [MQTT-3.2.2-5]');
  });

  it('v4: empty client id with clean session is accepted [MQTT-3.1.3-6]', async () => {
    const raw = await pool.raw(broker(), 4);
    const ack = await raw.handshake({ clientId: '', clean: true });
    assert.equal(connackCode(ack), 0);
    await raw.ping();
  });

  it('v5: empty client id -> CONNACK carries a non-empty Assigned Client Identifier, unique per connection [MQTT-3.2.2-16]', async () => {
    const a = await pool.rawConnected(broker(), 5, { clientId: '' });
    const b = await pool.rawConnected(broker(), 5, { clientId: '' });
    const ida = a.connack.properties?.assignedClientIdentifier;
    const idb = b.connack.properties?.assignedClientIdentifier;
    assert.ok(ida && ida.length > 0, 'CONNACK must carry an Assigned Client Identifier');
    assert.ok(idb && idb.length > 0);
    assert.notEqual(ida, idb, 'two connections must get different identifiers');
    await a.raw.ping();
    await b.raw.ping();
  });

  it('v4: unsupported protocol level -> CONNACK 0x01 then close [MQTT-3.1.2-2]', async () => {
    const raw = await pool.raw(broker(), 4);
    // CONNECT, protocol name MQTT, level 6, clean session, keepalive 60, client id "lvl6"
    raw.write(Buffer.from('101000044d5154540602003c00046c766c36', 'hex'));
    const rest = await raw.expectClose();
    assert.ok(rest.length <= 1);
    if (rest.length) {
      assert.equal(rest[0].cmd, 'connack');
      assert.ok([0x01, 0x84].includes(connackCode(rest[0] as import('mqtt-packet').IConnackPacket)));
    }
  });

  it('v5: CONNACK advertises the features the broker implements (retain, wildcards, shared subs, subscription ids, QoS 2)', async () => {
    const { connack } = await pool.connect(broker(), { protocolVersion: 5 });
    const p = connack.properties ?? {};
    assert.notEqual(p.retainAvailable, false, 'retain is implemented');
    assert.notEqual(p.wildcardSubscriptionAvailable, false, 'wildcards are implemented');
    assert.notEqual(p.sharedSubscriptionAvailable, false, 'shared subscriptions are implemented');
    assert.notEqual(p.subscriptionIdentifiersAvailable, false, 'subscription identifiers are implemented');
    assert.ok(p.maximumQoS === undefined, `QoS 2 is implemented, so Maximum QoS must be absent (got ${p.maximumQoS})`);
    // What the broker announces with its defaults (workers/handlers/connect.ts): Receive Maximum
    // = --receive-maximum (default 1024, §3.2.2.3.3), Topic Alias Maximum 64 (§3.2.2.3.8; absent
    // would forbid the client any alias [MQTT5-3.2.2-17]).
    assert.equal(p.receiveMaximum, 1024, 'Receive Maximum: the --receive-maximum default');
    assert.equal(p.topicAliasMaximum, 64, 'Topic Alias Maximum: the broker accepts 64 aliases per connection');
  });

  it('v5: the broker accepts user properties on CONNECT', async () => {
    const { connack } = await pool.connect(broker(), { protocolVersion: 5, properties: { userProperties: { a: '1', b: ['2', '3'] } } });
    assert.equal(connackCode(connack), 0);
  });
});

describe('01 connect: shutdown [workers=3]', () => {
  let broker: BrokerHandle | undefined;
  const dataDir = makeTempDir('fleetmq-it-');
  after(async () => { if (broker) await broker.kill(); removeDir(dataDir); });

  it('SIGTERM: v5 clients get DISCONNECT 0x8B, v4 clients are closed, the broker exits 0', async () => {
    broker = await launchBroker(3, ['--data-dir', dataDir]);
    const v5 = await RawClient.open(broker, 5);
    await v5.handshake({});
    const v4 = await RawClient.open(broker, 4);
    await v4.handshake({});
    const exit = broker.stop();
    const rest5 = await v5.expectClose('the broker to close v5 clients on SIGTERM');
    await v4.expectClose('the broker to close v4 clients on SIGTERM');
    assert.equal(rest5.length, 1, `v5 client should get one DISCONNECT, got ${v5.describe()}`);
    assert.equal(rest5[0].cmd, 'disconnect');
    assert.equal((rest5[0] as { reasonCode?: number }).reasonCode, 0x8b, 'reason 0x8B Server shutting down');
    assert.equal(await exit, 0, 'exit code');
  });
});
