// Certificates for the TLS tests, made by the real `openssl` in a temp dir: a CA, server
// certificates for 127.0.0.1 / localhost with chosen serial numbers, client certificates, and
// a second CA nobody trusts. EC P-256 keys: quick to make, and what Mosquitto and Node accept.
// A missing openssl fails the test with the line that installs it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const INSTALL = 'apt-get install openssl';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 60000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`openssl not found: ${INSTALL}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface Ca { dir: string; name: string; cert: string; key: string }

/** A self-signed CA: `<dir>/<name>.crt` and `.key`. */
export function makeCa(dir: string, name: string): Ca {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=fleetmq test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, name, cert, key };
}

export interface Issued { cert: string; key: string }

/**
 * A certificate signed by `ca`: `subject` as openssl's -subj ('/CN=alice', or '/O=x' for one
 * without a CN), serial `serial` (hex), for a server (127.0.0.1 and localhost) or a client.
 */
export function issue(ca: Ca, name: string, subject: string, serial: string, role: 'server' | 'client'): Issued {
  const dir = ca.dir;
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    role === 'server' ? 'extendedKeyUsage=serverAuth' : 'extendedKeyUsage=clientAuth',
    ...(role === 'server' ? ['subjectAltName=IP:127.0.0.1,DNS:localhost'] : []),
    '',
  ].join('\n'));
  openssl(['req', '-new', ...KEY, '-keyout', key, '-out', csr, '-subj', subject], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serial}`, '-days', '2', '-out', cert, '-extfile', ext], dir);
  return { cert, key };
}

/**
 * A PEM CRL signed by `ca` that revokes `revoked` (none: an empty CRL), written to `out` (an
 * existing file is replaced, as an operator's update would). Made with `openssl ca` over a
 * fresh database each time.
 */
export function makeCrl(ca: Ca, revoked: readonly Issued[], out: string): string {
  const db = fs.mkdtempSync(path.join(ca.dir, 'crl-'));
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'crlnumber'), '1000\n');
  const cnf = path.join(db, 'ca.cnf');
  fs.writeFileSync(cnf, [
    '[ ca ]', 'default_ca = d', '[ d ]', `database = ${path.join(db, 'index.txt')}`, `crlnumber = ${path.join(db, 'crlnumber')}`,
    'default_md = sha256', 'default_crl_days = 2', `certificate = ${ca.cert}`, `private_key = ${ca.key}`, '',
  ].join('\n'));
  for (const r of revoked) openssl(['ca', '-config', cnf, '-revoke', r.cert], db);
  const tmp = path.join(db, 'crl.pem');
  openssl(['ca', '-config', cnf, '-gencrl', '-out', tmp], db);
  fs.copyFileSync(tmp, out);
  return out;
}
