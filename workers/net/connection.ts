// One client connection: socket, framing, coalesced output, protocol state. The worker owns
// it end to end (workers/README.md, "Threads"); handlers/ decide what each packet means.
import type { BrokerConfig } from '../../src/config';
import type { Session } from '../session/session';
import type { Will } from '../session/will';
import type { AckOrder } from '../routing/ack-order';
import type { StoreWait } from '../persist/durable-routing';
import type { ConnAuthz } from '../auth/acl-gate';
import type { TransportName } from '../../src/shared/messages';
import { readVarint } from '../protocol/varint';
import { DISCONNECT, RC } from '../protocol/constants';
import type { ClientRate } from './client-rate';
import { C_BYTES_RECEIVED, C_BYTES_SENT, C_DROPPED_SLOW_QOS0, C_CLOSED_UNREAD } from '../../src/shared/counters';
import { DR } from '../../src/shared/disconnect-reasons';
import { limitedLog } from '../../src/log/thread';
import { reasonOfCode } from './close-reason';
import { attachReads } from './plain-read';

export const enum ConnState { NEW, CONNECTING, CONNECTED, CLOSED }

/**
 * What a connection uses of its byte stream. A plain TCP connection's is the `net.Socket` made
 * from its fd, used directly; a TLS connection's is the `tls.TLSSocket` over it; a WebSocket
 * connection's is a `WsStream` (ws-stream.ts) that turns binary frames into this byte stream.
 */
export interface Transport {
  on(event: 'data', fn: (chunk: Buffer) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'close' | 'drain', fn: () => void): this;
  once(event: 'close', fn: () => void): this;
  removeListener(event: string, fn: (...args: never[]) => void): this;
  pause(): this;
  resume(): this;
  read(): unknown;
  write(data: Buffer): boolean;
  end(): this;
  destroy(): this;
  readonly writableLength: number;
  readonly closed: boolean;
  readonly remoteAddress?: string;
  readonly remoteFamily?: string;
  readonly remotePort?: number;
}

const vi = { len: 0 };

/** What a connection needs of the worker around it. */
export interface ConnectionEnv {
  readonly config: BrokerConfig;
  count(counter: number, n: number): void;
  /** Handles one complete frame (handlers/dispatch.ts). */
  dispatch(c: Connection, first: number, buf: Buffer, frameStart: number, start: number, end: number): void;
  /**
   * A read chunk of `bytes` is processed. What it batched is routed at the turn's end with the
   * other connections' (routing/router.ts), or earlier if the batch holds too much.
   */
  endOfRead(bytes: number): void;
  /** The connection has output for this turn's write. */
  markDirty(c: Connection): void;
  /** The connection is closed (or lives on in another worker). */
  closed(c: Connection): void;
}

export class Connection {
  state = ConnState.NEW;
  /** 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0. */
  version = 4;
  session: Session | null = null;
  clientId = '';
  /** From CONNECT (or the certificate's CN); for the admin API and the banned list. */
  username: string | null = null;
  /** ms since the epoch when the CONNACK went (0 before), for the admin API. */
  connectedAt = 0;
  keepaliveMs = 0;
  lastRecv = Date.now();
  will: Will | null = null;
  /**
   * What the ACL lets this client read and write (auth/acl-gate.ts, and auth/client-acl.ts for
   * rules its authentication came with); null without either, or for a superuser.
   */
  acl: ConnAuthz | null = null;
  /** The listener that counts this connection open (src/shared/open-connections.ts), -1: none (a relay's end). */
  listener = -1;
  /** The client's address when the socket's peer is not it (PROXY protocol, relays), else null: see address(). */
  peer: string | null = null;
  /** A relay's end: the transport the client uses on the worker that relays it; null: this socket's own. */
  transport: TransportName | null = null;
  /** --max-client-msg-rate / --max-client-byte-rate (net/client-rate.ts); null without them. */
  rate: ClientRate | null = null;
  /** Set when its JWT expires: closes the connection then (auth/token-expiry.ts); null otherwise. */
  expiryTimer: NodeJS.Timeout | null = null;
  /** Set when the client sent DISCONNECT 0x00: the will is discarded [MQTT-3.14.4-3]. */
  normalDisconnect = false;
  /** For logs and metrics: why it ended (-1: not yet); username and connectedAt are above. */
  closeReason = -1;

  /** v5 limits the client announced in CONNECT. */
  clientReceiveMax = 65535;
  clientMaxPacket = 0;
  clientAliasMax = 0;
  inAliases: Map<number, Buffer> | null = null;
  outAliases: Map<string, number> | null = null;
  /** Store requests this connection's PUBLISHes wait for (persist/), from the first one on. */
  storeWait: StoreWait | null = null;
  /** Acknowledgements queued behind one that waits for the store (routing/ack-order.ts). */
  ackOrder: AckOrder | null = null;

  private partial: Buffer | null = null;
  /** Bytes that arrived while CONNECT was being decided (the socket is paused meanwhile). */
  private held: Buffer | null = null;
  private out: Buffer[] = [];
  private outBytes = 0;
  dirty = false;

