// The operations HTTP listener on the main thread (--http-port, --http-host): plain node:http, a
// fixed table of GET routes, and one prefix (/api/v1/, http/api.ts) that takes any method and a
// body. Bounded: at most MAX_CONNECTIONS open connections (more are closed at once and counted),
// requests must arrive within REQUEST_TIMEOUT_MS, bodies of the fixed routes are discarded and
// an API body over MAX_BODY_BYTES is answered 413 unread. A route that throws answers 500;
// nothing a client sends can throw into the event loop.
import { log } from '../log/logger';
import { limitedLog } from '../log/thread';
import { errFields } from '../log/thread-log';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Reply { status: number; body: string; contentType?: string; headers?: Record<string, string> }
export type Route = () => Reply | Promise<Reply>;

/** What the /api/v1/ handler is given of a request: its body is read already (bounded). */
export interface ApiRequest {
  method: string;
  /** The path after the prefix, still URL-encoded (a retained topic may hold '/'). */
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  body: Buffer;
}
export type ApiHandler = (req: ApiRequest) => Promise<Reply>;
export const API_PREFIX = '/api/v1/';
/** An API body larger than this (a publish payload, base64) is refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

const MAX_CONNECTIONS = 64;
const REQUEST_TIMEOUT_MS = 10_000;
const ALLOW = 'GET, HEAD';

export class HttpListener {
  private readonly server: http.Server;
  /** Connections closed at once because MAX_CONNECTIONS were open (exported as a metric). */
  dropped = 0;

  constructor(private readonly routes: ReadonlyMap<string, Route>, private readonly api: ApiHandler | null = null) {
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
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname.startsWith(API_PREFIX) || pathname === API_PREFIX.slice(0, -1)) { this.handleApi(req, res, pathname, q < 0 ? '' : url.slice(q + 1)); return; }
    req.resume(); // a body, if any, is discarded: no route takes one
    const route = this.routes.get(pathname);
    if (!route) { send(res, { status: 404, body: `not found: the paths are ${[...this.routes.keys()].join(', ')} and ${API_PREFIX}\n` }); return; }
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
    answer(res, url, reply);
  }

  /** /api/v1/...: the body is collected up to MAX_BODY_BYTES, then the handler decides. */
  private handleApi(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, query: string): void {
    if (!this.api) { req.resume(); send(res, { status: 404, body: 'not found: no API on this listener\n' }); return; }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      send(res, { status: 413, body: `request body over ${MAX_BODY_BYTES} bytes\n`, headers: { Connection: 'close' } });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY_BYTES) { over = true; chunks.length = 0; return; }
      if (!over) chunks.push(d);
    });
    req.on('error', () => { /* the socket closes; nothing to answer */ });
    req.on('end', () => {
      if (over) { send(res, { status: 413, body: `request body over ${MAX_BODY_BYTES} bytes\n` }); return; }
      let reply: Promise<Reply>;
      try {
        reply = this.api!({
          method: req.method ?? 'GET',
          path: pathname.slice(API_PREFIX.length),
          query: new URLSearchParams(query),
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks),
        });
      } catch (err) {
        reply = Promise.reject(err);
      }
      answer(res, pathname, reply);
    });
  }
}

function answer(res: http.ServerResponse, url: string, reply: Reply | Promise<Reply>): void {
  Promise.resolve(reply).then((r) => send(res, r), (err: Error) => {
    limitedLog().error('http-handler', `fleetmq: HTTP ${url} failed`, { err: errFields(err) });
    send(res, { status: 500, body: `internal error: ${err.message}\n` });
  });
}

function send(res: http.ServerResponse, r: Reply): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(r.status, {
    ...r.headers,
    'Content-Type': r.contentType ?? 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(r.body),
    'Cache-Control': 'no-store',
  });
  res.end(r.body); // on HEAD, node:http sends the headers only
}
