// 15: many idle connections (idle connection memory). 5,000
// raw MQTT connections (half v3.1.1, half v5) on 3 workers, all CONNACKed and subscribed, most
// to an exact topic and a few through wildcards; one message then reaches every one of them
// exactly once, at QoS 0 and at QoS 1; then SIGTERM closes every connection cleanly (v5:
// DISCONNECT 0x8B) and the broker exits 0. 5,000 connections keep the test process and the
// broker well below the open-file limit (~20,000 each).
//
// RSS per idle connection is printed as a diagnostic (the target, <= 8 KiB, is measured in
// bench/, not asserted here).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IDisconnectPacket } from 'mqtt-packet';
import { mapLimit, waitUntil } from '../helpers/wait';
import { rssBytes, fdCount, crashLines } from '../helpers/proc';
import { launchBroker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';

const N = 5000;
const WORKERS = 3;
const CONNECT_CONCURRENCY = 200;

/** Filter for connection i: a few use wildcards that match `many/all`, the rest the exact topic. */
function filterFor(i: number): string {
  if (i % 500 === 1) return 'many/#';
  if (i % 500 === 2) return '+/all';
  return 'many/all';
}

describe(`${N} idle connections on ${WORKERS} workers`, () => {
  test('all CONNACKed, one message reaches each exactly once (QoS 0 and 1), clean shutdown', { timeout: 300000 }, async (t) => {
    const b = await launchBroker(WORKERS);
    const conns: RawClient[] = [];
    try {
      const rss0 = rssBytes(b.proc.pid!);
      const failures: string[] = [];
      await mapLimit(Array.from({ length: N }, (_, i) => i), CONNECT_CONCURRENCY, async (i) => {
        const v = i % 2 ? 5 : 4;
        try {
          const c = await rawSession(b.port, v, { clientId: `many-${i}`, keepalive: 600 });
          conns.push(c);
          const ack = await c.subscribe(filterFor(i), 1);
          const code = ack.granted[0];
          if (typeof code !== 'number' || code > 2) failures.push(`connection ${i}: SUBACK ${JSON.stringify(ack.granted)}`);
        } catch (err) {
          failures.push(`connection ${i} (v${v === 4 ? '3.1.1' : '5'}): ${(err as Error).message}`);
        }
      });
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${N} connections failed to connect/subscribe`);
      assert.equal(conns.length, N);
      assert.ok(b.alive(), 'broker exited while accepting connections');
      const rss1 = rssBytes(b.proc.pid!);
      const fds = fdCount(b.proc.pid!);
      t.diagnostic(`broker RSS ${(rss0 / 1048576).toFixed(0)} MB -> ${(rss1 / 1048576).toFixed(0)} MB with ${N} idle connections: ${((rss1 - rss0) / N / 1024).toFixed(1)} KiB per connection; ${fds} open fds`);
      assert.ok(fds >= N, `broker has ${fds} open fds for ${N} connections`);

      // One message to everyone, through exact and wildcard subscriptions, at QoS 0 then QoS 1.
      const pub = await rawSession(b.port, 5, { clientId: 'many-pub' });
      const copies = (c: RawClient, payload: string) => c.publishes('many/all').filter((p) => p.payload.toString() === payload).length;
      for (const [qos, payload] of [[0, 'hello-q0'], [1, 'hello-q1']] as const) {
        pub.send({ cmd: 'publish', topic: 'many/all', payload: Buffer.from(payload), qos, messageId: 1, dup: false, retain: false });
        await waitUntil(() => conns.every((c) => copies(c, payload) >= 1 || c.closed),
          () => `every connection to receive ${payload}; ${conns.filter((c) => copies(c, payload) === 0).length} of ${N} have not`, 30000, 50);
        const closed = conns.map((c, i) => (c.closed ? i : -1)).filter((i) => i >= 0);
        assert.deepEqual(closed.slice(0, 10), [], `${closed.length} idle connections were closed by the broker`);
      }
      // QoS 1 went out after QoS 0 on every connection, so any duplicate of the QoS 0 copy is in.
      const dup = conns.map((c, i) => [i, copies(c, 'hello-q0'), copies(c, 'hello-q1')]).filter(([, a, bb]) => a !== 1 || bb !== 1);
      assert.deepEqual(dup.slice(0, 10), [], `${dup.length} connections did not get exactly one copy of each message ([index, QoS 0 copies, QoS 1 copies])`);
      pub.destroy();

      // Clean shutdown with every connection still open.
      const { code, signal } = await b.signalAndWait('SIGTERM', 60000);
      assert.equal(signal, null, `broker died of ${signal} on SIGTERM`);
      assert.equal(code, 0, `exit code ${code} on SIGTERM with ${N} connections; output:\n${b.output().slice(-2000)}`);
      await waitUntil(() => conns.every((c) => c.closed), () => `all connections closed after the broker exited (${conns.filter((c) => !c.closed).length} open)`, 15000, 50);
      const noDisc = conns.filter((c) => c.version === 5)
        .filter((c) => !c.packets.some((p) => p.cmd === 'disconnect' && (p as IDisconnectPacket).reasonCode === 0x8b));
      assert.equal(noDisc.length, 0, `${noDisc.length} of ${N / 2} v5 connections got no DISCONNECT 0x8B on shutdown`);
      assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output().slice(-2000)}`);
    } finally {
      for (const c of conns) c.destroy();
      await b.kill();
    }
  });
});
