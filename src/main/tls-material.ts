// Reads every TLS listener's certificate files on the main thread, at start and on SIGHUP, and
// checks them by building a SecureContext once here: a file that is missing, not PEM, or a key
// that does not match the certificate is one clear line (at start: exit 1; on SIGHUP: the
// previous certificates stay in force). Workers get the PEM text and build their own contexts
// (TLS terminates in the worker that owns the connection: workers/README.md, "TLS and
// WebSocket").
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import * as crypto from 'node:crypto';
import type { ListenerSpec, TlsMaterial } from '../shared/listeners';

/** Made once per process: every listener, worker and reload uses the same ticket keys. */
let ticketKeys: string | null = null;

function read(what: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The checked PEM text of each listener in `specs` (null for one without TLS), or null when
 * none has TLS; throws Error with one line naming the file.
 */
export function readTlsMaterial(specs: readonly ListenerSpec[]): (TlsMaterial | null)[] | null {
  if (!specs.some((s) => s.tls)) return null;
  ticketKeys ??= crypto.randomBytes(48).toString('base64');
  const cache = new Map<string, TlsMaterial>();
  return specs.map((s) => {
    if (!s.tls) return null;
    const { cert, key, ca, crl } = s.tls;
    const id = JSON.stringify([cert, key, ca, crl]);
    const known = cache.get(id);
    if (known) return known;
    const m: TlsMaterial = { cert: read('--cert', cert), key: read('--key', key), ca: ca ? read('--ca', ca) : null, crl: crl ? read('--crl', crl) : null, ticketKeys: ticketKeys! };
    try {
      tls.createSecureContext({ cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}), ...(m.crl ? { crl: m.crl } : {}) });
    } catch (err) {
      throw new Error(`--cert ${cert} / --key ${key}${ca ? ` / --ca ${ca}` : ''}${crl ? ` / --crl ${crl}` : ''}: ${(err as Error).message}`);
    }
    // A resumed TLS session skips the certificate check: with a CRL, tickets are sealed with keys
    // derived from its text, so a new CRL (SIGHUP) voids every ticket issued under the old one
    // and a client revoked since must do a full handshake, which fails.
    if (m.crl) m.ticketKeys = crypto.createHmac('sha384', Buffer.from(ticketKeys!, 'base64')).update(m.crl).digest('base64');
    cache.set(id, m);
    return m;
  });
}

/** The serial numbers of the certificates in force, for the log line of a reload. */
export function certSerials(material: readonly (TlsMaterial | null)[]): string {
  const serials = new Set<string>();
  for (const m of material) {
    if (!m) continue;
    try { serials.add(new crypto.X509Certificate(m.cert).serialNumber); } catch { serials.add('unknown'); }
  }
  return [...serials].join(', ');
}
