// Worker ↔ main thread messages of the password check (one MessagePort per worker, made by the
// supervisor; the main thread owns the password table, the hashing pool and the cache).
import * as crypto from 'node:crypto';
import type { AclRules } from './acl';
import type { ClientRules } from './client-rules';

/** The cache key of verified credentials: an HMAC under a per-process key, never the password. */
export function credentialKey(key: Uint8Array, user: string, password: Uint8Array): string {
  return crypto.createHmac('sha256', key).update(user).update('\0').update(password).digest('base64');
}

/**
 * worker → main: check a username and password. `addr` is for the refusal log only. With the
 * HTTP callout or JWT configured (`chain`), the whole CONNECT goes through the method chain
 * (src/auth/chain.ts), with what the callout sends: `user` may then be null (no username).
 */
export interface AuthRequest {
  t: 'check'; id: number; user: string | null; password: Uint8Array | null; addr: string;
  chain?: { clientId: string; peerhost: string; peerport: number; listener: string; protoVer: number };
}
/** worker → main: a refusal the worker decided itself (anonymous client), to be logged. */
export interface AuthRefusedNote { t: 'refused'; addr: string; user: string | null; why: string }
/**
 * main → worker: the verdict for request `id`, decided against password table `generation`. A
 * chain's allow may carry `grant` (superuser, the client's own ACL rules, when its JWT expires);
 * `notes` says what the check did (N_* bits of src/auth/chain.ts), for the worker's counters.
 */
export interface AuthReply { t: 'verdict'; id: number; verdict: Verdict; generation: number; grant?: Grant; notes?: number }

/** What an allow comes with. `expiresAt`: epoch ms when the token expires (0 = never). */
export interface Grant { superuser: boolean; rules: ClientRules | null; expiresAt: number }
/**
 * main → worker, once per port: what the worker needs to keep its own cache of verified
 * credentials (so a reconnect costs no message at all): the HMAC key the entries are keyed
 * by, and the table generation (Int32 [0]), bumped by every reload, that entries must match.
 */
export interface AuthInit { t: 'init'; key: Uint8Array; generation: SharedArrayBuffer }

/**
 * main → worker: the ACL file was reloaded; decide with `rules` from now on, and drop what was
 * cached under an older generation (workers/auth/acl-gate.ts).
 */
export interface AclUpdate { t: 'acl'; rules: AclRules; generation: number }
/** worker → main: this worker decides with ACL `generation` now (a reload waits for every worker). */
export interface AclApplied { t: 'acl-applied'; generation: number }

export const enum Verdict {
  OK = 0,
  /** Unknown user or wrong password: CONNACK v3 4 / v5 0x86. */
  BAD_CREDENTIALS = 1,
  /** The hashing queue is full: CONNACK v3 3 / v5 0x89 at once. */
  BUSY = 2,
  /** Anonymous when not allowed: CONNACK v3 5 / v5 0x87. */
  NOT_AUTHORIZED = 3,
  /** The auth server is down and --auth-http-when-down is deny: CONNACK v3 3 / v5 0x88. */
  UNAVAILABLE = 4,
}
