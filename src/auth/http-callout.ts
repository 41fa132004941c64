// The HTTP auth callout (--auth-http-url), EMQX-compatible: a CONNECT's client id, username,
// password, address and listener are POSTed as JSON; the answer is 200 with
// {"result": "allow"|"deny"|"ignore", "is_superuser": bool, "acl": [...]} (204 = allow, as
// EMQX; 4xx = ignore, as EMQX). Runs on the main thread with Node's asynchronous http client:
// no serving worker waits on it, and the main thread only writes and parses small JSON.
//
// Bounded everywhere: answers are cached (keyed by an HMAC under a per-process key, never the
// password) with one TTL for allow / ignore and a shorter one for deny, at most
// --auth-http-cache-entries (oldest dropped, counted); identical checks in flight share one
// request; at most --auth-http-max-inflight requests at once (beyond: "busy"). A request not
// answered within --auth-http-timeout-ms, refused, a 5xx or an answer that does not parse is
// "down" and never cached: the chain applies --auth-http-when-down to it.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { BrokerConfig } from '../config';
import { parseClientRules, type ClientRules } from './client-rules';

export interface CalloutRequest {
  clientId: string;
  username: string | null;
  password: Buffer | null;
  peerhost: string;
  peerport: number;
  listener: string;
  protoVer: number;
}

export type CalloutResult =
  | { result: 'allow'; superuser: boolean; rules: ClientRules | null }
  | { result: 'deny' | 'ignore' }
  | { result: 'down'; why: string }
  | { result: 'busy' };

/** What a check did, for the counters (the worker whose CONNECT it was counts them). */
export const N_HTTP_REQUEST = 1;
export const N_HTTP_ERROR = 2;
export const N_HTTP_HIT = 4;
export const N_HTTP_COALESCED = 8;
export const N_HTTP_FULL = 16;
export const N_HTTP_EVICTED = 32;

/** Largest answer body read; a longer one counts as the server being down. */
const MAX_BODY = 64 * 1024;

interface Cached { value: CalloutResult; until: number }

export class HttpCallout {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<{ value: CalloutResult; notes: number }>>();
  private readonly key = crypto.randomBytes(32);

  constructor(private readonly config: BrokerConfig) {
    this.url = new URL(config.authHttpUrl!);
    const opts = { keepAlive: true, maxSockets: config.authHttpMaxInflight };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
  }

  /** SIGHUP: answers given before are asked again. */
  clearCache(): void { this.cache.clear(); }

  /** The answer for `req` and what it took (N_* bits); never rejects. */
  async check(req: CalloutRequest): Promise<{ value: CalloutResult; notes: number }> {
    const key = this.cacheKey(req);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      if (hit.until > Date.now()) { this.cache.set(key, hit); return { value: hit.value, notes: N_HTTP_HIT }; }
    }
    const running = this.inflight.get(key);
    if (running) return running.then((r) => ({ value: r.value, notes: N_HTTP_COALESCED }));
    if (this.inflight.size >= this.config.authHttpMaxInflight) return { value: { result: 'busy' }, notes: N_HTTP_FULL };
    const p = this.ask(req).then((value) => {
      let notes = N_HTTP_REQUEST;
      if (value.result === 'down') notes |= N_HTTP_ERROR;
      else if (this.remember(key, value)) notes |= N_HTTP_EVICTED;
      return { value, notes };
    });
    this.inflight.set(key, p);
    void p.finally(() => this.inflight.delete(key));
    return p;
  }

  /** Caches an answer for its TTL; true when that dropped the oldest entry. */
  private remember(key: string, value: CalloutResult): boolean {
    const ttl = value.result === 'deny' ? this.config.authHttpDenyCacheTtlMs : this.config.authHttpCacheTtlMs;
    if (ttl <= 0) return false;
    let evicted = false;
    if (this.cache.size >= this.config.authHttpCacheEntries) {
      this.cache.delete(this.cache.keys().next().value!);
      evicted = true;
    }
    this.cache.set(key, { value, until: Date.now() + ttl });
    return evicted;
  }

  /** Everything the request carries, so a cached answer is reused only for the same question. */
  private cacheKey(r: CalloutRequest): string {
    const h = crypto.createHmac('sha256', this.key);
    h.update(JSON.stringify([r.clientId, r.username, r.peerhost, r.listener, r.protoVer, r.password === null]));
    if (r.password) h.update('\0').update(r.password);
    return h.digest('base64');
  }

  private ask(r: CalloutRequest): Promise<CalloutResult> {
    const body = JSON.stringify({
      clientid: r.clientId,
      username: r.username,
      password: r.password === null ? null : r.password.toString('utf8'),
      peerhost: r.peerhost,
      peerport: r.peerport,
      listener: r.listener,
      protocol: 'mqtt',
      proto_ver: r.protoVer,
    });
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<CalloutResult>((resolve) => {
      let settled = false;
      const done = (v: CalloutResult): void => { if (!settled) { settled = true; clearTimeout(timer); resolve(v); } };
      const req = mod.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
      }, (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_BODY) { done({ result: 'down', why: `answer longer than ${MAX_BODY} bytes` }); res.destroy(); return; }
          chunks.push(d);
        });
        res.on('error', (err) => done({ result: 'down', why: err.message }));
        res.on('end', () => done(interpret(status, Buffer.concat(chunks).toString('utf8'))));
      });
      // The timeout covers the whole exchange, connect to last byte of the answer.
      const timer = setTimeout(() => {
        done({ result: 'down', why: `no answer within ${this.config.authHttpTimeoutMs} ms (--auth-http-timeout-ms)` });
        req.destroy();
      }, this.config.authHttpTimeoutMs);
      req.on('error', (err) => done({ result: 'down', why: (err as NodeJS.ErrnoException).code ?? err.message }));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** An answer, as EMQX reads one. */
export function interpret(status: number, text: string): CalloutResult {
  if (status === 204) return { result: 'allow', superuser: false, rules: null };
  if (status >= 400 && status < 500) return { result: 'ignore' };
  if (status !== 200) return { result: 'down', why: `HTTP ${status}` };
  let o: unknown;
  try { o = JSON.parse(text); } catch { return { result: 'down', why: 'the answer is not JSON' }; }
  if (typeof o !== 'object' || o === null) return { result: 'down', why: 'the answer is not a JSON object' };
  const a = o as Record<string, unknown>;
  if (a.result === 'deny' || a.result === 'ignore') return { result: a.result };
  if (a.result !== 'allow') return { result: 'down', why: `"result" must be allow, deny or ignore, got ${JSON.stringify(a.result)?.slice(0, 40)}` };
  let rules: ClientRules | null = null;
  if (a.acl !== undefined) {
    try { rules = parseClientRules(a.acl); } catch (err) { return { result: 'down', why: `bad "acl" in the answer: ${(err as Error).message}` }; }
  }
  return { result: 'allow', superuser: a.is_superuser === true, rules };
}
