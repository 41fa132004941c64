// Loads a broker with many retained messages fast: raw MQTT 3.1.1 connections, QoS 0 PUBLISH
// packets framed by hand and written in large batches (an mqtt.js client spends ~10 µs per
// message; this ~0.2). Each connection ends with a PINGREQ: its PINGRESP means the broker has
// read every PUBLISH before it, in order [MQTT-4.6.0-1]. Used by tests and by bench/.
import * as net from 'node:net';
import { encode, connectPacket } from './raw-client';

/** One QoS 0 PUBLISH with RETAIN 1, framed by hand (no mqtt-packet on a million-message path). */
export function retainedPublish(topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const body = 2 + t.length + payload.length;
  const len: number[] = [];
  let x = body;
  do { let d = x % 128; x = Math.floor(x / 128); if (x > 0) d |= 0x80; len.push(d); } while (x > 0);
  const b = Buffer.allocUnsafe(1 + len.length + body);
  b[0] = 0x31; // PUBLISH, QoS 0, RETAIN 1
  let o = 1;
  for (const d of len) b[o++] = d;
  b.writeUInt16BE(t.length, o); o += 2;
  t.copy(b, o); o += t.length;
  payload.copy(b, o);
  return b;
}

function waitFor(sock: net.Socket, want: number, what: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no ${what} within ${ms} ms`)), ms);
    const onData = (d: Buffer) => { if (d.includes(want)) done(); };
    const onClose = () => done(new Error(`connection closed before ${what}`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      if (err) reject(err); else resolve();
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

/**
 * Publishes retained message `i` for every i in [0, count) on `connections` raw connections
 * (connection k takes i ≡ k mod connections), `topicOf(i)` and `payloadOf(i)`, and resolves
 * once the broker has read them all. Bounded by `ms`.
 */
export async function publishRetainedBulk(port: number, count: number, topicOf: (i: number) => string,
  payloadOf: (i: number) => Buffer, connections = 2, ms = 600_000): Promise<void> {
  const one = async (k: number) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    try {
      await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
      const connack = waitFor(sock, 0x20, 'CONNACK', ms);
      sock.write(encode(connectPacket(4, { clientId: `bulk-${process.pid}-${k}-${Date.now()}` })));
      await connack;
      const BATCH = 2000;
      for (let i = k; i < count;) {
        const parts: Buffer[] = [];
        for (let n = 0; n < BATCH && i < count; n++, i += connections) parts.push(retainedPublish(topicOf(i), payloadOf(i)));
        if (!sock.write(Buffer.concat(parts))) {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`broker stopped reading for ${ms} ms`)), ms);
            sock.once('drain', () => { clearTimeout(t); resolve(); });
          });
        }
      }
      const pong = waitFor(sock, 0xd0, 'PINGRESP after the last PUBLISH', ms);
      sock.write(Buffer.from([0xc0, 0x00]));
      await pong;
      sock.end(Buffer.from([0xe0, 0x00]));
    } finally {
      sock.destroy();
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, k) => one(k)));
}
