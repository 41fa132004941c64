// The connections this worker owns: made from the file descriptors the main thread hands over
// (or another worker moves here), swept for keep-alive and CONNECT timeouts, closed on shutdown.
import type * as net from 'node:net';
import { plainSocket } from './plain-read';
import { Connection, ConnState, type ConnectionEnv, type Transport } from './connection';
import { RC } from '../protocol/constants';
import { ClientRate } from './client-rate';
import type { ConnOrigin } from '../../src/shared/messages';
import { C_ACCEPTED, C_CONNECTIONS_TOTAL, C_CONNECTIONS_OPEN, C_DISCONNECT_BASE } from '../../src/shared/counters';
import { DR, DISCONNECT_REASONS } from '../../src/shared/disconnect-reasons';
import { tlog } from '../../src/log/thread';
import { transportGauge } from '../../src/shared/worker-gauges';

export class Connections {
  readonly all = new Set<Connection>();
  private readonly created = new WeakMap<Connection, number>();
  private stopping = false;

  /** Open connections by transport, this worker's row of src/shared/worker-gauges.ts (null: not kept). */
  private gauges: Float64Array | null = null;

  /** `env.closed` must call `closed` here (the worker adds what else a close means). */
  constructor(private readonly env: ConnectionEnv) {}

  keepGauges(row: Float64Array): void { this.gauges = row; }

  /** Wraps an fd this worker now owns; null if it is no longer a usable socket. */
  adopt(fd: number, identity: string | null = null): Connection | null {
    this.env.count(C_ACCEPTED, 1);
    this.env.count(C_CONNECTIONS_TOTAL, 1);
    let socket: net.Socket;
    try {
      socket = plainSocket(fd);
    } catch {
      return null;
    }
    socket.setNoDelay(true);
    return this.adoptSocket(socket, identity, null, -1);
  }

  /**
   * A TCP socket made from an fd (net/admission.ts counted it accepted; a PROXY header, if its
   * listener takes one, is read: `peer` is the client it named).
   */
  adoptSocket(socket: net.Socket, identity: string | null, peer: string | null, listener: number): Connection {
    const c = this.track(new Connection(socket, this.env, true, identity), peer);
    c.listener = listener;
    if (this.stopping) c.close();
    // Paused after a PROXY header; a fresh socket flows from its 'data' listener anyway.
    else socket.resume();
    return c;
  }

  /** A new connection from its start: per-client rates when configured (net/client-rate.ts), counted open. */
  private track(c: Connection, peer: string | null): Connection {
    c.peer = peer;
    const cfg = this.env.config;
    if (cfg.maxClientMsgRate > 0 || cfg.maxClientByteRate > 0) c.rate = new ClientRate(cfg.maxClientMsgRate, cfg.maxClientByteRate, this.env.count);
    this.all.add(c);
    if (this.gauges) this.gauges[transportGauge(c.kind)] += 1;
    this.created.set(c, Date.now());
    this.env.count(C_CONNECTIONS_OPEN, 1);
    return c;
  }

  /**
   * A TLS or WebSocket connection whose handshake finished (net/transports.ts counted its fd
   * as accepted); from here on it is a connection like a TCP one.
   */
  adoptStream(t: Transport, identity: string | null, peer: string | null = null): Connection {
    const c = this.track(new Connection(t, this.env, false, identity), peer);
    if (this.stopping) c.close();
    return c;
  }

  /**
   * A connection another worker moved here, with the bytes it had already read (and, for a
   * relayed TLS connection, the certificate identity it was accepted with).
   */
  adoptMoved(fd: number, bytes: Uint8Array, identity: string | null, origin: ConnOrigin | null): Connection | null {
    const c = this.adopt(fd, identity);
    if (c === null) return null;
    // Before the replay: the CONNECT in `bytes` is authenticated with the client's real address
    // and transport.
    c.peer = origin?.peer ?? null;
    c.listener = origin?.listener ?? -1;
    c.transport = origin?.transport ?? null;
    c.inject(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return c;
  }

  /** True the first time: the connection was one of ours. */
  closed(c: Connection): boolean {
    if (!this.all.delete(c)) return false;
    this.env.count(C_CONNECTIONS_OPEN, -1);
    if (this.gauges) this.gauges[transportGauge(c.kind)] -= 1;
    if (c.connectedAt > 0) this.disconnected(c);
    return true;
  }

  /** A connected client's connection ended: counted by reason, logged with it. */
  private disconnected(c: Connection): void {
    const r = c.closeReason < 0 ? DR.connection_lost : c.closeReason;
    this.env.count(C_DISCONNECT_BASE + r, 1);
    tlog().info('client disconnected', () => ({
      clientId: c.clientId, username: c.username, address: c.address(), transport: c.kind,
      reason: DISCONNECT_REASONS[r], connectedSeconds: Math.round((Date.now() - c.connectedAt) / 100) / 10,
    }));
  }

  /**
   * Keep-alive: 1.5 × the negotiated interval without a packet closes [MQTT-3.1.2-24, MQTT5-3.1.2-22].
   * A connection without CONNECT for --connect-timeout-ms (from its TLS / WebSocket handshake's
   * end) is closed.
   */
  sweep(): void {
    const now = Date.now();
    for (const c of this.all) {
      if (c.state === ConnState.CONNECTED) {
        if (c.keepaliveMs > 0 && now - c.lastRecv > c.keepaliveMs * 1.5) c.protocolClose(RC.KEEP_ALIVE_TIMEOUT);
      } else if (c.state === ConnState.NEW && now - (this.created.get(c) ?? now) > this.env.config.connectTimeoutMs) {
        tlog().debug('no CONNECT in time: connection closed', () => ({ address: c.address(), transport: c.kind }));
        c.close();
      }
    }
  }

  /** SIGTERM: v5 clients get DISCONNECT 0x8B, every socket closes; `done` once all have (at most 2 s). */
  closeAll(done: () => void): void {
    this.stopping = true;
    const open = [...this.all];
    for (const c of open) c.protocolClose(RC.SERVER_SHUTTING_DOWN);
    const pending = new Set(open.filter((c) => !c.socket.closed));
    if (pending.size === 0) { done(); return; }
    const timer = setTimeout(done, 2000);
    for (const c of pending) {
      c.socket.once('close', () => { pending.delete(c); if (pending.size === 0) { clearTimeout(timer); done(); } });
    }
  }

  /**
   * Closes every connection, v5 ones with DISCONNECT `reason` first, and keeps taking new ones
   * (the cluster's fencing: clients go elsewhere, this node serves again once it rejoins).
   * Returns how many were closed.
   */
  dropAll(reason: number): number {
    const open = [...this.all];
    for (const c of open) c.protocolClose(reason);
    return open.length;
  }

  get isStopping(): boolean { return this.stopping; }
}
