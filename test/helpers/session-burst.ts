// Many sessions made fast: raw connections, `parallel` at a time, each sending one CONNECT
// (optionally SUBSCRIBE first, before going away) and waiting for its CONNACK (and SUBACK), then
// destroyed without a DISCONNECT, so the session goes offline and a will stays pending. Resolves
// with the time each connection was destroyed (the broker sees the close after it). Used by
// tests and by bench/. Every wait is bounded.
import * as net from 'node:net';
import type { IConnectPacket } from 'mqtt-packet';
import { encode } from './raw-client';

export interface BurstSession {
  connect: Partial<IConnectPacket> & { clientId: string };
  /** Subscribe to this filter at QoS 1 before going offline. */
  subscribe?: string;
}

function one(port: number, version: 4 | 5, s: BurstSession, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let stage = 0; // 0: want CONNACK, 1: want SUBACK
    const timer = setTimeout(() => fail(new Error(`session ${s.connect.clientId}: no ${stage === 0 ? 'CONNACK' : 'SUBACK'} within ${ms} ms`)), ms);
    const fail = (err: Error) => { clearTimeout(timer); sock.destroy(); reject(err); };
    // The time is taken before the close: the broker may see it before this thread runs again.
    const done = () => { clearTimeout(timer); const at = Date.now(); sock.destroy(); resolve(at); };
    sock.once('error', (err) => fail(err));
    sock.once('close', () => fail(new Error(`session ${s.connect.clientId}: closed by the broker`)));
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2) {
        const len = buf[1] & 0x80 ? (buf[1] & 0x7f) + 128 * buf[2] : buf[1];
        const head = buf[1] & 0x80 ? 3 : 2;
        if (buf.length < head + len) return;
        const type = buf[0] >> 4;
        if (type === 2) {
          const rc = buf[head + 1];
          if (rc !== 0) { fail(new Error(`session ${s.connect.clientId}: CONNACK ${rc}`)); return; }
          if (!s.subscribe) { sock.removeAllListeners('close'); done(); return; }
          stage = 1;
        } else if (type === 9) { sock.removeAllListeners('close'); done(); return; }
        buf = buf.subarray(head + len);
      }
    });
    sock.once('connect', () => {
      const parts = [encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, keepalive: 0, clean: true, ...s.connect } as IConnectPacket, version)];
      if (s.subscribe) parts.push(encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: s.subscribe, qos: 1 }] }, version));
      sock.write(Buffer.concat(parts));
    });
  });
}

/** Makes sessions 0..n-1 (`sessionOf(i)`); returns when each one's connection was destroyed. */
export async function burstSessions(port: number, version: 4 | 5, n: number, sessionOf: (i: number) => BurstSession, parallel = 64, msEach = 60_000): Promise<Float64Array> {
  const at = new Float64Array(n);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) at[i] = await one(port, version, sessionOf(i), msEach);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, lane));
  return at;
}
