// The operations HTTP listener on the main thread (--http-port, --http-host): plain node:http, a
// fixed table of GET routes, nothing else. Bounded: at most MAX_CONNECTIONS open connections
// (more are closed at once and counted), requests must arrive within REQUEST_TIMEOUT_MS, and
// request bodies are read and discarded, never kept. A route that throws answers 500; nothing
// a client sends can throw into the event loop.
import { log } from '../log/logger';
import { limitedLog } from '../log/thread';
import { errFields } from '../log/thread-log';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Reply { status: number; body: string; contentType?: string }
export type Route = () => Reply | Promise<Reply>;

const MAX_CONNECTIONS = 64;
const REQUEST_TIMEOUT_MS = 10_000;
const ALLOW = 'GET, HEAD';

export class HttpListener {
  private readonly server: http.Server;
  /** Connections closed at once because MAX_CONNECTIONS were open (exported as a metric). */
  dropped = 0;

  constructor(private readonly routes: ReadonlyMap<string, Route>) {
    this.server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => this.handle(req, res));
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.on('drop', () => { this.dropped++; });
    this.server.on('clientError', (_err, socket) => {
      // A request that does not parse: the HTTP/1.1 answer, then close.
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Binds; rejects with one line naming the address and the reason (e.g. the port is taken). */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new Error(`HTTP listener (--http-port ${port}, --http-host ${host}): ${err.code ?? err.message}; --http-port -1 turns it off`));
      };
      this.server.once('error', onError);
      this.server.listen({ port, host }, () => {
        this.server.removeListener('error', onError);
        this.server.on('error', (err) => log.error(`fleetmq: HTTP listener error: ${err.message}`));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) { resolve(); return; }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume(); // a body, if any, is discarded: no route takes one
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const route = this.routes.get(q < 0 ? url : url.slice(0, q));
    if (!route) { send(res, { status: 404, body: 'not found: the paths are /metrics, /livez and /readyz\n' }); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', ALLOW);
      send(res, { status: 405, body: `method ${req.method} not allowed: ${ALLOW}\n` });
      return;
    }
    let reply: Reply | Promise<Reply>;
    try {
      reply = route();
    } catch (err) {
      reply = Promise.reject(err);
    }
    Promise.resolve(reply).then((r) => send(res, r), (err: Error) => {
      limitedLog().error('http-handler', `fleetmq: HTTP ${url} failed`, { err: errFields(err) });
      send(res, { status: 500, body: `internal error: ${err.message}\n` });
    });
  }
}

function send(res: http.ServerResponse, r: Reply): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(r.status, {
    'Content-Type': r.contentType ?? 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(r.body),
    'Cache-Control': 'no-store',
  });
  res.end(r.body); // on HEAD, node:http sends the headers only
}
