// Raw MQTT 3.1.1 clients for state at scale (test 14, bench/stalled-subscriber.ts, bench/offline-queue.ts):
// a QoS 1 publisher that keeps at most `window` PUBLISHes unacknowledged (so the publisher's own
// backlog is not what the broker's RSS measures), and a subscriber that never reads again.
import * as net from 'node:net';
import { encode, connectPacket } from './raw-client';

const PUBACK = 4;
const CONNACK = 2;
const SUBACK = 9;

/** A raw connection that counts the packet types it reads; `until` waits for a count, bounded. */
export class RawConn {
  readonly counts = new Array<number>(16).fill(0);
  private pending: Buffer | null = null;
  private wake: (() => void) | null = null;
  closed = false;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.count(d);
      this.wake?.();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => { this.closed = true; this.wake?.(); });
  }

  /** Counts complete frames by type; a frame split across reads waits for its rest. */
  private count(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let off = 0;
    while (off + 2 <= buf.length) {
      let len = 0, mul = 1, i = off + 1, ok = false;
      for (let k = 0; k < 4 && i < buf.length; k++, i++) { len += (buf[i] & 0x7f) * mul; mul *= 128; if ((buf[i] & 0x80) === 0) { ok = true; i++; break; } }
      if (!ok || i + len > buf.length) break;
      this.counts[buf[off] >> 4]++;
      off = i + len;
    }
    if (off < buf.length) this.pending = buf.subarray(off);
  }

  static async open(port: number, clientId: string, clean: boolean, timeoutMs = 30_000): Promise<RawConn> {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const c = new RawConn(sock);
    sock.write(encode(connectPacket(4, { clientId, clean, keepalive: 0 })));
    await c.until(CONNACK, 1, timeoutMs);
    return c;
  }

  until(type: number, n: number, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.wake = null; reject(new Error(`waited ${ms} ms for ${n} packets of type ${type}, got ${this.counts[type]}`)); }, ms);
      const check = () => {
        if (this.counts[type] >= n) { clearTimeout(t); this.wake = null; resolve(); }
        else if (this.closed) { clearTimeout(t); this.wake = null; reject(new Error('connection closed')); }
      };
      this.wake = check;
      check();
    });
  }

  async subscribe(filter: string, qos: number, ms = 30_000): Promise<void> {
    const want = this.counts[SUBACK] + 1;
    this.sock.write(encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: qos as 0 | 1 }] }));
    await this.until(SUBACK, want, ms);
  }

  close(): void { this.sock.destroy(); }
}

/** One QoS 1 PUBLISH framed by hand; the packet id is patched in per send. */
function template(topic: string, payload: Buffer): { buf: Buffer; pidAt: number } {
  const t = Buffer.from(topic, 'utf8');
  const body = 2 + t.length + 2 + payload.length;
  const len: number[] = [];
  let x = body;
  do { let d = x % 128; x = Math.floor(x / 128); if (x > 0) d |= 0x80; len.push(d); } while (x > 0);
  const b = Buffer.allocUnsafe(1 + len.length + body);
  b[0] = 0x32;
  let o = 1;
  for (const d of len) b[o++] = d;
  b.writeUInt16BE(t.length, o); o += 2;
  t.copy(b, o); o += t.length;
  const pidAt = o;
  o += 2;
  payload.copy(b, o);
  return { buf: b, pidAt };
}

/**
 * Publishes `count` QoS 1 messages on `topic` (topicOf(i) when given), at most `window`
 * unacknowledged, and resolves once every PUBACK is in. Bounded by `ms`.
 */
export async function publishQos1(port: number, count: number, topicOf: (i: number) => string, payload: Buffer, window = 1000, ms = 600_000): Promise<void> {
  const c = await RawConn.open(port, `qos1-load-${process.pid}-${Date.now()}`, true);
  try {
    const deadline = Date.now() + ms;
    const BATCH = Math.max(1, Math.min(500, window >> 1));
    let sent = 0;
    let pid = 1;
    const cache = new Map<string, { buf: Buffer; pidAt: number }>();
    while (sent < count) {
      const room = window - (sent - c.counts[PUBACK]);
      if (room < BATCH && sent - c.counts[PUBACK] > 0) {
        if (Date.now() > deadline) throw new Error(`publishing took over ${ms} ms`);
        await c.until(PUBACK, sent - window + BATCH, Math.max(1, deadline - Date.now()));
        continue;
      }
      const n = Math.min(BATCH, count - sent);
      const parts: Buffer[] = [];
      for (let k = 0; k < n; k++) {
        const topic = topicOf(sent + k);
        let tp = cache.get(topic);
        if (!tp) { tp = template(topic, payload); if (cache.size < 100_000) cache.set(topic, tp); }
        tp.buf.writeUInt16BE(pid, tp.pidAt);
        parts.push(Buffer.from(tp.buf));
        pid = pid === 65535 ? 1 : pid + 1;
      }
      sent += n;
      c.sock.write(Buffer.concat(parts));
    }
    await c.until(PUBACK, count, Math.max(1, deadline - Date.now()));
  } finally {
    c.close();
  }
}
