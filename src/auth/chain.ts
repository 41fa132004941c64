// The authentication methods in the order of --auth-chain (default file, http, jwt, those
// configured), as EMQX's authenticator chain: each method allows, denies or ignores (passes to
// the next). Used when the HTTP callout or JWT is configured; a password file alone keeps its
// own shorter path (src/auth/auth-service.ts, `check`).
//
//   file  unknown user or no username: ignore; wrong password: deny; a full hashing queue: busy.
//   http  the callout's answer; down (timeout, refused, 5xx, bad answer): --auth-http-when-down
//         deny -> "server unavailable", or ignore; too many in flight: busy.
//   jwt   no token / not a JWT: ignore; a token that does not verify: deny.
// Every method ignored: a client with neither username nor password is let in when anonymous
// clients are allowed (--allow-anonymous; off by default once a method is configured), else
// refused "not authorized"; a client with credentials nobody accepted is refused "bad username
// or password".
import { anonymousAllowed, authMethods, type AuthMethod, type BrokerConfig } from '../config';
import type { HttpCallout } from './http-callout';
import type { JwtVerifier } from './jwt';
import { Verdict, type AuthRequest, type Grant } from './messages';

/** JWT refused (the N_HTTP_* bits are in http-callout.ts). */
export const N_JWT_REFUSED = 64;

export interface ChainVerdict { verdict: Verdict; grant?: Grant; notes: number; why?: string }

export interface ChainParts {
  /** The password file's verdict (OK, BAD_CREDENTIALS or BUSY) and whether the user is in it. */
  file: ((user: string, password: Buffer | null) => Promise<Verdict>) | null;
  knownUser: (user: string) => boolean;
  http: HttpCallout | null;
  jwt: JwtVerifier | null;
}

const NO_GRANT: Grant = { superuser: false, rules: null, expiresAt: 0 };

export class AuthChain {
  private readonly methods: AuthMethod[];

  constructor(private readonly config: BrokerConfig, private readonly parts: ChainParts) {
    this.methods = authMethods(config);
  }

  /** The verdict for one CONNECT; never rejects. */
  async decide(m: AuthRequest, password: Buffer | null): Promise<ChainVerdict> {
    const info = m.chain!;
    let notes = 0;
    for (const method of this.methods) {
      if (method === 'file') {
        if (m.user === null || !this.parts.file) continue;
        const v = await this.parts.file(m.user, password);
        if (v === Verdict.OK) return { verdict: Verdict.OK, grant: NO_GRANT, notes };
        if (v === Verdict.BUSY) return { verdict: v, notes, why: `server busy: password checks waiting (--auth-queue-max)` };
        if (!this.parts.knownUser(m.user)) continue;
        return { verdict: Verdict.BAD_CREDENTIALS, notes, why: 'bad username or password (password file)' };
      }
      if (method === 'http') {
        const r = await this.parts.http!.check({
          clientId: info.clientId, username: m.user, password, peerhost: info.peerhost, peerport: info.peerport,
          listener: info.listener, protoVer: info.protoVer,
        });
        notes |= r.notes;
        const v = r.value;
        if (v.result === 'allow') return { verdict: Verdict.OK, grant: { superuser: v.superuser, rules: v.rules, expiresAt: 0 }, notes };
        if (v.result === 'deny') return { verdict: Verdict.BAD_CREDENTIALS, notes, why: 'denied by the auth server (--auth-http-url)' };
        if (v.result === 'busy') return { verdict: Verdict.BUSY, notes, why: `server busy: ${this.config.authHttpMaxInflight} auth requests in flight (--auth-http-max-inflight)` };
        if (v.result === 'down') {
          if (this.config.authHttpWhenDown === 'deny') return { verdict: Verdict.UNAVAILABLE, notes, why: `auth server unavailable: ${v.why} (--auth-http-when-down deny)` };
          continue;
        }
        continue; // ignore
      }
      const r = await this.parts.jwt!.verify(m.user, password, info.clientId);
      if (r.result === 'allow') return { verdict: Verdict.OK, grant: { superuser: false, rules: r.rules, expiresAt: r.expiresAt }, notes };
      if (r.result === 'deny') return { verdict: Verdict.BAD_CREDENTIALS, notes: notes | N_JWT_REFUSED, why: r.why };
    }
    if (m.user === null && password === null) {
      if (anonymousAllowed(this.config)) return { verdict: Verdict.OK, grant: NO_GRANT, notes };
      return { verdict: Verdict.NOT_AUTHORIZED, notes, why: 'anonymous clients are not allowed' };
    }
    return { verdict: Verdict.BAD_CREDENTIALS, notes, why: `no method of --auth-chain (${this.methods.join(',')}) accepted the credentials` };
  }
}
