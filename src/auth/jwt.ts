// JWT authentication (--jwt-secret-file / --jwt-public-key-file / --jwt-jwks-file), verified with
// `jose` on the main thread: the token is the CONNECT password (or username, --jwt-from). A
// signature check is tens of microseconds of node:crypto (HMAC, RSA or ECDSA verify), far less
// than a password hash, so it runs where the chain runs and no worker ever does it.
//
// jose is pinned to v5: v6 ships as ES modules only, and this project compiles to CommonJS for
// Node 20, where require() of an ES module is not available without a flag; v5 ships both, and
// its API (jwtVerify, createLocalJWKSet) is the same for what is used here.
//
// A token is refused (counted) when its signature, algorithm, exp, nbf, iss, aud or the
// configured username / client id claims do not hold, or its ACL claim is malformed. A password
// that is not a JWT at all (not three dot-separated parts) passes to the next method, so a
// password file later in --auth-chain still serves its users.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as jose from 'jose';
import type { BrokerConfig } from '../config';
import { parseClientRules, type ClientRules } from './client-rules';

export type JwtResult =
  | { result: 'allow'; rules: ClientRules | null; superuser: false; expiresAt: number }
  | { result: 'deny'; why: string }
  | { result: 'ignore' };

export class JwtKeyError extends Error {}

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

type Key = Uint8Array | crypto.KeyObject | ReturnType<typeof jose.createLocalJWKSet>;

/** The keys and algorithms of the configured source; throws JwtKeyError naming the file. */
function loadKey(config: BrokerConfig): { key: Key; algorithms: string[] } {
  const read = (file: string): Buffer => {
    try { return fs.readFileSync(file); } catch (err) {
      throw new JwtKeyError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const given = config.jwtAlgorithms?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  let key: Key;
  let allowed: string[];
  let defaults: string[];
  if (config.jwtSecretFile) {
    let secret = read(config.jwtSecretFile);
    if (secret[secret.length - 1] === 0x0a) secret = secret.subarray(0, secret[secret.length - 2] === 0x0d ? -2 : -1);
    if (secret.length === 0) throw new JwtKeyError(`${config.jwtSecretFile}: the secret is empty`);
    key = new Uint8Array(secret);
    allowed = HMAC;
    defaults = ['HS256'];
  } else if (config.jwtPublicKeyFile) {
    try { key = crypto.createPublicKey(read(config.jwtPublicKeyFile)); } catch (err) {
      if (err instanceof JwtKeyError) throw err;
      throw new JwtKeyError(`${config.jwtPublicKeyFile}: not a PEM public key or certificate: ${(err as Error).message}`);
    }
    allowed = ASYMMETRIC;
    defaults = ['RS256', 'ES256'];
  } else {
    const file = config.jwtJwksFile!;
    let jwks: unknown;
    try { jwks = JSON.parse(read(file).toString('utf8')); } catch (err) {
      if (err instanceof JwtKeyError) throw err;
      throw new JwtKeyError(`${file}: not JSON: ${(err as Error).message}`);
    }
    try { key = jose.createLocalJWKSet(jwks as jose.JSONWebKeySet); } catch (err) {
      throw new JwtKeyError(`${file}: not a JWKS ({"keys": [...]}): ${(err as Error).message}`);
    }
    allowed = [...HMAC, ...ASYMMETRIC];
    defaults = ['RS256', 'ES256'];
  }
  const algorithms = given ?? defaults;
  for (const a of algorithms) {
    if (!allowed.includes(a)) throw new JwtKeyError(`--jwt-algorithms: ${JSON.stringify(a)} cannot be used with this key (choose from ${allowed.join(', ')})`);
  }
  return { key, algorithms };
}

export class JwtVerifier {
  private key: Key;
  private algorithms: string[];

  /** Reads the key file (throws JwtKeyError naming it on a bad one). */
  constructor(private readonly config: BrokerConfig) {
    ({ key: this.key, algorithms: this.algorithms } = loadKey(config));
  }

  /** SIGHUP: rereads the key file; a bad one leaves the old key in force. */
  reload(): { ok: boolean; line: string } {
    try {
      ({ key: this.key, algorithms: this.algorithms } = loadKey(this.config));
    } catch (err) {
      return { ok: false, line: `jwt key not reloaded, the previous one stays in force: ${(err as Error).message}` };
    }
    return { ok: true, line: 'jwt key reloaded' };
  }

  /** The verdict for a CONNECT's token; never rejects. */
  async verify(username: string | null, password: Buffer | null, clientId: string): Promise<JwtResult> {
    const c = this.config;
    const token = c.jwtFrom === 'username' ? username : password?.toString('utf8') ?? null;
    if (token === null || !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return { result: 'ignore' };
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, this.key as Parameters<typeof jose.jwtVerify>[1], {
        algorithms: this.algorithms,
        issuer: c.jwtIssuer,
        audience: c.jwtAudience,
      }));
    } catch (err) {
      // jose's messages name the claim or the check, never the token.
      return { result: 'deny', why: `JWT refused: ${(err as { code?: string }).code ?? 'ERR_JWT'}: ${(err as Error).message}` };
    }
    if (c.jwtUsernameClaim !== undefined && (username === null || payload[c.jwtUsernameClaim] !== username)) {
      return { result: 'deny', why: `JWT refused: claim "${c.jwtUsernameClaim}" does not equal the username (--jwt-username-claim)` };
    }
    if (c.jwtClientidClaim !== undefined && payload[c.jwtClientidClaim] !== clientId) {
      return { result: 'deny', why: `JWT refused: claim "${c.jwtClientidClaim}" does not equal the client id (--jwt-clientid-claim)` };
    }
    let rules: ClientRules | null = null;
    const acl = payload[c.jwtAclClaim];
    if (acl !== undefined) {
      try { rules = parseClientRules(acl); } catch (err) {
        return { result: 'deny', why: `JWT refused: claim "${c.jwtAclClaim}": ${(err as Error).message}` };
      }
    }
    return { result: 'allow', rules, superuser: false, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : 0 };
  }
}
