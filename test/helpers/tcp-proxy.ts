// A small loopback TCP proxy for fault injection in front of a server (etcd in the cluster tests).
// Modes, switchable at any time:
//   pass       forward both ways;
//   drop       close new connections at once (existing ones keep flowing);
//   delay      forward every chunk `delayMs` later (both ways, order kept);
//   blackhole  a network partition: existing connections stop forwarding (both sockets paused,
//              so the kernel buffers fill and the peers see nothing, not even a reset); new
//              connections are accepted and held without an upstream. Going back to pass resumes
//              the held bytes, like a healed partition (TCP would retransmit).
// cut() destroys every existing connection (both sides see a reset/close) whatever the mode.
import * as net from 'node:net';

export type ProxyMode = 'pass' | 'drop' | 'delay' | 'blackhole';

interface Pair { client: net.Socket; upstream: net.Socket | null; pending: Buffer[] }

export interface TcpProxy {
  port: number;
  url: string;
  mode(): ProxyMode;
  setMode(mode: ProxyMode, delayMs?: number): void;
  /** Destroy all current connections. */
  cut(): void;
  /** Connections currently open through the proxy. */
  connections(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  const pairs = new Set<Pair>();

  const forward = (from: net.Socket, to: () => net.Socket | null, pair: Pair) => {
    from.on('data', (d) => {
      const send = () => { const t = to(); if (t && !t.destroyed) t.write(d); else pair.pending.push(d); };
      if (mode === 'delay' && delayMs > 0) setTimeout(send, delayMs); else send();
    });
  };

  const connectUpstream = (pair: Pair) => {
    const up = net.connect(targetPort, targetHost);
    pair.upstream = up;
    up.setNoDelay(true);
    for (const b of pair.pending.splice(0)) up.write(b);
    forward(up, () => pair.client, pair);
    const end = () => destroyPair(pair);
    up.on('error', end);
    up.on('close', end);
  };

  const destroyPair = (pair: Pair) => {
    if (!pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  const server = net.createServer((client) => {
    if (mode === 'drop') { client.destroy(); return; }
    client.setNoDelay(true);
    const pair: Pair = { client, upstream: null, pending: [] };
    pairs.add(pair);
    client.on('error', () => destroyPair(pair));
    client.on('close', () => destroyPair(pair));
    forward(client, () => pair.upstream, pair);
    if (mode === 'blackhole') client.pause(); // held: accepted, nothing read, no upstream yet
    else connectUpstream(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    mode: () => mode,
    setMode(m, ms = 0) {
      const was = mode;
      mode = m;
      delayMs = ms;
      if (m === 'blackhole') {
        for (const p of pairs) { p.client.pause(); p.upstream?.pause(); }
      } else if (was === 'blackhole') {
        for (const p of pairs) {
          if (!p.upstream) connectUpstream(p);
          p.client.resume();
          p.upstream?.resume();
        }
      }
    },
    cut() { for (const p of [...pairs]) destroyPair(p); },
    connections: () => pairs.size,
    async close() {
      for (const p of [...pairs]) destroyPair(p);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