  /**
   * `plain`: `socket` is a net.Socket over an fd of this worker's (TCP, or a relay's end), so
   * moving the connection is moving the fd. `identity`: the client certificate's CN with
   * --use-identity-as-username ('' when it has none), else null.
   */
  constructor(readonly socket: Transport, private readonly env: ConnectionEnv, readonly plain = true, readonly identity: string | null = null) {
    // A plain socket made by net/plain-read.ts hands its reads over directly; others emit 'data'.
    if (!(plain && attachReads(socket, this.handlers.data))) socket.on('data', this.handlers.data);
    socket.on('error', this.handlers.error);
    socket.on('close', this.handlers.close);
    socket.on('drain', this.handlers.drain);
  }

  /** Kept so that a relay can take the transport over (detachTransport) and leave Node's own listeners alone. */
  private readonly handlers = {
    data: (chunk: Buffer) => this.onData(chunk),
    error: () => { /* 'close' follows; errors are a client's business */ },
    close: () => this.onClose(),
    drain: () => this.session?.onDrain(),
  };

  get v5(): boolean { return this.version === 5; }

  /** The client's address and port, for logs: "a.b.c.d:port", "[v6]:port" or "unknown address". */
  address(): string {
    if (this.peer !== null) return this.peer;
    const s = this.socket;
    if (!s.remoteAddress) return 'unknown address';
    return s.remoteFamily === 'IPv6' ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
  }

