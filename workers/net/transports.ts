// TLS and WebSocket, terminated in this worker (workers/README.md, "TLS and WebSocket"): an fd
// from a TLS, WS or WSS listener becomes a net.Socket here as a TCP one does, then goes
// through a tls.Server and/or an http.Server that never listen (they are fed the socket with
// emit('connection')), and what comes out, a TLSSocket or a WsStream, becomes a Connection
// like any other. Plain TCP never comes here (Connections.adopt). The http.Server only parses
// the upgrade request: ws-upgrade.ts answers it, and ws-stream.ts frames over the socket itself.
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { BrokerConfig } from '../../src/config';
import type { ListenerSpec, TlsMaterial } from '../../src/shared/listeners';
import type { Transport } from './connection';
import { WsStream } from './ws-stream';
import { upgrade, pathOf } from './ws-upgrade';
import { C_TLS_FAILED, C_HANDSHAKE_TIMEOUT, C_WS_REFUSED } from '../../src/shared/counters';

export interface TransportsEnv {
  readonly config: BrokerConfig;
  readonly specs: readonly ListenerSpec[];
  /** Certificates by listener index (src/shared/listeners.ts). */
  readonly tls: readonly (TlsMaterial | null)[] | null;
  count(counter: number, n: number): void;
  /** A handshake finished: `t` is now an MQTT byte stream (identity: see Connection; peer: a PROXY header's client). */
  ready(t: Transport, identity: string | null, peer: string | null): void;
}

/** What this worker holds for one listener that is not plain TCP. */
interface Endpoint {
  spec: ListenerSpec;
  /** tls, wss: made once, its SecureContext replaced on SIGHUP. */
  tls: tls.Server | null;
  /** ws, wss: the HTTP side of the upgrade (its own, for its own path). */
  http: http.Server | null;
}

export class Transports {
  private readonly endpoints: (Endpoint | null)[];
  /** The largest WebSocket frame or message a client may send (larger: close 1009). */
  private readonly maxMessage: number;
  /** Sockets waiting for their WebSocket upgrade, and since when (swept: a bound in time). */
  private readonly upgrading = new Map<net.Socket, number>();
  /** The client a PROXY header named, by the socket made from the fd. */
  private readonly peers = new WeakMap<net.Socket, string>();

  constructor(private readonly env: TransportsEnv) {
    // Messages are not buffered (ws-stream.ts), so this is no memory bound; it keeps what one
    // message may hold to one packet's worth (plus a little framing), as before.
    this.maxMessage = env.config.maxPacketSize + 8;
    this.endpoints = env.specs.map((spec, i) => {
      if (spec.transport === 'tcp') return null;
      const e: Endpoint = { spec, tls: null, http: null };
      const material = env.tls?.[i];
      if (spec.tls && material) {
        const server = this.makeTlsServer(spec, material);
        if (spec.transport === 'tls') server.on('secureConnection', (t: tls.TLSSocket) => this.env.ready(t, this.identity(spec, t), this.peerOf(t)));
        else server.on('secureConnection', (t: tls.TLSSocket) => this.toHttp(e, t));
        e.tls = server;
      }
      if (spec.transport === 'ws' || spec.transport === 'wss') e.http = this.makeHttpServer(e);
      return e;
    });
  }

  private makeTlsServer(spec: ListenerSpec, m: TlsMaterial): tls.Server {
    const require = spec.tls!.requireCertificate;
    const server = tls.createServer({
      ...secureOptions(m),
      requestCert: require,
      rejectUnauthorized: require,
      handshakeTimeout: this.env.config.tlsHandshakeTimeoutMs,
    });
    // A failed handshake (wrong CA on the client's side, no or a bad client certificate, not
    // TLS at all, too slow) is counted and closed.
    // The TLSSocket is destroyed by tls.Server, but not the socket it was given (Node 20: after
    // a handshake timeout the client never saw a close and the fd stayed open), so that one is
    // destroyed here; TLSSocket keeps it as `_parent`.
    server.on('tlsClientError', (err: NodeJS.ErrnoException, t: tls.TLSSocket) => {
      this.env.count(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? C_HANDSHAKE_TIMEOUT : C_TLS_FAILED, 1);
      t.destroy();
      (t as unknown as { _parent?: net.Socket })._parent?.destroy();
    });
    return server;
  }

