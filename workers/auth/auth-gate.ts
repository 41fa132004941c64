// The worker's side of authentication: decides at once what needs no password check
// (anonymous clients, no password file, credentials this worker saw verified under the table
// in force) and asks the main thread's AuthService for the rest. Nothing here hashes: a
// serving worker's loop never spends the ~0.05-0.4 ms a hash costs; a cache hit costs one
// HMAC here and nothing on the main thread, the one accept thread per process.
//
// With the HTTP callout or JWT configured, every CONNECT goes to the main thread's method chain
// (src/auth/chain.ts) with what the callout sends (client id, address, listener, version), and
// an allow may come back with a Grant (superuser, the client's own ACL rules, token expiry)
// that handlers/connect.ts applies. This worker's credential cache is not used then: it would
// skip the chain, and with it a token's expiry and rules.
import type { MessagePort } from 'node:worker_threads';
import * as tls from 'node:tls';
import type { IConnectPacket } from 'mqtt-packet';
import type { Connection } from '../net/connection';
import { WsStream } from '../net/ws-stream';
import { anonymousAllowed, chainAuth, type BrokerConfig } from '../../src/config';
import { AuthReply, AuthInit, AuthRequest, AuthRefusedNote, Verdict, credentialKey, type Grant } from '../../src/auth/messages';
import type { TransportName } from '../../src/shared/messages';
import { N_HTTP_REQUEST, N_HTTP_ERROR, N_HTTP_HIT, N_HTTP_COALESCED, N_HTTP_FULL, N_HTTP_EVICTED } from '../../src/auth/http-callout';
import { N_JWT_REFUSED } from '../../src/auth/chain';
import * as K from '../../src/shared/counters';
import { C_AUTH_BUSY, C_AUTH_REFUSED, C_AUTH_ALLOW_PASSWORD, C_AUTH_ALLOW_ANONYMOUS, C_AUTH_ALLOW_CERTIFICATE, C_AUTH_DENY_ANONYMOUS, C_AUTH_DENY_CERTIFICATE } from '../../src/shared/counters';
import { RC, V3 } from '../protocol/constants';

/** The CONNACK codes of a refusal. */
export interface Refusal { v5: number; v3: number }

/** What a gate decides: a refusal, or an allow with its Grant (null: a plain allow). */
export type GateResult = Refusal | { grant: Grant } | null;

const BAD_CREDENTIALS: Refusal = { v5: RC.BAD_USERNAME_OR_PASSWORD, v3: V3.BAD_USERNAME_OR_PASSWORD };
const NOT_AUTHORIZED: Refusal = { v5: RC.NOT_AUTHORIZED, v3: V3.NOT_AUTHORIZED };
const BUSY: Refusal = { v5: RC.SERVER_BUSY, v3: V3.SERVER_UNAVAILABLE };
/** The auth server is down: 0x88 "Server unavailable" [MQTT5-3.2.2.2], v3 3 [MQTT-3.2.2.3]. */
const UNAVAILABLE: Refusal = { v5: RC.SERVER_UNAVAILABLE, v3: V3.SERVER_UNAVAILABLE };

/** Counter of each N_* bit a chain verdict carries. */
const NOTE_COUNTERS: ReadonlyArray<[number, number]> = [
  [N_HTTP_REQUEST, K.C_AUTH_HTTP_REQUESTS], [N_HTTP_ERROR, K.C_AUTH_HTTP_ERRORS], [N_HTTP_HIT, K.C_AUTH_HTTP_CACHE_HITS],
  [N_HTTP_COALESCED, K.C_AUTH_HTTP_COALESCED], [N_HTTP_FULL, K.C_AUTH_HTTP_INFLIGHT_FULL], [N_HTTP_EVICTED, K.C_AUTH_HTTP_CACHE_EVICTED],
  [N_JWT_REFUSED, K.C_AUTH_JWT_REFUSED],
];

class AuthLink {
  private nextId = 1;
  private readonly pending = new Map<number, (r: AuthReply) => void>();
  /** Verified credentials (HMAC key → table generation), oldest first; bounded by --auth-cache-entries. */
  private readonly cache = new Map<string, number>();
  private key: Uint8Array | null = null;
  private generation: Int32Array | null = null;

  constructor(private readonly port: MessagePort, private readonly cap: number) {
    port.on('message', (m: AuthReply | AuthInit) => {
      if (m.t === 'init') { this.key = m.key; this.generation = new Int32Array(m.generation); return; }
      const done = this.pending.get(m.id);
      if (!done) return;
      this.pending.delete(m.id);
      done(m);
    });
    // The main thread keeps its end for the worker's life; if it goes, so does the broker.
    port.on('close', () => {
      for (const done of this.pending.values()) done({ t: 'verdict', id: 0, verdict: Verdict.BUSY, generation: -1 });
      this.pending.clear();
    });
  }

  /** True when this worker saw these credentials verified under the password table now in force. */
  cached(user: string, password: Buffer | undefined): boolean {
    if (!this.key || !password || this.cap === 0) return false;
    const k = credentialKey(this.key, user, password);
    const g = this.cache.get(k);
    if (g === undefined) return false;
    this.cache.delete(k);
    if (g !== Atomics.load(this.generation!, 0)) return false; // reloaded since: ask again
    this.cache.set(k, g); // most recently used goes last
    return true;
  }

  check(user: string, password: Buffer | undefined, addr: string): Promise<Verdict> {
    return this.ask(user, password, addr, undefined).then((r) => r.verdict);
  }

