// HTTP requests to the broker's operations listener (/metrics, /livez, /readyz), with bounded waits.
import * as http from 'node:http';
import { WAIT_MS } from './wait';

export interface HttpAnswer { status: number; headers: http.IncomingHttpHeaders; body: string }

/**
 * One request to 127.0.0.1:`port`; resolves with status, headers and body, rejects on a
 * connection error or after `ms`. `agent` (keep-alive) reuses a connection made earlier.
 */
export function request(port: number, path: string, opts: { method?: string; agent?: http.Agent; ms?: number; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {}): Promise<HttpAnswer> {
  const ms = opts.ms ?? WAIT_MS;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => { clearTimeout(t); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }); });
      res.on('error', (err) => { clearTimeout(t); reject(err); });
    });
    const t = setTimeout(() => { req.destroy(); reject(new Error(`${opts.method ?? 'GET'} ${path} on port ${port}: no answer within ${ms} ms`)); }, ms);
    req.on('error', (err) => { clearTimeout(t); reject(new Error(`${opts.method ?? 'GET'} ${path} on port ${port}: ${err.message}`)); });
    req.end(opts.body);
  });
}

/** HTTP Basic credentials for `headers` (the admin API's API keys). */
export function basic(name: string, secret: string): { authorization: string } {
  return { authorization: `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` };
}
