// A WebSocket connection as the byte stream a Connection reads and writes (Transport in
// connection.ts). MQTT over WebSocket carries a byte stream in binary frames: a packet may be
// split over frames and a frame may hold several packets [MQTT-6.0.0-2] (mqtt.js 5 sends one
// CONNECT as ~10 small frames), so each binary message's bytes are pushed on as they come
// and the Connection frames MQTT from them as from TCP. Any other data frame closes the
// connection [MQTT-6.0.0-1] with 1003 "unsupported data" (RFC 6455 §7.4.1).
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { WebSocket, RawData } from 'ws';

const UNSUPPORTED_DATA = 1003;

export class WsStream extends Duplex {
  /**
   * `raw`: the socket under the WebSocket (TCP or TLS), for the client's address.
   * `onText`: a text frame arrived (counted by the caller).
   */
  /** Over TLS (a wss listener): what the auth callout reports as its listener. */
  get encrypted(): boolean { return this.raw instanceof tls.TLSSocket; }

  constructor(private readonly ws: WebSocket, private readonly raw: net.Socket, onText: () => void) {
    super({ allowHalfOpen: false });
    let refused = false;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (refused) return;
      if (!isBinary) {
        refused = true;
        onText();
        ws.close(UNSUPPORTED_DATA, 'MQTT needs binary frames');
        this.push(null);
        return;
      }
      // Backpressure: a reader that is behind pauses the WebSocket (and so its socket) until
      // _read asks for more; what ws buffers meanwhile is bounded by maxPayload per message.
      if (!this.push(data as Buffer)) ws.pause();
    });
    ws.on('close', () => { this.push(null); this.destroy(); });
    ws.on('error', () => this.destroy());
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  /** One binary frame per write: a Connection writes once per turn (workers/README.md, "Output"). */
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    // `done` runs when the socket has taken the frame, so writableLength (the high-water mark
    // of a slow consumer) counts what waits behind the socket too.
    this.ws.send(chunk, { binary: true }, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.ws.close(1000);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // After a close frame was sent this ends the TCP connection at once instead of waiting for
    // the client's close frame; a Connection only destroys after its own grace period.
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
    done(err);
  }

  get remoteAddress(): string | undefined { return this.raw.remoteAddress; }
  get remoteFamily(): string | undefined { return this.raw.remoteFamily; }
  get remotePort(): number | undefined { return this.raw.remotePort; }
}
