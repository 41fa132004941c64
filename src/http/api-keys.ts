// API keys of the admin API (--api-keys-file): one `NAME:ROLE:HASH` line per key, `#` comments
// and blank lines ignored. ROLE is `read` (GET only) or `admin` (everything); HASH is a `$7$`
// PBKDF2-SHA512 hash of the key's secret, the password file's format (src/auth/password-file.ts).
// Clients send HTTP Basic with NAME as the user and the secret as the password.
//
// Checking a secret costs a PBKDF2 (~1 ms of CPU): it runs on libuv's thread pool (async
// crypto.pbkdf2), never on the main thread's loop, and a verified NAME + secret is remembered
// under an HMAC with a per-process key (never the secret itself), so a dashboard polling the API
// every second costs one hash per reload, not one per request. Checks in flight are bounded
// (more answer 503) and identical ones share one hash.
import * as crypto from 'node:crypto';
import { parseHash, hashPassword, HASH_BYTES, NEW_ITERATIONS, type PasswordEntry } from '../auth/password-file';
import { readTextFile, setLine } from '../shared/operator-files';

export type ApiRole = 'read' | 'admin';
export const API_ROLES: readonly ApiRole[] = ['read', 'admin'];

interface ApiKey { role: ApiRole; entry: PasswordEntry }

export class ApiKeysError extends Error {}

/** Remembered verified keys (LRU); cleared on reload. */
const CACHE_ENTRIES = 1024;
/** Hashes running or queued at once; beyond this a request is answered 503. */
const MAX_CHECKS = 32;

export function validKeyName(name: string): string | null {
  if (name === '') return 'the key name is empty';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return 'a key name is 1-64 letters, digits, ".", "_" or "-"';
  return null;
}

export function parseApiKeys(text: string, name: string): Map<string, ApiKey> {
  const keys = new Map<string, ApiKey>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const fail = (why: string): never => { throw new ApiKeysError(`${name}: line ${i + 1}: ${why}`); };
    if (line.trim() === '' || line.startsWith('#')) return;
    const [keyName, role, ...rest] = line.split(':');
    if (rest.length === 0) fail('expected NAME:ROLE:HASH');
    const bad = validKeyName(keyName);
    if (bad) fail(bad);
    if (!API_ROLES.includes(role as ApiRole)) fail(`the role must be ${API_ROLES.join(' or ')}, got ${JSON.stringify(role)}`);
    if (keys.has(keyName)) fail(`key ${JSON.stringify(keyName)} appears twice`);
    const entry = parseHash(rest.join(':'), fail);
    if (entry.kind !== 7) fail('API keys take $7$ hashes only');
    keys.set(keyName, { role: role as ApiRole, entry });
  });
  return keys;
}

export function readApiKeys(file: string): Map<string, ApiKey> {
  return parseApiKeys(readTextFile(file, ApiKeysError), file);
}

export type KeyCheck = { ok: true; name: string; role: ApiRole } | { ok: false; why: 'none' | 'bad' | 'busy' };

export class ApiKeys {
  private keys = new Map<string, ApiKey>();
  private readonly cache = new Map<string, ApiRole>();
  private readonly inflight = new Map<string, Promise<KeyCheck>>();
  private readonly cacheKey = crypto.randomBytes(32);
  private generation = 0;
  private checks = 0;
  private readonly dummy: PasswordEntry = { kind: 7, iterations: NEW_ITERATIONS, salt: crypto.randomBytes(12), hash: crypto.randomBytes(HASH_BYTES) };

  /** Throws ApiKeysError (with the line) on a bad file. */
  constructor(readonly file: string | undefined) {
    if (file) this.keys = readApiKeys(file);
  }

  get configured(): boolean { return this.file !== undefined; }
  get size(): number { return this.keys.size; }

  reload(): { ok: boolean; line: string } {
    if (!this.file) return { ok: true, line: 'no --api-keys-file to reload' };
    try {
      this.keys = readApiKeys(this.file);
    } catch (err) {
      return { ok: false, line: `API keys not reloaded, the previous ones stay in force: ${(err as Error).message}` };
    }
    this.cache.clear();
    this.generation++;
    return { ok: true, line: `API keys reloaded: ${this.keys.size} key${this.keys.size === 1 ? '' : 's'}` };
  }

