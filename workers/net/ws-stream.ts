// A WebSocket connection as the byte stream a Connection reads and writes (Transport in
// connection.ts), straight over the socket the upgrade came on (a net.Socket, or a TLSSocket
// for wss). MQTT over WebSocket carries a byte stream in binary frames: a packet may be split
// over frames and a frame may hold several packets [MQTT-6.0.0-2] (mqtt.js 5 sends one CONNECT
// as ~10 small frames), so each read's frames are decoded in place (ws-frames.ts) and their data
// handed on as one chunk, and the Connection frames MQTT from it as from TCP. Each Connection
// write (one per turn, coalesced: workers/README.md, "Output") is one binary frame.
//
// Not a stream.Duplex: that would put a second stream machine (its buffers, callbacks and
// events) on top of the socket's for every read and write. Reading, pausing, buffering and
// 'drain' are the socket's own; this object only frames.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { WsDecoder, encodeFrame, headerLength, writeHeader, OP_BINARY, OP_CLOSE, OP_PONG, WS_NORMAL, WS_NO_STATUS, type WsEnd } from './ws-frames';

/**
 * Up to this size a frame's header and payload are copied into one buffer and written once;
 * larger payloads are not copied: header and payload go out in one writev (cork/uncork).
 */
const COPY_MAX = 16 * 1024;
/** How long a socket we are closing may take to flush and see the peer's close before it is destroyed. */
const LINGER_MS = 2000;

export class WsStream extends EventEmitter {
  private readonly decoder: WsDecoder;
  /** A close frame went out: no data frame may follow it (RFC 6455 §5.5.1). */
  private closing = false;

  /**
   * `raw`: the socket after the upgrade's 101 response. `maxMessage`: the largest frame or
   * message accepted (larger: close 1009). `onRefused(end)`: decoding ended on a frame we refuse
   * (text: 1003, or a protocol error), for the caller to count.
   */
  constructor(private readonly raw: net.Socket, maxMessage: number, private readonly onRefused: (end: WsEnd) => void) {
    super();
    this.decoder = new WsDecoder(maxMessage, (payload) => { if (!this.closing) raw.write(encodeFrame(OP_PONG, payload)); });
  }

  /** Starts reading, first the bytes that came after the upgrade request (`head`). Call once the Connection listens. */
  start(head: Buffer): void {
    const raw = this.raw;
    raw.on('data', (chunk: Buffer) => this.onRead(chunk));
    raw.on('error', (err: Error) => { if (this.listenerCount('error') > 0) this.emit('error', err); });
    raw.on('close', () => this.emit('close'));
    raw.on('drain', () => this.emit('drain'));
    if (head.length > 0) this.onRead(head);
  }

  private onRead(chunk: Buffer): void {
    const d = this.decoder;
    if (d.end !== null) return;
    const data = d.decode(chunk);
    if (data !== null) this.emit('data', data);
    if (d.end !== null) this.ended(d.end);
  }

  /**
   * Decoding ended: a close frame is echoed (its code, §5.5.1), a refused frame answered with
   * our close code; then the server closes TCP first (§7.1.1).
   */
  private ended(e: WsEnd): void {
    if (!e.byPeer) this.onRefused(e);
    if (!this.closing) {
      this.closing = true;
      this.raw.write(closeFrame(e.byPeer && e.code === WS_NO_STATUS ? -1 : e.code));
    }
    this.raw.end();
    setTimeout(() => this.raw.destroy(), LINGER_MS).unref();
  }

  /** One binary frame. */
  write(data: Buffer): boolean {
    if (this.closing) return false;
    const raw = this.raw;
    const n = data.length;
    if (n <= COPY_MAX) {
      const f = Buffer.allocUnsafe(headerLength(n) + n);
      data.copy(f, writeHeader(f, OP_BINARY, n));
      return raw.write(f);
    }
    const h = Buffer.allocUnsafe(headerLength(n));
    writeHeader(h, OP_BINARY, n);
    raw.cork();
    raw.write(h);
    const ok = raw.write(data);
    raw.uncork();
    return ok;
  }

  /** A normal close: a close frame 1000, then our FIN; the peer's close frame is not waited for. */
  end(): this {
    if (!this.closing) {
      this.closing = true;
      this.raw.write(closeFrame(WS_NORMAL));
    }
    this.raw.end();
    return this;
  }

  override removeListener(event: string, fn: (...args: never[]) => void): this {
    return super.removeListener(event, fn as (...args: unknown[]) => void);
  }

  destroy(): this { this.raw.destroy(); return this; }
  pause(): this { this.raw.pause(); return this; }
  resume(): this { this.raw.resume(); return this; }

  /** What the socket has buffered is decoded now ('data' fires for it); null when it had nothing. */
  read(): unknown { return this.raw.read(); }

  /**
   * For a relay (net/relay.ts): every chunk written to `dest`, with its backpressure (a full
   * `dest` pauses this socket until it drains). Ending `dest` is the relay's business.
   */
  pipe<T extends NodeJS.WritableStream>(dest: T): T {
    let waiting = false;
    const drained = () => { waiting = false; this.resume(); };
    this.on('data', (chunk: Buffer) => {
      if (!dest.write(chunk) && !waiting) { waiting = true; this.pause(); dest.once('drain', drained); }
    });
    return dest;
  }

  /** The socket's: a slow consumer is held to the same high-water mark as over TCP. */
  get writableLength(): number { return this.raw.writableLength; }
  get closed(): boolean { return this.raw.closed; }
  /** Over TLS (a wss listener): what the auth callout reports as its listener. */
  get encrypted(): boolean { return this.raw instanceof tls.TLSSocket; }
  get remoteAddress(): string | undefined { return this.raw.remoteAddress; }
  get remoteFamily(): string | undefined { return this.raw.remoteFamily; }
  get remotePort(): number | undefined { return this.raw.remotePort; }
}

/** A close frame with `code`, or with no payload when `code` is -1. */
function closeFrame(code: number): Buffer {
  if (code < 0) return encodeFrame(OP_CLOSE, Buffer.alloc(0));
  const p = Buffer.allocUnsafe(2);
  p.writeUInt16BE(code, 0);
  return encodeFrame(OP_CLOSE, p);
}

