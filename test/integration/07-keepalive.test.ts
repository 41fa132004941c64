// 07 keep-alive: the broker closes a connection silent for 1.5 x keep-alive, any control packet
// counts as activity, keep-alive 0 turns it off, and --max-keepalive caps a 5.0 client through
// Server Keep Alive. Timing bounds: the close must not come before 1.5 x keep-alive (a small
// allowance for timer granularity) and must come within a generous bound (10 s).
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import { delay } from '../helpers/wait';
import { utopic } from '../helpers/ids';
import { RawClient } from '../helpers/raw-client';
import { clientPool, subscribe, publish } from '../helpers/clients';
import { eachWorkerCount, VERSIONS } from '../helpers/suite';

/**
 * Asserts the broker closed `raw` for inactivity; returns ms from `since` to the close. `since`
 * is taken before the CONNECT is sent: the broker counts from when it read it, and the CONNACK
 * can take a while on a loaded machine (with 3 workers it goes through the coordinator), so
 * counting from the CONNACK would see a correct close at 1.5 x keep-alive as "too early".
 */
async function expectTimeoutClose(raw: RawClient, v: number, since: number, keepalive: number): Promise<number> {
  const rest = await raw.expectClose(`the broker to close a connection silent for 1.5 x ${keepalive} s`, 10000 + keepalive * 1500);
  const elapsed = Date.now() - since;
  assert.ok(elapsed >= keepalive * 1500 - 200, `closed after ${elapsed} ms; the broker must allow 1.5 x ${keepalive} s [MQTT-3.1.2-24]`);
  for (const p of rest) {
    assert.ok(v === 5 && p.cmd === 'disconnect', `unexpected ${p.cmd} before the close`);
    assert.equal((p as { reasonCode?: number }).reasonCode, 0x8d, 'DISCONNECT 0x8D Keep Alive timeout');
  }
  return elapsed;
}

eachWorkerCount('07 keep-alive', (broker) => {
  const pool = clientPool('after'); // tests run concurrently: each waits seconds on its own connections

  for (const v of VERSIONS) {
    it(`v${v}: a client silent for 1.5 x keep-alive (1 s) is disconnected [MQTT-3.1.2-24]`, async () => {
      const sent = Date.now(); // the broker's clock starts when it reads the CONNECT: not before this
      const { raw } = await pool.rawConnected(broker(), v, { keepalive: 1 });
      await expectTimeoutClose(raw, v, sent, 1);
    });

    it(`v${v}: PINGREQ every 0.5 s keeps a keep-alive 1 s connection open for 4 s [MQTT-3.12.4-1]`, async () => {
      const { raw } = await pool.rawConnected(broker(), v, { keepalive: 1 });
      for (let i = 0; i < 8; i++) { await delay(500); await raw.ping(); }
      assert.equal(raw.closed, false);
    });

    it(`v${v}: any control packet counts as activity: PUBLISH every 0.6 s keeps a keep-alive 1 s connection open [MQTT-3.1.2-23]`, async () => {
      const t = utopic('ka');
      const { raw } = await pool.rawConnected(broker(), v, { keepalive: 1 });
      for (let i = 0; i < 6; i++) {
        await delay(600);
        raw.send({ cmd: 'publish', topic: t, payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
      }
      await raw.ping();
    });

    it(`v${v}: keep-alive 0 turns the mechanism off: idle for 3 s, still connected`, async () => {
      const { raw } = await pool.rawConnected(broker(), v, { keepalive: 0 });
      await delay(3000);
      await raw.ping();
    });

    it(`v${v}: the mqtt client with keepalive 1 stays connected and keeps receiving for 4 s`, async () => {
      const t = utopic('kam');
      const sub = await pool.connect(broker(), { protocolVersion: v, keepalive: 1 });
      await subscribe(sub.client, t);
      await delay(4000);
      assert.equal(sub.client.connected, true);
      const pub = await pool.connect(broker(), { protocolVersion: v });
      await publish(pub.client, t, 'still-there');
      await sub.inbox.waitForPayload('still-there');
    });
  }
}, { concurrency: true });

eachWorkerCount('07 keep-alive with --max-keepalive 2', (broker) => {
  const pool = clientPool();

  it('v5: keep-alive 60 over the maximum: CONNACK Server Keep Alive 2 [MQTT-3.2.2-21], enforced as 1.5 x 2 s', async () => {
    const sent = Date.now();
    const { raw, connack } = await pool.rawConnected(broker(), 5, { keepalive: 60 });
    assert.equal(connack.properties?.serverKeepAlive, 2);
    await expectTimeoutClose(raw, 5, sent, 2);
  });

  it('v5: keep-alive 0 with a maximum configured: Server Keep Alive 2 (0 would mean no limit)', async () => {
    const { connack } = await pool.rawConnected(broker(), 5, { keepalive: 0 });
    assert.equal(connack.properties?.serverKeepAlive, 2);
  });

  it('v5: keep-alive 1 under the maximum is kept: no Server Keep Alive, the client\'s value stands [MQTT5-3.2.2-22]', async () => {
    const { connack } = await pool.rawConnected(broker(), 5, { keepalive: 1 });
    // The broker only announces Server Keep Alive when it replaces the client's value (0, or
    // above --max-keepalive); 1 <= 2 is kept as is.
    assert.equal(connack.properties?.serverKeepAlive, undefined, 'no Server Keep Alive for a keep-alive within the maximum');
  });

  it('v4: a client within the maximum is unaffected', async () => {
    const { raw, connack } = await pool.rawConnected(broker(), 4, { keepalive: 2 });
    assert.equal(connack.returnCode, 0);
    await raw.ping();
  });
}, { args: ['--max-keepalive', '2'] });

