// The first steps of an fd the main thread handed over: a socket made from it, counted open on
// its listener until it closes (src/shared/open-connections.ts), and, on a PROXY protocol
// listener, the header read before anything else (before TLS too: the load balancer writes it
// first). Then the socket goes on: plain TCP to Connections, TLS / WebSocket to Transports.
import * as net from 'node:net';
import type { BrokerConfig } from '../../src/config';
import type { ListenerSpec } from '../../src/shared/listeners';
import { OpenConnections } from '../../src/shared/open-connections';
import { AddressList } from '../../src/shared/cidr';
import { parseProxyHeader, NEED_MORE, BAD, PROXY_MAX_BYTES } from '../protocol/proxy-protocol';
import { C_ACCEPTED, C_CONNECTIONS_TOTAL, C_PROXY_REFUSED } from '../../src/shared/counters';
import { plainSocket } from './plain-read';

export interface AdmissionEnv {
  readonly index: number;
  readonly config: BrokerConfig;
  readonly specs: readonly ListenerSpec[];
  readonly open: OpenConnections;
  count(counter: number, n: number): void;
  /** A plain TCP socket, ready for MQTT (paused when a PROXY header was read). */
  tcp(socket: net.Socket, peer: string | null, listener: number): void;
  /** A TLS / WebSocket listener's socket, ready for its handshake; `rest`: bytes read after a PROXY header. */
  other(socket: net.Socket, peer: string | null, listener: number, rest: Buffer | null): void;
}

const noop = (): void => { /* 'close' follows */ };

export class Admission {
  /** Trusted PROXY senders by listener index (null: no PROXY protocol there). */
  private readonly trusted: (AddressList | null)[];

  constructor(private readonly env: AdmissionEnv) {
    this.trusted = env.specs.map((s) => (s.proxyTrusted ? new AddressList(s.proxyTrusted) : null));
  }

  /** An fd from the accept ring, counted open on `listener` by the main thread. */
  adopt(fd: number, listener: number): void {
    const env = this.env;
    env.count(C_ACCEPTED, 1);
    env.count(C_CONNECTIONS_TOTAL, 1);
    const trusted = this.trusted[listener] ?? null;
    const spec = env.specs[listener];
    let socket: net.Socket;
    try {
      // Plain TCP straight to MQTT reads into the worker's buffer (net/plain-read.ts); a PROXY
      // header, TLS and WebSocket read the socket as a stream.
      socket = trusted === null && (spec === undefined || spec.transport === 'tcp') ? plainSocket(fd) : new net.Socket({ fd, readable: true, writable: true });
    } catch {
      env.open.add(env.index, listener, -1);
      return;
    }
    socket.setNoDelay(true);
    this.track(socket, listener);
    if (trusted !== null) this.readProxy(socket, listener, trusted);
    else this.next(socket, null, listener);
  }

  /** `socket` counts open on `listener` (of this worker's row) until it closes. */
  track(socket: net.Socket, listener: number): void {
    if (listener < 0) return;
    socket.once('close', () => this.env.open.add(this.env.index, listener, -1));
  }

  private next(socket: net.Socket, peer: string | null, listener: number, rest: Buffer | null = null): void {
    const spec = this.env.specs[listener];
    if (spec === undefined || spec.transport === 'tcp') {
      // A Connection reads the socket as a stream: what came after the header is read first.
      if (rest !== null) socket.unshift(rest);
      this.env.tcp(socket, peer, listener);
    } else this.env.other(socket, peer, listener, rest);
  }

  /**
   * The PROXY header: only from a trusted sender, at most PROXY_MAX_BYTES, within
   * --tls-handshake-timeout-ms; anything else closes the connection, counted. What follows the
   * header goes to the next stage with the socket.
   */
  private readProxy(socket: net.Socket, listener: number, trusted: AddressList): void {
    const count = this.env.count;
    socket.on('error', noop);
    if (!trusted.has(socket.remoteAddress)) { count(C_PROXY_REFUSED, 1); socket.destroy(); return; }
    let got: Buffer | null = null;
    const fail = (): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      count(C_PROXY_REFUSED, 1);
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      got = got === null ? chunk : Buffer.concat([got, chunk]);
      const r = parseProxyHeader(got);
      if (r === NEED_MORE) { if (got.length >= PROXY_MAX_BYTES) fail(); return; }
      if (r === BAD) { fail(); return; }
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      const peer = r.address === null ? null : r.family === 'IPv6' ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`;
      this.next(socket, peer, listener, r.consumed < got.length ? got.subarray(r.consumed) : null);
    };
    const timer = setTimeout(fail, this.env.config.tlsHandshakeTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.on('data', onData);
  }
}
