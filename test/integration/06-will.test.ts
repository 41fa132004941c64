// 06 will: the will message is published when the connection ends without a DISCONNECT
// (socket closed, keep-alive timeout, protocol error), not after a normal DISCONNECT; 5.0 DISCONNECT
// 0x04 sends it; will delay postpones it and a reconnect within the delay cancels it.
// The will's client and the subscriber are on different workers with --workers 3.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { IConnectPacket } from 'mqtt-packet';
import { delay } from '../helpers/wait';
import { uid, utopic } from '../helpers/ids';
import { clientPool, subscribe, publish, Connected } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

eachWorkerCount('06 will', (broker) => {
  const pool = clientPool('after'); // tests run concurrently (several wait seconds for expiry / delays)

  async function watcher(v: 4 | 5, topic: string): Promise<Connected> {
    const w = await pool.connect(broker(), { protocolVersion: v });
    await subscribe(w.client, topic, { qos: 1 });
    return w;
  }
  const will = (topic: string, payload = 'gone', extra: Partial<NonNullable<IConnectPacket['will']>> = {}): NonNullable<IConnectPacket['will']> =>
    ({ topic, payload: Buffer.from(payload), qos: 1, retain: false, ...extra });

  for (const v of VERSIONS) {
    it(`v${v}: will is published when the network connection closes without DISCONNECT [MQTT-3.1.2-8]`, async () => {
      const t = utopic('will');
      const w = await watcher(v, t);
      const { raw } = await pool.rawConnected(broker(), v, { will: will(t) });
      raw.destroy();
      const [m] = await w.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'gone');
      assert.equal(m.packet.qos, 1, 'will QoS 1 delivered at QoS 1');
    });

    it(`v${v}: will is NOT published after a normal DISCONNECT [MQTT-3.1.2-10] [MQTT-3.14.4-3]`, async () => {
      const t = utopic('nowill');
      const w = await watcher(v, t);
      const { raw } = await pool.rawConnected(broker(), v, { will: will(t) });
      raw.send({ cmd: 'disconnect' });
      await raw.expectClose('the broker to close after DISCONNECT');
      // Sentinel on the same topic, published after the close was observed.
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'sentinel', { qos: 1 });
      const before = await w.inbox.waitForPayload('sentinel');
      assert.deepEqual(before.map((m) => m.payload.toString()), []);
    });

    it(`v${v}: will is published when the broker closes the connection for a protocol error [MQTT-3.1.2-8]`, async () => {
      const t = utopic('pwill');
      const w = await watcher(v, t);
      const { raw } = await pool.rawConnected(broker(), v, { will: will(t, 'protocol-error') });
      raw.write([0x00, 0x00]); // reserved packet type 0
      await raw.expectClose();
      const [m] = await w.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'protocol-error');
    });

    it(`v${v}: will is published on keep-alive timeout (keepalive 1 s, within 1.5x + slack) [MQTT-3.1.2-8] [MQTT-3.1.2-24]`, async () => {
      const t = utopic('kawill');
      const w = await watcher(v, t);
      const { raw } = await pool.rawConnected(broker(), v, { keepalive: 1, will: will(t, 'timeout') });
      // Send nothing more; the broker must close and publish the will.
      const [m] = await w.inbox.waitFor(1, t, 10000);
      assert.equal(m.payload.toString(), 'timeout');
      await raw.expectClose();
    });

    it(`v${v}: a retained will is stored as a retained message [MQTT-3.1.2-17]`, async () => {
      const t = utopic('rwill');
      const { raw } = await pool.rawConnected(broker(), v, { will: will(t, 'last', { retain: true }) });
      const w1 = await watcher(v, t);
      raw.destroy();
      await w1.inbox.waitFor(1, t);
      const w2 = await watcher(v, t);
      const [m] = await w2.inbox.waitFor(1, t);
      assert.equal(m.payload.toString(), 'last');
      assert.equal(m.packet.retain, true);
    });

    it(`v${v}: the will of a connection taken over by the same client id is not a reason to crash; new connection works`, async () => {
      const id = uid('takewill');
      const t = utopic('takewill');
      await pool.rawConnected(broker(), v, { clientId: id, will: will(t) });
      const b = await pool.rawConnected(broker(), v, { clientId: id });
      await b.raw.ping();
    });
  }

  it('v5: DISCONNECT with reason 0x04 (disconnect with will message) publishes the will [MQTT-3.14.2-?] 3.14.2.1', async () => {
    const t = utopic('w04');
    const w = await watcher(5, t);
    const { raw } = await pool.rawConnected(broker(), 5, { will: will(t, 'with-will') });
    raw.send({ cmd: 'disconnect', reasonCode: 0x04 });
    const [m] = await w.inbox.waitFor(1, t);
    assert.equal(m.payload.toString(), 'with-will');
  });

  it('v5: will properties (content type, user properties, correlation data, response topic, payload format) are forwarded', async () => {
    const t = utopic('wprops');
    const w = await watcher(5, t);
    const { raw } = await pool.rawConnected(broker(), 5, {
      will: will(t, 'props', {
        properties: { contentType: 'text/plain', userProperties: { a: '1' }, correlationData: Buffer.from('cd'), responseTopic: 'resp/x', payloadFormatIndicator: true },
      }),
    });
    raw.destroy();
    const [m] = await w.inbox.waitFor(1, t);
    const p = m.packet.properties ?? {};
    assert.equal(p.contentType, 'text/plain');
    assert.deepEqual({ ...p.userProperties }, { a: '1' });
    assert.ok(Buffer.from(p.correlationData ?? []).equals(Buffer.from('cd')));
    assert.equal(p.responseTopic, 'resp/x');
    assert.equal(p.payloadFormatIndicator, true);
  });

  it('v5: will delay interval postpones the will (delay 2 s: not before ~2 s) [MQTT-3.1.3-9]', async () => {
    const t = utopic('wdelay');
    const w = await watcher(5, t);
    const { raw } = await pool.rawConnected(broker(), 5, {
      clean: false, properties: { sessionExpiryInterval: 60 },
      will: will(t, 'delayed', { properties: { willDelayInterval: 2 } }),
    });
    const closedAt = Date.now();
    raw.destroy();
    const [m] = await w.inbox.waitFor(1, t, 12000);
    const after = Date.now() - closedAt;
    assert.equal(m.payload.toString(), 'delayed');
    assert.ok(after >= 1500, `will published ${after} ms after the close; the delay is 2 s`);
  });

  it('v5: reconnecting before the will delay elapses cancels the will [MQTT-3.1.3-9]', async () => {
    const id = uid('wcancel');
    const t = utopic('wcancel');
    const w = await watcher(5, t);
    const { raw } = await pool.rawConnected(broker(), 5, {
      clientId: id, clean: false, properties: { sessionExpiryInterval: 60 },
      will: will(t, 'should-not-arrive', { properties: { willDelayInterval: 2 } }),
    });
    raw.destroy();
    await raw.closedP;
    const b = await pool.connect(broker(), { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(b.connack.sessionPresent, true);
    await delay(3500); // past the 2 s delay: the cancelled will must never come
    const pub = await pool.connect(broker(), { protocolVersion: 5 });
    await publish(pub.client, t, 'sentinel', { qos: 1 });
    const before = await w.inbox.waitForPayload('sentinel');
    assert.deepEqual(before.map((m) => m.payload.toString()), []);
  });

  it('v5: a will delay longer than the session expiry: the will is sent when the session ends (expiry 1 s, delay 60 s) [3.1.3.2.2]', async () => {
    const t = utopic('wexp');
    const w = await watcher(5, t);
    const { raw } = await pool.rawConnected(broker(), 5, {
      clean: false, properties: { sessionExpiryInterval: 1 },
      will: will(t, 'session-ended', { properties: { willDelayInterval: 60 } }),
    });
    raw.destroy();
    const [m] = await w.inbox.waitFor(1, t, 12000);
    assert.equal(m.payload.toString(), 'session-ended');
  });
}, { concurrency: true });