  private makeHttpServer(e: Endpoint): http.Server {
    const server = http.createServer();
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(e, req, socket as net.Socket, head));
    // A plain HTTP request: this is not a web server.
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.env.count(C_WS_REFUSED, 1);
      const right = pathOf(req.url) === e.spec.path;
      res.writeHead(right ? 426 : 404, { Connection: 'close', 'Content-Length': '0', ...(right ? { Upgrade: 'websocket' } : {}) });
      res.end();
    });
    return server;
  }

  /**
   * A socket of listener `listener` (net/admission.ts counted it accepted and read its PROXY
   * header, if any: `peer`, and `rest`, the bytes read after it).
   */
  adoptSocket(raw: net.Socket, peer: string | null, listener: number, rest: Buffer | null = null): void {
    if (peer !== null) this.peers.set(raw, peer);
    const e = this.endpoints[listener];
    if (e?.tls) {
      // tls.TLSSocket starts with what the socket has buffered, then reads its handle.
      if (rest !== null) raw.unshift(rest);
      e.tls.emit('connection', raw);
    } else if (e?.http) this.toHttp(e, raw, rest);
    else raw.destroy(); // a listener this worker was not configured for: cannot happen
  }

  private toHttp(e: Endpoint, s: net.Socket, rest: Buffer | null = null): void {
    this.upgrading.set(s, Date.now());
    s.once('close', () => this.upgrading.delete(s));
    e.http!.emit('connection', s);
    // The HTTP parser reads a plain socket's handle itself, past anything buffered in the
    // stream, so bytes that followed a PROXY header are given to it as the socket's 'data'
    // (its own listener), before any later byte can be read: same turn, no I/O between.
    if (rest !== null) s.emit('data', rest);
  }

  private onUpgrade(e: Endpoint, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    if (!this.upgrading.delete(socket)) { socket.destroy(); return; } // timed out meanwhile
    const u = upgrade(req, e.spec.path);
    if ('refuse' in u) {
      this.env.count(C_WS_REFUSED, 1);
      socket.end(`HTTP/1.1 ${u.refuse}\r\nConnection: close\r\n${u.headers ?? ''}Content-Length: 0\r\n\r\n`);
      return;
    }
    socket.write(u.accept);
    // Frames go out as soon as they are written, as over TCP (the fd's own TCP socket may not
    // have it set when it came through a TLSSocket).
    socket.setNoDelay(true);
    const stream = new WsStream(socket, this.maxMessage, () => this.env.count(C_WS_REFUSED, 1));
    this.env.ready(stream, socket instanceof tls.TLSSocket ? this.identity(e.spec, socket) : null, this.peerOf(socket));
    stream.start(head);
  }

  /** A PROXY header's client for this TLS socket or the socket it wraps, else null. */
  private peerOf(s: net.Socket): string | null {
    const raw = s instanceof tls.TLSSocket ? (s as unknown as { _parent?: net.Socket })._parent ?? s : s;
    return this.peers.get(raw) ?? null;
  }

  /** The certificate's CN when the listener uses it as the username ('' without one: refused at CONNECT), else null. */
  private identity(spec: ListenerSpec, t: tls.TLSSocket): string | null {
    if (!spec.tls?.identityAsUsername) return null;
    const cn = t.getPeerCertificate()?.subject?.CN;
    return typeof cn === 'string' ? cn : Array.isArray(cn) ? String(cn[0] ?? '') : '';
  }

  /** SIGHUP: new connections use `material`; open ones keep the context they were made with. */
  reload(material: readonly (TlsMaterial | null)[]): string | null {
    const errors: string[] = [];
    this.endpoints.forEach((e, i) => {
      const m = material[i];
      if (!e?.tls || !m) return;
      try { e.tls.setSecureContext(secureOptions(m)); } catch (err) { errors.push(`${e.spec.transport} port ${e.spec.port}: ${(err as Error).message}`); }
    });
    return errors.length ? errors.join('; ') : null;
  }

  /** Upgrades that did not finish within --tls-handshake-timeout-ms are closed and counted. */
  sweep(now: number): void {
    const limit = this.env.config.tlsHandshakeTimeoutMs;
    for (const [s, at] of this.upgrading) {
      if (now - at <= limit) continue;
      this.upgrading.delete(s);
      this.env.count(C_HANDSHAKE_TIMEOUT, 1);
      s.destroy();
    }
  }

  closeAll(): void {
    for (const s of this.upgrading.keys()) s.destroy();
    this.upgrading.clear();
  }
}

/** TLS 1.2 at least: 1.0 and 1.1 are deprecated (RFC 8996). */
function secureOptions(m: TlsMaterial): tls.SecureContextOptions {
  // A CRL makes OpenSSL check every client certificate against it (X509_V_FLAG_CRL_CHECK):
  // a revoked one fails the handshake.
  return { cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}), ...(m.crl ? { crl: m.crl } : {}), minVersion: 'TLSv1.2', ticketKeys: Buffer.from(m.ticketKeys, 'base64') };
}
