// What an allow's Grant (src/auth/messages.ts) does to a connection: a superuser skips every
// ACL; rules from the callout answer or the JWT go in front of the ACL file's
// (auth/client-acl.ts); a JWT's exp closes the connection when it passes.
//
// Expiry: one timer per connection whose token has an exp, none otherwise (nothing is armed or
// checked without JWT), cleared when the connection closes or moves to another worker (which
// checks the token again and arms its own). MQTT 5 gets DISCONNECT 0xA0 "Maximum connect time",
// which the spec defines as "the Connection is closed because it has been connected for longer
// than the maximum allowed time" [MQTT5-3.14.2.1]: the token's lifetime is exactly that limit
// (0x87 "Not authorized" would read as credentials refused, which they were not); v3 has no
// DISCONNECT from the server (its §3.14 DISCONNECT goes client to server) and is just closed.
import type { Grant } from '../../src/auth/messages';
import { C_AUTH_TOKEN_EXPIRED } from '../../src/shared/counters';
import { ConnState, type Connection } from '../net/connection';
import { RC } from '../protocol/constants';
import { ClientAcl } from './client-acl';

/** setTimeout's largest delay (~24.8 days); a later exp is re-armed when it passes. */
const MAX_DELAY = 2 ** 31 - 1;

/** Sets `c.acl` for a grant (before any SUBSCRIBE or PUBLISH of the connection). */
export function applyGrantAcl(c: Connection, grant: Grant, username: string | null, cacheEntries: number, count: (counter: number, n: number) => void): void {
  if (grant.superuser) { c.acl = null; return; }
  if (grant.rules) c.acl = new ClientAcl(grant.rules, c.clientId, username, c.acl, cacheEntries, count);
}

/** Closes `c` when its token expires (called once its CONNACK is sent). */
export function armExpiry(c: Connection, expiresAt: number, count: (counter: number, n: number) => void): void {
  if (expiresAt <= 0) return;
  const left = expiresAt - Date.now();
  c.expiryTimer = setTimeout(() => {
    c.expiryTimer = null;
    if (c.state === ConnState.CLOSED) return;
    if (expiresAt - Date.now() > 0) { armExpiry(c, expiresAt, count); return; }
    count(C_AUTH_TOKEN_EXPIRED, 1);
    c.protocolClose(RC.MAXIMUM_CONNECT_TIME);
  }, Math.max(0, Math.min(left, MAX_DELAY)));
  c.expiryTimer.unref();
}

/** The connection is gone (closed, or moved): its timer with it. */
export function disarmExpiry(c: Connection): void {
  if (c.expiryTimer !== null) { clearTimeout(c.expiryTimer); c.expiryTimer = null; }
}
