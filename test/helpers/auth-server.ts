// A real HTTP auth server for the broker's callout (--auth-http-url): listens on a free loopback
// port, records every request body, and answers with what the test's `answer` function says
// (status, JSON body, optional delay). Closed by `close()`, which also drops open sockets.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CalloutBody {
  clientid: string;
  username: string | null;
  password: string | null;
  peerhost: string;
  peerport: number;
  listener: string;
  protocol: string;
  proto_ver: number;
}

export interface Answer { status?: number; body?: unknown; delayMs?: number }

export class AuthServer {
  readonly requests: CalloutBody[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  port = 0;

  private constructor(answer: (b: CalloutBody) => Answer) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        let body: CalloutBody;
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CalloutBody; } catch { res.writeHead(400).end(); return; }
        this.requests.push(body);
        const a = answer(body);
        const send = () => {
          if (a.body === undefined) { res.writeHead(a.status ?? 200).end(); return; }
          const text = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
          res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(text);
        };
        if (!a.delayMs) { send(); return; }
        const t = setTimeout(() => { this.timers.delete(t); if (!res.destroyed) send(); }, a.delayMs);
        this.timers.add(t);
      });
    });
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
  }

  static async start(answer: (b: CalloutBody) => Answer): Promise<AuthServer> {
    const s = new AuthServer(answer);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string { return `http://127.0.0.1:${this.port}/mqtt/auth`; }

  /** Requests seen for `username`. */
  count(username: string): number { return this.requests.filter((r) => r.username === username).length; }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