  private onData(chunk: Buffer): void {
    this.env.count(C_BYTES_RECEIVED, chunk.length);
    this.lastRecv = Date.now();
    if (this.state === ConnState.CONNECTING) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
      return;
    }
    if (this.rate !== null) this.rate.refill(this.lastRecv);
    this.consume(chunk);
  }

  /** The client's rates allow more again (net/client-rate.ts): process what waited, read on. */
  private rateResume(): void {
    if (this.state !== ConnState.CONNECTED) return;
    this.rate!.refill(Date.now());
    const waiting = this.partial;
    this.partial = null;
    if (waiting !== null) this.consume(waiting);
    if ((this.state as ConnState) === ConnState.CONNECTED && !this.rate!.paused) this.socket.resume();
  }

  /** Splits `chunk` (plus any partial frame) into frames and dispatches each. */
  private consume(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial) { buf = Buffer.concat([this.partial, chunk]); this.partial = null; }
    let pos = 0;
    const end = buf.length;
    const maxPacket = this.env.config.maxPacketSize;
    const rate = this.rate;
    let throttled = false;
    while (pos < end && this.state !== ConnState.CLOSED && this.state !== ConnState.CONNECTING) {
      if (end - pos < 2) break;
      const len = readVarint(buf, pos + 1, end, vi);
      if (len === -2) { this.protocolClose(RC.MALFORMED_PACKET); return; }
      if (len === -1) break;
      const bodyStart = pos + 1 + vi.len;
      if (bodyStart - pos + len > maxPacket) { this.protocolClose(RC.PACKET_TOO_LARGE); return; }
      if (bodyStart + len > end) break;
      // Over the client's rate: this frame and the rest wait (in `partial`) and reading pauses.
      if (rate !== null && this.state === ConnState.CONNECTED && !rate.take(buf[pos], bodyStart - pos + len)) { throttled = true; break; }
      this.env.dispatch(this, buf[pos], buf, pos, bodyStart, bodyStart + len);
      pos = bodyStart + len;
    }
    this.env.endOfRead(end);
    if (this.state === ConnState.CLOSED) return;
    if (this.state === ConnState.CONNECTING) {
      if (pos < end) this.held = buf.subarray(pos);
      return;
    }
    if (pos < end) this.partial = buf.subarray(pos);
    if (throttled) {
      this.socket.pause();
      rate!.pause(() => this.rateResume());
    }
  }

  /** The CONNECT frame, kept while it is being decided in case the connection moves. */
  connectFrame: Buffer | null = null;

  /**
   * Everything this connection has read and not processed, from its CONNECT on: what the
   * worker that owns the session must replay after the move.
   */
  takeReplayBytes(): Buffer {
    while (this.socket.read() !== null) { /* 'data' fires and appends to held */ }
    const parts = [this.connectFrame ?? Buffer.alloc(0)];
    if (this.held) parts.push(this.held);
    this.connectFrame = null;
    this.held = null;
    return Buffer.concat(parts);
  }

  /** The connection lives on in another worker (its fd was duplicated): drop this side quietly. */
  detachSocket(): void {
    this.state = ConnState.CLOSED;
    this.out.length = 0;
    this.socket.destroy();
    this.env.closed(this);
  }

  /**
   * The connection lives on in another worker through a relay (workers/net/relay.ts): this side
   * stops being a connection without closing the transport, which the relay takes.
   */
  detachTransport(): Transport {
    this.state = ConnState.CLOSED;
    this.out.length = 0;
    const h = this.handlers;
    this.socket.removeListener('data', h.data).removeListener('error', h.error).removeListener('close', h.close).removeListener('drain', h.drain);
    this.env.closed(this);
    return this.socket;
  }

  /** Bytes another worker read from this connection before moving it here. */
  inject(bytes: Buffer): void {
    this.lastRecv = Date.now();
    if (bytes.length > 0) this.consume(bytes);
  }

  /** CONNECT decided: process what arrived meanwhile and read on. */
  resume(): void {
    if (this.state === ConnState.CLOSED) return;
    this.connectFrame = null;
    const held = this.held;
    this.held = null;
    if (held) this.consume(held);
    if ((this.state as ConnState) !== ConnState.CLOSED && !(this.rate !== null && this.rate.paused)) this.socket.resume();
  }

  /** Queues bytes for this turn's single write (workers/README.md, "Output"). */
  write(buf: Buffer): void {
    if (this.state === ConnState.CLOSED) return;
    this.out.push(buf);
    this.outBytes += buf.length;
    if (!this.dirty) { this.dirty = true; this.env.markDirty(this); }
  }

  /** Over the high-water mark: a slow consumer (QoS 0 to it is dropped, QoS 1/2 queue). */
  get congested(): boolean {
    return this.outBytes + this.socket.writableLength > this.env.config.outputHighWater;
  }

  dropSlow(): void {
    this.env.count(C_DROPPED_SLOW_QOS0, 1);
    limitedLog().warn('dropped-slow-consumer', 'message dropped: QoS 0 to a slow consumer (--output-high-water)', () => ({ clientId: this.clientId, username: this.username, address: this.address }));
  }

  /** The first reason given is the one that counts (a close after a DISCONNECT is still the client's). */
  endReason(r: number): void { if (this.closeReason < 0) this.closeReason = r; }

  /**
   * tcp, tls or websocket: this socket's own, for logs and the transport gauges (a relay's end
   * counts as tcp). It never changes over the connection's life, so the gauge a connection
   * raised is the one its close lowers.
   */
  get kind(): string {
    if (this.plain) return 'tcp';
    const name = (this.socket as object).constructor?.name;
    return name === 'TLSSocket' ? 'tls' : 'websocket';
  }

  flush(): void {
    this.dirty = false;
    const n = this.out.length;
    if (n === 0 || this.state === ConnState.CLOSED) { this.out.length = 0; this.outBytes = 0; return; }
    if (this.outBytes + this.socket.writableLength > this.outputLimit) { this.abandon(); return; }
    const data = n === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.env.count(C_BYTES_SENT, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.socket.write(data);
    // 'drain' comes only after a write() that returned false. When this turn's own output was
    // what passed the high-water mark and the kernel has just taken it all, no 'drain' will
    // come: what the session holds back must move now, or it waits forever.
    const s = this.session;
    if (s !== null && s.backlogged && !this.congested) s.pump();
  }

  /**
   * Deliveries stop at the high-water mark (QoS 0 dropped, QoS 1/2 queued), so what a connection
   * buffers past it is at most one message of each kind in flight; but the replies to what a
   * client sends (PINGRESP, PUBACK, SUBACK...) are written whatever its socket holds. A client
   * that keeps sending and never reads would grow them without bound: past this limit, which no
   * delivery can reach, the connection is closed and counted.
   */
  private get outputLimit(): number {
    const cfg = this.env.config;
    return cfg.outputHighWater + 2 * cfg.maxPacketSize;
  }

  /** The client does not read: nothing more is written, the socket is destroyed (its will goes). */
  private abandon(): void {
    this.env.count(C_CLOSED_UNREAD, 1);
    this.endReason(DR.output_limit);
    this.out = [];
    this.outBytes = 0;
    this.state = ConnState.CLOSED;
    this.socket.destroy();
    this.env.closed(this);
  }

  /** v5: DISCONNECT with `reason`, then close; v3: just close [MQTT-4.13.1-1]. */
  protocolClose(reason: number): void {
    if (this.state === ConnState.CLOSED) return;
    this.endReason(reasonOfCode(reason));
    if (this.v5 && this.state === ConnState.CONNECTED) this.write(disconnectPacket(reason));
    this.close();
  }

  close(): void {
    if (this.state === ConnState.CLOSED) return;
    this.flush();
    this.state = ConnState.CLOSED;
    this.socket.end();
    // A peer that never reads must not keep the fd open: give the FIN a moment, then destroy.
    // Cleared at 'close': a timer left to run would keep every connection closed in the last
    // 2 s alive, and under churn they outlive the young generation (old-space collections).
    const t = setTimeout(() => this.socket.destroy(), 2000).unref();
    this.socket.once('close', () => clearTimeout(t));
    this.env.closed(this);
  }

  private onClose(): void {
    if (this.state !== ConnState.CLOSED) {
      this.endReason(DR.connection_lost);
      this.state = ConnState.CLOSED;
      this.out.length = 0;
      this.env.closed(this);
    }
  }
}

export function disconnectPacket(reason: number): Buffer {
  return Buffer.from([DISCONNECT << 4, 2, reason, 0]);
}