  /** Checks an `Authorization: Basic ...` header. Never rejects. */
  check(authorization: string | undefined): Promise<KeyCheck> {
    const m = authorization ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization) : null;
    if (!m) return Promise.resolve({ ok: false, why: 'none' });
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return Promise.resolve({ ok: false, why: 'bad' });
    const name = decoded.slice(0, colon);
    const secret = Buffer.from(decoded.slice(colon + 1), 'utf8');
    const ck = crypto.createHmac('sha256', this.cacheKey).update(name).update('\0').update(secret).digest('base64');
    const role = this.cache.get(ck);
    if (role !== undefined) {
      this.cache.delete(ck); // most recently used goes last
      this.cache.set(ck, role);
      return Promise.resolve({ ok: true, name, role });
    }
    const running = this.inflight.get(ck);
    if (running) return running;
    if (this.checks >= MAX_CHECKS) return Promise.resolve({ ok: false, why: 'busy' });
    const p = this.verify(name, secret, ck);
    this.inflight.set(ck, p);
    void p.finally(() => this.inflight.delete(ck));
    return p;
  }

  private async verify(name: string, secret: Buffer, ck: string): Promise<KeyCheck> {
    const generation = this.generation;
    const key = this.keys.get(name);
    // An unknown name costs what a known one does: no timing tells which names exist.
    const e = key?.entry ?? this.dummy;
    this.checks++;
    let got: Buffer;
    try {
      got = await new Promise<Buffer>((resolve, reject) => crypto.pbkdf2(secret, e.salt, e.iterations, HASH_BYTES, 'sha512', (err, d) => (err ? reject(err) : resolve(d))));
    } finally {
      this.checks--;
    }
    if (generation !== this.generation) return this.verify(name, secret, ck);
    if (!key || !crypto.timingSafeEqual(got, e.hash)) return { ok: false, why: 'bad' };
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(ck, key.role);
    return { ok: true, name, role: key.role };
  }
}

/**
 * Adds NAME (or replaces its line) in `file` with a new random secret; returns the secret, which
 * is stored nowhere. Created 0600; written to a temp file and renamed, so a broker reloading on
 * SIGHUP never reads half a file.
 */
export function setApiKey(file: string, name: string, role: ApiRole): { secret: string; what: 'added' | 'replaced' } {
  const bad = validKeyName(name);
  if (bad) throw new ApiKeysError(bad);
  if (!API_ROLES.includes(role)) throw new ApiKeysError(`the role must be ${API_ROLES.join(' or ')}, got ${JSON.stringify(role)}`);
  // 192 random bits: a secret this long needs no slow hash for strength; PBKDF2 keeps the file's
  // format and makes a leaked file useless anyway.
  const secret = crypto.randomBytes(24).toString('base64url');
  const line = `${name}:${role}:${hashPassword(Buffer.from(secret, 'utf8'))}`;
  const replaced = setLine(file, ApiKeysError, (text) => parseApiKeys(text, file), line, (l) => l.split(':')[0] === name);
  return { secret, what: replaced ? 'replaced' : 'added' };
}

const USAGE = `Usage: fleetmq apikey FILE NAME ROLE

Adds the API key NAME with ROLE (read: GET endpoints only; admin: every endpoint) to FILE
(created 0600 if absent), or gives NAME a new secret and role. Prints the secret once: it is
stored only as a $7$ PBKDF2-SHA512 hash. Use it as HTTP Basic credentials NAME:SECRET against
/api/v1 of a broker started with --api-keys-file FILE; a running broker picks the change up on
SIGHUP (or POST /api/v1/reload).`;

export function apikeyMain(argv: readonly string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE + '\n'); return 0; }
  if (argv.length !== 3) { process.stderr.write(`fleetmq apikey: expected FILE NAME ROLE\n${USAGE}\n`); return 2; }
  const [file, name, role] = argv;
  try {
    const { secret, what } = setApiKey(file, name, role as ApiRole);
    process.stderr.write(`fleetmq apikey: ${what} key ${JSON.stringify(name)} (${role}) in ${file}; its secret, shown only now:\n`);
    process.stdout.write(`${secret}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`fleetmq apikey: ${(err as Error).message}\n`);
    return err instanceof ApiKeysError && /name|role/.test((err as Error).message) ? 2 : 1;
  }
}
