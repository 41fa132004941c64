// The password check of every CONNECT with a username, owned by the main thread: one per
// process, so the hashing pool is one bound for the whole broker and the cache of verified
// credentials is shared by every worker (a connection moved to its session's worker checks
// again and hits it). Workers ask over a MessagePort each (src/auth/messages.ts); the main
// thread only looks up the cache and queues; the hash runs in a bounded piscina pool.
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import Piscina from 'piscina';
import { chainAuth, type BrokerConfig } from '../config';
import { readPasswordFile, PasswordEntry, NEW_ITERATIONS } from './password-file';
import type { HashJob } from './hash-task';
import { RefusalLog } from './refusal-log';
import { log } from '../log/logger';
import { errFields } from '../log/thread-log';
import { HistogramWriter, H_AUTH } from '../shared/histograms';
import { AuthRequest, AuthRefusedNote, AuthReply, AuthInit, Verdict, credentialKey, AclUpdate, AclApplied } from './messages';
import { readAclFile, ruleCount, type AclRules } from './acl';
import { HttpCallout } from './http-callout';
import { JwtVerifier } from './jwt';
import { AuthChain } from './chain';

const TASK = path.join(__dirname, 'hash-task.js');

export class AuthService {
  private users = new Map<string, PasswordEntry>();
  /** Checked against when the user is unknown, so an unknown user costs what a known one does. */
  private dummy: PasswordEntry = { kind: 7, iterations: NEW_ITERATIONS, salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
  private readonly pool: Piscina | null;
  /** Password checks handed to the pool and not answered yet: running + queued. */
  private inPool = 0;
  private readonly bound: number;
  /** Verified credentials: keyed HMAC of user and password → true, oldest first (LRU by re-insertion). */
  private readonly cache = new Map<string, true>();
  /** Identical checks in flight share one hash (a reconnect storm of one client). */
  private readonly inflight = new Map<string, Promise<Verdict>>();
  private readonly cacheKey = crypto.randomBytes(32);
  /**
   * Bumped by every reload: a verdict computed against an older table is recomputed, and the
   * workers' own caches drop entries of older generations. Shared so workers read it directly.
   */
  private readonly generationSab = new SharedArrayBuffer(4);
  private readonly generationView = new Int32Array(this.generationSab);
  private get generation(): number { return Atomics.load(this.generationView, 0); }
  private readonly ports = new Set<MessagePort>();
  readonly log = new RefusalLog(log);
  /** Times each password check (--metrics true): fleetmq_auth_duration_seconds. */
  private timer: HistogramWriter | null = null;
  timeChecks(w: HistogramWriter): void { this.timer = w; }
  /**
   * The ACL (--acl-file) in force and its generation. Workers decide from their own copy (given
   * at start in their wiring, then posted on every reload) and tag their cached decisions with
   * the generation of the copy they hold (workers/auth/acl-gate.ts).
   */
  private acl: AclRules | null = null;
  private aclGeneration = 1;
  /** Per reload: the workers that have not yet said they hold it. */
  private aclWaits: Array<{ generation: number; left: Set<MessagePort>; done: () => void }> = [];

  /** The HTTP callout and JWT, and the chain that asks them with the password file; null when neither is configured. */
  private readonly callout: HttpCallout | null;
  private readonly jwt: JwtVerifier | null;
  private readonly chain: AuthChain | null;

  /**
   * Reads the password, ACL and JWT key files (throws PasswordFileError / AclFileError /
   * JwtKeyError naming the file, and the line number where there is one, on a bad one).
   */
  constructor(private readonly config: BrokerConfig) {
    if (config.passwordFile) this.load(config.passwordFile);
    if (config.aclFile) this.acl = readAclFile(config.aclFile);
    this.jwt = config.jwtSecretFile || config.jwtPublicKeyFile || config.jwtJwksFile ? new JwtVerifier(config) : null;
    this.callout = config.authHttpUrl ? new HttpCallout(config) : null;
    this.chain = chainAuth(config) ? new AuthChain(config, {
      file: config.passwordFile ? (user, password) => this.check(user, password) : null,
      knownUser: (user) => this.users.has(user),
      http: this.callout,
      jwt: this.jwt,
    }) : null;
    this.bound = config.authPoolThreads + config.authQueueMax;
    this.pool = config.passwordFile ? new Piscina({
      filename: TASK,
      minThreads: config.authPoolThreads,
      maxThreads: config.authPoolThreads,
      // Our own bound (inPool) refuses first; piscina's is a backstop at the same size.
      maxQueue: Math.max(1, config.authQueueMax),
      idleTimeout: 60_000,
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    }) : null;
  }

  get userCount(): number { return this.users.size; }

  private load(file: string): void {
    const users = readPasswordFile(file);
    this.users = users;
    const sample = [...users.values()].find((e) => e.kind === 7);
    this.dummy = { kind: 7, iterations: sample?.iterations ?? NEW_ITERATIONS, salt: crypto.randomBytes(12), hash: crypto.randomBytes(64) };
    this.cache.clear();
    Atomics.add(this.generationView, 0, 1);
  }

  /**
   * SIGHUP: reads the password file again. A file that does not parse leaves the old table in
   * force; the returned line says which happened. Connections already up stay up.
   */
  reload(): { ok: boolean; line: string } {
    // The callout is asked afresh and the JWT key reread; their lines go with the password file's.
    const parts: Array<{ ok: boolean; line: string }> = [];
    if (this.config.passwordFile || !this.chain) parts.push(this.reloadPasswords());
    if (this.jwt) parts.push(this.jwt.reload());
    if (this.callout) { this.callout.clearCache(); parts.push({ ok: true, line: 'auth callout cache emptied' }); }
    return { ok: parts.every((x) => x.ok), line: parts.map((x) => x.line).join('; ') };
  }

  private reloadPasswords(): { ok: boolean; line: string } {
    const file = this.config.passwordFile;
    if (!file) return { ok: true, line: 'no --password-file to reload' };
    try {
      this.load(file);
    } catch (err) {
      return { ok: false, line: `password file not reloaded, the previous one stays in force: ${(err as Error).message}` };
    }
    return { ok: true, line: `password file reloaded: ${this.users.size} user${this.users.size === 1 ? '' : 's'}` };
  }

  /** Rules in the ACL file now (null: none configured). */
  get aclRuleCount(): number | null { return this.acl ? ruleCount(this.acl) : null; }

  /** What a worker starting now decides with (its wiring): null without --acl-file. */
  get aclState(): { rules: AclRules; generation: number } | null {
    return this.acl ? { rules: this.acl, generation: this.aclGeneration } : null;
  }

  /**
   * SIGHUP: reads the ACL file again and posts it to every worker. A file that does not parse
   * leaves the previous rules in force. `applied` settles once every worker holds the new rules
   * (decisions cached under the old ones are dropped there). Null without --acl-file.
   */
  reloadAcl(): { ok: boolean; line: string; applied: Promise<number> } | null {
    const file = this.config.aclFile;
    if (!file) return null;
    let rules: AclRules;
    try {
      rules = readAclFile(file);
    } catch (err) {
      return { ok: false, line: `acl file not reloaded, the previous one stays in force: ${(err as Error).message}`, applied: Promise.resolve(this.aclGeneration) };
    }
    this.acl = rules;
    const generation = ++this.aclGeneration;
    const update: AclUpdate = { t: 'acl', rules, generation };
    const applied = new Promise<number>((resolve) => {
      const wait = { generation, left: new Set(this.ports), done: () => resolve(generation) };
      this.aclWaits.push(wait);
      for (const p of this.ports) p.postMessage(update);
      this.settleAclWaits();
    });
    const n = ruleCount(rules);
    return { ok: true, line: `acl file reloaded: ${n} rule${n === 1 ? '' : 's'}`, applied };
  }

  /** A worker holds `generation` (or is gone: `port` closed): reloads it completed are done. */
  private aclHeld(port: MessagePort, generation: number): void {
    for (const w of this.aclWaits) if (w.generation <= generation) w.left.delete(port);
    this.settleAclWaits();
  }

  private settleAclWaits(): void {
    this.aclWaits = this.aclWaits.filter((w) => { if (w.left.size > 0) return true; w.done(); return false; });
  }

  /** Serves one worker's requests. */
  attach(port: MessagePort): void {
    this.ports.add(port);
    const init: AuthInit = { t: 'init', key: new Uint8Array(this.cacheKey), generation: this.generationSab };
    port.postMessage(init);
    port.on('message', (m: AuthRequest | AuthRefusedNote | AclApplied) => {
      if (m.t === 'refused') { this.log.refused(m.addr, m.user, m.why); return; }
      if (m.t === 'acl-applied') { this.aclHeld(port, m.generation); return; }
      const password = m.password ? Buffer.from(m.password.buffer, m.password.byteOffset, m.password.byteLength) : null;
      if (m.chain && this.chain) { this.decide(port, m, password); return; }
      const t0 = this.timer ? performance.now() : 0;
      this.check(m.user!, password).then((verdict) => {
        this.timer?.observe(H_AUTH, (performance.now() - t0) / 1000);
        const reply: AuthReply = { t: 'verdict', id: m.id, verdict, generation: this.generation };
        port.postMessage(reply);
        if (verdict === Verdict.BAD_CREDENTIALS) this.log.refused(m.addr, m.user, 'bad username or password');
        else if (verdict === Verdict.BUSY) this.log.refused(m.addr, m.user, `server busy: ${this.inPool} password checks waiting (--auth-queue-max)`);
      });
    });
    port.on('close', () => { this.ports.delete(port); this.aclHeld(port, Infinity); });
  }

  /** A CONNECT through the method chain (HTTP callout / JWT configured). */
  private decide(port: MessagePort, m: AuthRequest, password: Buffer | null): void {
    this.chain!.decide(m, password).then((d) => {
      const reply: AuthReply = { t: 'verdict', id: m.id, verdict: d.verdict, generation: this.generation, notes: d.notes };
      if (d.grant) reply.grant = d.grant;
      port.postMessage(reply);
      // The username is the token with --jwt-from username: never logged then.
      if (d.verdict !== Verdict.OK) this.log.refused(m.addr, this.config.jwtFrom === 'username' && m.user !== null ? '(a token)' : m.user, d.why ?? 'refused');
    }, (err: Error) => {
      log.error(`fleetmq: auth: check failed: ${err.message}`, { err: errFields(err) });
      const reply: AuthReply = { t: 'verdict', id: m.id, verdict: Verdict.UNAVAILABLE, generation: this.generation };
      port.postMessage(reply);
    });
  }

  /** The verdict for a username and password; never rejects. */
  check(user: string, password: Buffer | null): Promise<Verdict> {
    if (!this.pool || password === null) return Promise.resolve(Verdict.BAD_CREDENTIALS);
    const key = credentialKey(this.cacheKey, user, password);
    if (this.cache.has(key)) {
      this.cache.delete(key); // most recently used goes last
      this.cache.set(key, true);
      return Promise.resolve(Verdict.OK);
    }
    const running = this.inflight.get(key);
    if (running) return running;
    if (this.inPool >= this.bound) return Promise.resolve(Verdict.BUSY);
    const p = this.hash(user, password, key);
    this.inflight.set(key, p);
    void p.finally(() => this.inflight.delete(key));
    return p;
  }

  private async hash(user: string, password: Buffer, key: string): Promise<Verdict> {
    const generation = this.generation;
    const entry = this.users.get(user);
    const e = entry ?? this.dummy;
    const job: HashJob = { kind: e.kind, iterations: e.iterations, password, salt: e.salt, hash: e.hash };
    this.inPool++;
    let match: boolean;
    try {
      match = await this.pool!.run(job);
    } catch (err) {
      if (/queue/i.test((err as Error).message)) return Verdict.BUSY;
      log.error('auth: password check failed', { err: errFields(err) });
      return Verdict.BUSY;
    } finally {
      this.inPool--;
    }
    // The file was reloaded meanwhile: decide against the table now in force.
    if (generation !== this.generation) return this.hash(user, password, key);
    if (!match || !entry) return Verdict.BAD_CREDENTIALS;
    const cap = this.config.authCacheEntries;
    if (cap > 0) {
      if (this.cache.size >= cap) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, true);
    }
    return Verdict.OK;
  }

  async close(): Promise<void> {
    this.log.close();
    this.callout?.close();
    for (const p of this.ports) p.close();
    await this.pool?.destroy();
  }
}
