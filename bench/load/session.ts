// Opens one MQTT connection: TCP connect, CONNECT/CONNACK, then SUBSCRIBE/SUBACK for a
// subscriber. Every step is bounded by one deadline so a broker that stalls fails the cell
// instead of hanging the run.
import * as net from 'node:net';
import { Framer, FrameSink } from './framer';
import { encodeConnect, encodeSubscribe, MqttVersion, PacketType } from './protocol';

export interface Session {
  socket: net.Socket;
  framer: Framer;
  /** v5 CONNACK Receive Maximum, 65535 when absent (and for v3.1.1). */
  receiveMaximum: number;
}

export interface SessionOptions {
  host: string;
  port: number;
  clientId: string;
  version: MqttVersion;
  filters: readonly string[];
  qos: number;
  timeoutMs: number;
  keepAlive?: number;
  /** Clean Session 0 (v3.1.1) / Clean Start 0 with a Session Expiry of an hour (v5): a session the broker keeps. */
  persistent?: boolean;
}

// Byte sizes of v5 property values by id (0 = UTF-8 string / binary with a 2-byte length,
// -1 = variable byte integer, -2 = string pair).
const PROPERTY_SIZE: Record<number, number> = {
  0x01: 1, 0x02: 4, 0x03: 0, 0x08: 0, 0x09: 0, 0x0b: -1, 0x11: 4, 0x12: 0, 0x13: 2, 0x15: 0, 0x16: 0,
  0x17: 1, 0x18: 4, 0x19: 1, 0x1a: 0, 0x1c: 0, 0x1f: 0, 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1,
  0x26: -2, 0x27: 4, 0x28: 1, 0x29: 1, 0x2a: 1,
};

function readReceiveMaximum(buf: Buffer, start: number, end: number): number {
  let len = 0;
  let mul = 1;
  let p = start;
  for (let i = 0; i < 4 && p < end; i++) {
    const b = buf[p++];
    len += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) break;
  }
  const stop = Math.min(end, p + len);
  while (p < stop) {
    const id = buf[p++];
    const size = PROPERTY_SIZE[id];
    if (size === undefined) return 65535;
    if (id === 0x21) return buf.readUInt16BE(p);
    if (size > 0) p += size;
    else if (size === 0) p += 2 + buf.readUInt16BE(p);
    else if (size === -2) { p += 2 + buf.readUInt16BE(p); p += 2 + buf.readUInt16BE(p); }
    else { while (buf[p++] & 0x80) { /* skip varint */ } }
  }
  return 65535;
}

class SetupSink implements FrameSink {
  receiveMaximum = 65535;
  constructor(private readonly version: MqttVersion, private readonly onStep: (err: Error | null, type: number) => void) {}

  onFrame(buf: Buffer, firstByte: number, start: number, end: number): void {
    const type = firstByte >> 4;
    if (type === PacketType.CONNACK) {
      const code = buf[start + 1];
      if (code !== 0) return this.onStep(new Error(`CONNACK refused, code ${code}`), type);
      if (this.version === 5 && end > start + 2) this.receiveMaximum = readReceiveMaximum(buf, start + 2, end);
      return this.onStep(null, type);
    }
    if (type === PacketType.SUBACK) {
      let p = start + 2;
      if (this.version === 5) p += 1 + buf[p]; // property length < 128 in practice for SUBACK
      for (; p < end; p++) if (buf[p] >= 0x80) return this.onStep(new Error(`SUBACK refused a filter, code ${buf[p]}`), type);
      return this.onStep(null, type);
    }
    if (type === PacketType.DISCONNECT) this.onStep(new Error('broker sent DISCONNECT during setup'), type);
  }
}

export function openSession(o: SessionOptions): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port, noDelay: true });
    const framer = new Framer();
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (err) { socket.destroy(); reject(err); return; }
      resolve({ socket, framer, receiveMaximum: sink.receiveMaximum });
    };
    const sink = new SetupSink(o.version, (err, type) => {
      if (err) return finish(err);
      if (type === PacketType.CONNACK && o.filters.length > 0) socket.write(encodeSubscribe(1, o.filters, o.qos, o.version));
      else finish(null);
    });
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new Error('connection closed during setup'));
    const timer = setTimeout(() => finish(new Error(`setup of ${o.clientId} timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('data', (chunk: Buffer) => {
      try { framer.push(chunk, sink); } catch (err) { finish(err as Error); }
    });
    socket.on('connect', () => socket.write(encodeConnect(o.clientId, o.version, o.keepAlive ?? 0, !o.persistent, o.persistent ? 3600 : 0)));
  });
}
