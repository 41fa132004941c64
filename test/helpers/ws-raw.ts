// WebSocket at the frame level for tests: client frames made byte by byte (masked or not, any
// opcode, 7/16/64-bit lengths, reserved bits), and a raw TCP or TLS socket that does the
// opening handshake by hand and then reads the server's frames as they are on the wire.
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { WAIT_MS, Wakeups } from './wait';

export interface FrameOpts {
  fin?: boolean;
  /** Send it unmasked (a client must not: the server closes 1002). */
  unmasked?: boolean;
  /** Force the 16- or 64-bit length form even for a short payload. */
  lengthBits?: 7 | 16 | 64;
  /** Reserved bits (0-7, as RSV1..RSV3). */
  rsv?: number;
  /** The 64-bit length to announce, when it is not the payload's (a peer lying about a huge frame). */
  announce?: number;
}

/** One client frame: `op`, `payload`, masked with a random key unless told not to. */
export function clientFrame(op: number, payload: Buffer = Buffer.alloc(0), o: FrameOpts = {}): Buffer {
  const len = o.announce ?? payload.length;
  const bits = o.lengthBits ?? (len < 126 ? 7 : len < 0x10000 ? 16 : 64);
  const head = Buffer.alloc(2 + (bits === 16 ? 2 : bits === 64 ? 8 : 0));
  head[0] = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | op;
  if (bits === 7) head[1] = len;
  else if (bits === 16) { head[1] = 126; head.writeUInt16BE(len, 2); } else { head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  if (o.unmasked) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

/** A server frame as read off the wire. */
export interface ServerFrame { fin: boolean; op: number; masked: boolean; payload: Buffer }

/** Splits `buf` into whole server frames; returns them and the bytes left over. */
export function parseServerFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let p = 0;
  for (;;) {
    if (buf.length - p < 2) break;
    const masked = (buf[p + 1] & 0x80) !== 0;
    let len = buf[p + 1] & 0x7f;
    let h = 2;
    if (len === 126) { if (buf.length - p < 4) break; len = buf.readUInt16BE(p + 2); h = 4; } else if (len === 127) {
      if (buf.length - p < 10) break;
      len = Number(buf.readBigUInt64BE(p + 2));
      h = 10;
    }
    if (masked) h += 4;
    if (buf.length - p < h + len) break;
    frames.push({ fin: (buf[p] & 0x80) !== 0, op: buf[p] & 0x0f, masked, payload: buf.subarray(p + h, p + h + len) });
    p += h + len;
  }
  return { frames, rest: buf.subarray(p) };
}

/**
 * A WebSocket client over a raw socket: `open()` does the handshake by hand, then `send` writes
 * raw bytes and `frames` collects what the server sends, frame by frame.
 */
export class RawWs {
  readonly frames: ServerFrame[] = [];
  closed = false;
  private pending = Buffer.alloc(0);
  private readonly wake = new Wakeups();

  private constructor(readonly socket: net.Socket, head: Buffer) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => { this.closed = true; this.wake.wake(); });
    socket.on('error', () => { /* 'close' follows */ });
    if (head.length > 0) this.onData(head);
  }

  /** Connects and upgrades (subprotocol mqtt); rejects with the status line when refused. */
  static open(port: number, o: { path?: string; tls?: tls.ConnectionOptions } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const s = o.tls ? tls.connect({ port, host: '127.0.0.1', ...o.tls }) : net.connect(port, '127.0.0.1');
      const key = crypto.randomBytes(16).toString('base64');
      let got = Buffer.alloc(0);
      const t = setTimeout(() => { s.destroy(); reject(new Error(`no WebSocket upgrade within ${WAIT_MS} ms`)); }, WAIT_MS);
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(t);
        s.removeListener('data', onData);
        const head = got.subarray(0, end).toString('latin1');
        const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (!/^HTTP\/1\.1 101 /.test(head)) { s.destroy(); reject(new Error(head.split('\r\n')[0])); return; }
        if (!head.includes(`Sec-WebSocket-Accept: ${want}`)) { s.destroy(); reject(new Error(`wrong Sec-WebSocket-Accept in ${head}`)); return; }
        resolve(new RawWs(s, got.subarray(end + 4)));
      };
      s.on('data', onData);
      s.once('error', (err) => { clearTimeout(t); reject(err); });
      s.once(o.tls ? 'secureConnect' : 'connect', () => {
        s.write(`GET ${o.path ?? '/mqtt'} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
          + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
      });
    });
  }

  private onData(d: Buffer): void {
    const { frames, rest } = parseServerFrames(Buffer.concat([this.pending, d]));
    this.pending = Buffer.from(rest);
    this.frames.push(...frames.map((f) => ({ ...f, payload: Buffer.from(f.payload) })));
    this.wake.wake();
  }

  send(bytes: Buffer): void { this.socket.write(bytes); }

  /** The binary frames' payloads so far, as one byte stream (the MQTT bytes). */
  data(): Buffer { return Buffer.concat(this.frames.filter((f) => f.op === 0x2).map((f) => f.payload)); }

  /** Waits until `cond` holds over the frames, or fails naming `what` and what came. */
  async until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (await this.wake.until(cond, ms)) return;
    throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${this.frames.map((f) => `op ${f.op} [${f.payload.toString('hex')}]`).join(', ') || 'no frame'}${this.closed ? ', then a close' : ''}`);
  }

  /** The first close frame's code (-1: empty close frame); waits for it. */
  async closeCode(): Promise<number> {
    await this.until(() => this.frames.some((f) => f.op === 0x8), 'a close frame');
    const p = this.frames.find((f) => f.op === 0x8)!.payload;
    return p.length >= 2 ? p.readUInt16BE(0) : -1;
  }

  destroy(): void { this.socket.destroy(); }
}
