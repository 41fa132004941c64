// 29: what a connection may leave unread (workers/net/connection.ts, output limit). Deliveries
// stop at --output-high-water; replies to what a client sends are written whatever it reads, so
// past --output-high-water + 2 × --max-packet-size the connection is closed and counted. And
// nothing legitimate reaches that limit: a reconnecting session's in-flight window, resent with
// DUP, goes out paced by the same mark [MQTT-4.4.0-1].
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import * as mqttPacket from 'mqtt-packet';
import { launchBroker } from '../helpers/broker';
import { waitUntil } from '../helpers/wait';
import { SysWatcher } from '../helpers/sys-watcher';
import { AckingSubscriber, TrackingPublisher } from '../helpers/delivery-clients';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('29 output a client leaves unread', () => {
  test('a client that keeps sending PINGREQs and never reads is closed and counted; others are served', { timeout: 180000 }, async (t) => {
    const b = await launchBroker(1, ['--durability', 'none', '--sys-interval', '1', '--max-packet-size', '1024', '--output-high-water', String(64 * KiB)]);
    try {
      const sys = await SysWatcher.start(b.port);
      const before = await sys.current('clients/closed/unread-output');
      const s = net.connect(b.port, '127.0.0.1');
      await once(s, 'connect');
      s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'never-reads' }));
      await once(s, 'data'); // the CONNACK; from here on it reads nothing
      s.pause();
      let closed = false;
      s.on('close', () => { closed = true; });
      s.on('error', () => { /* EPIPE / ECONNRESET once the broker has closed it */ });
      const chunk = Buffer.alloc(64 * KiB, Buffer.from([0xc0, 0x00])); // 32,768 PINGREQs
      let sent = 0;
      const MAX = 512 * MiB;
      while (!closed && sent < MAX) {
        if (!s.write(chunk)) await new Promise<void>((resolve) => { s.once('drain', resolve); s.once('close', resolve); });
        sent += chunk.length;
      }
      await waitUntil(() => closed, `the broker closing a client that sent ${sent / 2} PINGREQs and read nothing`, 60000);
      t.diagnostic(`closed after the client sent ${(sent / MiB).toFixed(0)} MiB of PINGREQs`);
      assert.ok(sent < MAX, 'closed before the client gave up');
      assert.equal(await sys.current('clients/closed/unread-output'), before + 1, 'counted on $SYS/broker/clients/closed/unread-output');
      // The broker goes on serving others.
      const sub = await AckingSubscriber.connect(b.port, 5, { clientId: 'still-served' });
      await sub.subscribe('served/#', 1);
      const pub = await TrackingPublisher.connect(b.port, 4, { clientId: 'still-served-pub' });
      await pub.publish('served/x', 0, 32, 1);
      await waitUntil(() => sub.qos12.has(0), 'a message to another client after the close', 20000);
      sub.destroy(); pub.destroy(); sys.close();
    } finally { await b.stop(); }
  });

  for (const workers of [1, 3]) {
    test(`${workers} worker(s): a full in-flight window of large messages is resent after a reconnect without passing the limit`, { timeout: 180000 }, async () => {
      // Limit here: 1 MiB mark + 2 × 1 MiB packets = 3 MiB; the window holds 48 × 512 KiB = 24 MiB.
      const b = await launchBroker(workers, ['--durability', 'none', '--max-packet-size', String(1 * MiB), '--max-inflight', '48']);
      try {
        const N = 48;
        let sub = await AckingSubscriber.connect(b.port, 5, { clientId: 'big-window', clean: true, properties: { sessionExpiryInterval: 600 } });
        await sub.subscribe('big/#', 1);
        sub.acking = false; // reads every PUBLISH, acknowledges none: all stay in flight
        const pub = await TrackingPublisher.connect(b.port, 4, { clientId: 'big-window-pub' });
        for (let n = 0; n < N; n++) await pub.publish('big/x', n, 512 * KiB, 1);
        await waitUntil(() => sub.qos12.size === N, () => `all ${N} messages in flight to the subscriber (${sub.qos12.size}; subscriber closed: ${sub.closed})`, 60000);
        sub.destroy();
        sub = await AckingSubscriber.connect(b.port, 5, { clientId: 'big-window', clean: false, properties: { sessionExpiryInterval: 600 } });
        assert.equal(sub.connack?.sessionPresent, true);
        await waitUntil(() => sub.qos12.size === N || sub.closed, () => `the ${N} in-flight messages resent (${sub.qos12.size} so far)`, 60000);
        assert.equal(sub.closed, false, 'the resend did not get the subscriber closed');
        assert.ok(sub.got.every((g) => g.dup), 'resent with DUP [MQTT-3.3.1-1]');
        assert.deepEqual([...sub.qos12], Array.from({ length: N }, (_, n) => n), 'in their original order');
        sub.destroy(); pub.destroy();
      } finally { await b.stop(); }
    });
  }
});
