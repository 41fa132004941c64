// The worker's side of authentication: decides at once what needs no password check
// (anonymous clients, no password file, credentials this worker saw verified under the table
// in force) and asks the main thread's AuthService for the rest. Nothing here hashes: a
// serving worker's loop never spends the ~0.05-0.4 ms a hash costs; a cache hit costs one
// HMAC here and nothing on the main thread, the one accept thread per process.
import type { MessagePort } from 'node:worker_threads';
import type { IConnectPacket } from 'mqtt-packet';
import type { Connection } from '../net/connection';
import { anonymousAllowed, type BrokerConfig } from '../../src/config';
import { AuthReply, AuthInit, AuthRequest, AuthRefusedNote, Verdict, credentialKey } from '../../src/auth/messages';
import { C_AUTH_BUSY, C_AUTH_REFUSED, C_AUTH_ALLOW_PASSWORD, C_AUTH_ALLOW_ANONYMOUS, C_AUTH_ALLOW_CERTIFICATE, C_AUTH_DENY_ANONYMOUS, C_AUTH_DENY_CERTIFICATE } from '../../src/shared/counters';
import { RC, V3 } from '../protocol/constants';

/** The CONNACK codes of a refusal. */
export interface Refusal { v5: number; v3: number }

const BAD_CREDENTIALS: Refusal = { v5: RC.BAD_USERNAME_OR_PASSWORD, v3: V3.BAD_USERNAME_OR_PASSWORD };
const NOT_AUTHORIZED: Refusal = { v5: RC.NOT_AUTHORIZED, v3: V3.NOT_AUTHORIZED };
const BUSY: Refusal = { v5: RC.SERVER_BUSY, v3: V3.SERVER_UNAVAILABLE };

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
    const id = this.nextId++;
    // A fresh copy: a view into the read chunk would clone the whole chunk to the main thread.
    const req: AuthRequest = { t: 'check', id, user, password: password ? new Uint8Array(password) : null, addr };
    return new Promise((resolve) => {
      this.pending.set(id, (r) => {
        if (r.verdict === Verdict.OK && this.key && password && this.cap > 0) {
          if (this.cache.size >= this.cap) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(credentialKey(this.key, user, password), r.generation);
        }
        resolve(r.verdict);
      });
      this.port.postMessage(req);
    });
  }

  note(addr: string, user: string | null, why: string): void {
    const m: AuthRefusedNote = { t: 'refused', addr, user, why };
    this.port.postMessage(m);
  }
}


export function clientAddress(c: Connection): string {
  const s = c.socket;
  if (!s.remoteAddress) return 'unknown address';
  return s.remoteFamily === 'IPv6' ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}

/** A worker's authentication: one link to the main thread's AuthService, made at start. */
export class AuthGate {
  private readonly link: AuthLink;

  constructor(port: MessagePort, private readonly config: BrokerConfig, private readonly count: (counter: number, n: number) => void) {
    this.link = new AuthLink(port, config.authCacheEntries);
  }

  /**
   * Whether this CONNECT may go on: null at once when no check is needed, else the refusal (or
   * null) once decided. Refusals are counted here and logged by the main thread with the address.
   */
  gate(c: Connection, p: IConnectPacket): Promise<Refusal | null> | null {
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
