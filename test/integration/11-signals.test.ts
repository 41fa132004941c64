// 11: SIGTERM / SIGINT shut the broker down cleanly (CLI): it stops accepting, every
// MQTT 5 client receives DISCONNECT with reason 0x8B (server shutting down) before its
// connection closes, every MQTT 3.1.1 client sees its connection closed (3.1.1 servers send no
// DISCONNECT), and the process exits with code 0. Run with 1 and 3 workers, clients spread
// across workers.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { IDisconnectPacket } from 'mqtt-packet';
import { within } from '../helpers/wait';
import { crashLines } from '../helpers/proc';
import { launchBroker, Broker } from '../helpers/broker';
import { rawSession, RawClient } from '../helpers/raw-client';

const CLIENTS_PER_VERSION = 6;

/** A new TCP connection + CONNECT must not be served once shutdown has started. */
async function probeAfterShutdownStarted(b: Broker): Promise<string> {
  let c: RawClient;
  try {
    c = await RawClient.connect(b.port, 4);
  } catch (err) {
    return `refused (${(err as NodeJS.ErrnoException).code})`;
  }
  c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'late' });
  // Either the connection closes without a successful CONNACK, or the broker is gone.
  const closed = await c.waitClosed(15000);
  const ack = c.packets.find((p) => p.cmd === 'connack') as { returnCode?: number } | undefined;
  c.destroy();
  if (ack && ack.returnCode === 0) return 'ACCEPTED';
  return closed ? 'closed' : 'hung';
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  for (const workers of [1, 3]) {
    describe(`${sig} with --workers ${workers}`, () => {
      test('stops accepting, v5 clients get DISCONNECT 0x8B, v3.1.1 connections close, exit code 0', { timeout: 120000 }, async () => {
        const b = await launchBroker(workers);
        try {
          const v5: RawClient[] = [];
          const v4: RawClient[] = [];
          // Sequential connects on a fresh broker: least-loaded placement spreads them over the workers.
          for (let i = 0; i < CLIENTS_PER_VERSION; i++) {
            v5.push(await rawSession(b.port, 5, { clientId: `sig5-${i}`, keepalive: 60 }));
            v4.push(await rawSession(b.port, 4, { clientId: `sig4-${i}`, keepalive: 60 }));
          }
          // A subscription each, so sessions hold state while the broker shuts down.
          await Promise.all([...v5, ...v4].map((c, i) => c.subscribe(`sig/${i}`, 1)));

          b.proc.kill(sig);
          // Shutdown has begun once the first v5 client sees its DISCONNECT.
          const firstDisc = await within(
            Promise.race(v5.map((c) => c.waitFor((p) => p.cmd === 'disconnect', 'DISCONNECT', 20000))),
            20000, `no v5 client got a DISCONNECT within 20 s of ${sig}`);
          const late = await probeAfterShutdownStarted(b);
          assert.notEqual(late, 'ACCEPTED', `a connection made after ${sig} was accepted with CONNACK 0 (broker did not stop accepting)`);
          assert.notEqual(late, 'hung', `a connection made after ${sig} stayed open 15 s without being served or closed`);
          assert.ok(firstDisc);

          const { code, signal } = await b.waitExit(20000);
          assert.equal(signal, null, `broker died of signal ${signal} instead of exiting after ${sig}; output:\n${b.output()}`);
          assert.equal(code, 0, `exit code ${code} after ${sig}; output:\n${b.output()}`);

          for (const [i, c] of v5.entries()) {
            assert.ok(await c.waitClosed(5000), `v5 client ${i}: connection still open after the broker exited`);
            const disc = c.packets.filter((p) => p.cmd === 'disconnect') as IDisconnectPacket[];
            assert.equal(disc.length, 1, `v5 client ${i}: expected exactly one DISCONNECT, got ${disc.length}`);
            assert.equal(disc[0].reasonCode, 0x8b, `v5 client ${i}: DISCONNECT reason 0x${(disc[0].reasonCode ?? 0).toString(16)}, expected 0x8b (server shutting down)`);
            assert.equal(c.parseError, undefined, `v5 client ${i}: broker sent bytes that do not parse: ${c.parseError?.message}`);
          }
          for (const [i, c] of v4.entries()) {
            assert.ok(await c.waitClosed(5000), `v3.1.1 client ${i}: connection still open after the broker exited`);
            assert.ok(!c.packets.some((p) => p.cmd === 'disconnect'), `v3.1.1 client ${i}: got a DISCONNECT packet (servers never send one in 3.1.1)`);
            assert.equal(c.parseError, undefined, `v3.1.1 client ${i}: broker sent bytes that do not parse: ${c.parseError?.message}`);
          }
          assert.deepEqual(crashLines(b.output()), [], `crash lines in the broker output:\n${b.output()}`);
          // Nothing listens on the port any more.
          const refused = await new Promise<boolean>((resolve) => {
            const s = net.connect(b.port, '127.0.0.1');
            s.once('connect', () => { s.destroy(); resolve(false); });
            s.once('error', () => resolve(true));
          });
          assert.ok(refused, 'the port still accepts TCP connections after the broker exited');
        } finally {
          await b.kill();
        }
      });
    });
  }
}

describe('shutdown with no clients', () => {
  test('SIGTERM on an idle broker exits 0', { timeout: 120000 }, async () => {
    const b = await launchBroker(3);
    try {
      const { code, signal } = await b.signalAndWait('SIGTERM', 20000);
      assert.equal(signal, null, `died of ${signal}`);
      assert.equal(code, 0, `exit code ${code}; output:\n${b.output()}`);
    } finally { await b.kill(); }
  });
});