  /** The whole reply; `chain` set: through the method chain, and never cached here. */
  ask(user: string | null, password: Buffer | undefined, addr: string, chain: AuthRequest['chain']): Promise<AuthReply> {
    const id = this.nextId++;
    // A fresh copy: a view into the read chunk would clone the whole chunk to the main thread.
    const req: AuthRequest = { t: 'check', id, user, password: password ? new Uint8Array(password) : null, addr };
    if (chain) req.chain = chain;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => {
        if (!chain && user !== null && r.verdict === Verdict.OK && this.key && password && this.cap > 0) {
          if (this.cache.size >= this.cap) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(credentialKey(this.key, user, password), r.generation);
        }
        resolve(r);
      });
      this.port.postMessage(req);
    });
  }

  note(addr: string, user: string | null, why: string): void {
    const m: AuthRefusedNote = { t: 'refused', addr, user, why };
    this.port.postMessage(m);
  }
}


/** The client's address (a PROXY protocol header's when the listener uses one): net/connection.ts. */
export function clientAddress(c: Connection): string {
  return c.address();
}

/** What the auth callout is told of the client: its address, port and transport. */
export interface PeerInfo { host: string; port: number; listener: TransportName }

/** The transport a client uses: its socket's own, or, on a relay's end, the relaying worker's. */
export function transportOf(c: Connection): TransportName {
  if (c.transport !== null) return c.transport;
  const s = c.socket;
  return s instanceof WsStream ? (s.encrypted ? 'wss' : 'ws') : s instanceof tls.TLSSocket ? 'tls' : 'tcp';
}

/** The client's address, port and transport, also behind a PROXY header or a relay (from address()). */
export function peerOf(c: Connection): PeerInfo {
  const a = c.address();
  const colon = a.lastIndexOf(':');
  if (a === 'unknown address' || colon < 0) return { host: '', port: 0, listener: transportOf(c) };
  const host = a.startsWith('[') ? a.slice(1, colon - 1) : a.slice(0, colon);
  return { host, port: Number(a.slice(colon + 1)), listener: transportOf(c) };
}

/** A worker's authentication: one link to the main thread's AuthService, made at start. */
export class AuthGate {
  private readonly link: AuthLink;
  private readonly chain: boolean;

  constructor(port: MessagePort, private readonly config: BrokerConfig, private readonly count: (counter: number, n: number) => void) {
    this.link = new AuthLink(port, config.authCacheEntries);
    this.chain = chainAuth(config);
  }

  /** Through the method chain: every CONNECT asks the main thread. */
  private viaChain(c: Connection, p: IConnectPacket): Promise<GateResult> {
    const password = p.password === undefined ? undefined : Buffer.isBuffer(p.password) ? p.password : Buffer.from(p.password);
    const peer = peerOf(c);
    const chain = { clientId: c.clientId, peerhost: peer.host, peerport: peer.port, listener: peer.listener, protoVer: c.version };
    return this.link.ask(p.username ?? null, password, clientAddress(c), chain).then((r) => {
      if (r.notes) for (const [bit, counter] of NOTE_COUNTERS) if (r.notes & bit) this.count(counter, 1);
      switch (r.verdict) {
        case Verdict.OK: return r.grant && (r.grant.superuser || r.grant.rules !== null || r.grant.expiresAt > 0) ? { grant: r.grant } : null;
        case Verdict.BUSY: this.count(C_AUTH_BUSY, 1); return BUSY;
        case Verdict.NOT_AUTHORIZED: this.count(C_AUTH_REFUSED, 1); return NOT_AUTHORIZED;
        case Verdict.UNAVAILABLE: this.count(C_AUTH_REFUSED, 1); return UNAVAILABLE;
        default: this.count(C_AUTH_REFUSED, 1); return BAD_CREDENTIALS;
      }
    });
  }

  /**
   * Whether this CONNECT may go on: null at once when no check is needed, else the refusal (or
   * null) once decided. Refusals are counted here and logged by the main thread with the address.
   */
  gate(c: Connection, p: IConnectPacket): Promise<GateResult> | null {
    const config = this.config;
    const link = this.link;
    // --use-identity-as-username: the certificate the TLS handshake verified against --ca is the
    // credential (as Mosquitto); one without a CN names nobody and is refused.
    if (c.identity !== null) {
      if (c.identity !== '') { this.count(C_AUTH_ALLOW_CERTIFICATE, 1); return null; }
      this.count(C_AUTH_REFUSED, 1);
      this.count(C_AUTH_DENY_CERTIFICATE, 1);
      link.note(clientAddress(c), null, 'the client certificate has no CN (--use-identity-as-username)');
      return Promise.resolve(NOT_AUTHORIZED);
    }
    if (this.chain) return this.viaChain(c, p);
    // Without a password file no credentials are checked (Mosquitto: no password_file).
    const needsPassword = p.username !== undefined && !!config.passwordFile;
    if (!needsPassword) {
      if (anonymousAllowed(config)) { this.count(C_AUTH_ALLOW_ANONYMOUS, 1); return null; }
      this.count(C_AUTH_REFUSED, 1);
      this.count(C_AUTH_DENY_ANONYMOUS, 1);
      link.note(clientAddress(c), p.username ?? null, p.username === undefined ? 'anonymous clients are not allowed' : 'no password file to check against');
      return Promise.resolve(NOT_AUTHORIZED);
    }
    const password = p.password === undefined ? undefined : Buffer.isBuffer(p.password) ? p.password : Buffer.from(p.password);
    if (link.cached(p.username!, password)) { this.count(C_AUTH_ALLOW_PASSWORD, 1); return null; }
    return link.check(p.username!, password, clientAddress(c)).then((v) => {
      if (v === Verdict.OK) { this.count(C_AUTH_ALLOW_PASSWORD, 1); return null; }
      if (v === Verdict.BUSY) { this.count(C_AUTH_BUSY, 1); return BUSY; }
      this.count(C_AUTH_REFUSED, 1);
      return BAD_CREDENTIALS;
    });
  }
}
