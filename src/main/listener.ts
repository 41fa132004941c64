// Accepts TCP connections on the main thread and hands each one's fd to the least-loaded
// worker (src/README.md, "Threads"). The main thread never reads a byte of MQTT, and never a
// TLS or WebSocket byte either: every listener (src/shared/listeners.ts) accepts the same way
// and tells the worker its index; TLS and WebSocket terminate in that worker, so the crypto
// spreads over the workers instead of loading this one thread.
import { log } from '../log/logger';
import { limitedLog } from '../log/thread';
import * as net from 'node:net';
import { native } from '../native';
import type { Supervisor } from './supervisor';
import type { ListenerSpec } from '../shared/listeners';
import { AcceptRate } from './accept-rate';
import { C_REFUSED_MAX_CONNECTIONS } from '../shared/counters';

/** What libuv hands a listening TCP handle's `onconnection`: the accepted connection's handle. */
interface ClientHandle { fd?: number; close(): void }
interface ServerHandle { onconnection?: (err: number, client: ClientHandle | undefined) => void }

export class Listener {
  private readonly server: net.Server;
  /** Connections refused because no worker could take them (its accept ring was full). */
  refused = 0;

  private rate: AcceptRate | null;

  /**
   * `index`: this listener's place in listenerSpecs(config), sent with each fd; `spec` its
   * limits; `maxConnections`: the global bound (0: none).
   */
  constructor(private readonly supervisor: Supervisor, private readonly index = 0, private spec: ListenerSpec | null = null, private maxConnections = 0) {
    const count = (c: number, n: number) => supervisor.countMain(c, n);
    this.rate = spec && spec.maxConnectionRate > 0 ? new AcceptRate(spec.maxConnectionRate, (s) => this.admit(s), count) : null;
    this.server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
      if (this.rate) this.rate.offer(socket);
      else this.admit(socket);
    });
    this.server.on('error', (err) => {
      log.error(`fleetmq: listener error: ${err.message}`);
    });
  }

  listen(port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ port, host, backlog: 4096 }, () => {
        this.server.removeListener('error', onError);
        this.acceptHandles();
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  /** SIGHUP: new bounds for connections accepted from now on (open ones stay). */
  setLimits(maxConnections: number, spec: ListenerSpec): void {
    this.maxConnections = maxConnections;
    this.spec = spec;
    if (this.rate) this.rate.setRate(spec.maxConnectionRate);
    else if (spec.maxConnectionRate > 0) this.rate = new AcceptRate(spec.maxConnectionRate, (s) => this.admit(s), (c, n) => this.supervisor.countMain(c, n));
  }

  close(): Promise<void> {
    this.rate?.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Without a connection rate, an accepted connection never becomes a net.Socket here: its fd is
   * taken from libuv's handle, duplicated for the worker and the handle closed. A Socket (two
   * stream states, listeners, a destroy) made only to be destroyed was most of this thread's
   * cost per connection. Node calls the listening handle's `onconnection` with each accepted
   * handle (net.js sets it at listen); anything unexpected falls back to Node's own path.
   */
  private acceptHandles(): void {
    const h = (this.server as unknown as { _handle?: ServerHandle | null })._handle;
    const nodeOwn = h?.onconnection;
    if (!h || typeof nodeOwn !== 'function') return;
    h.onconnection = (err, client) => {
      if (err || client === undefined || this.rate !== null || typeof client.fd !== 'number' || client.fd < 0) { nodeOwn.call(h, err, client); return; }
      if (this.full()) { client.close(); return; }
      this.handOffFd(client.fd, () => client.close(), true);
      // libuv accepts until the backlog is empty, one call each: the turn's hand-offs are
      // published (and a sleeping worker woken) once, after them.
      if (!this.publishQueued) { this.publishQueued = true; setImmediate(this.publishBound); }
    };
  }

  private publishQueued = false;
  private readonly publishBound = (): void => { this.publishQueued = false; this.supervisor.publishHandOffs(); };

  /** At a bound (see admit): counted, and the caller closes the connection unread. */
  private full(): boolean {
    const open = this.supervisor.open;
    const own = this.spec?.maxConnections ?? 0;
    if ((this.maxConnections > 0 && open.total() >= this.maxConnections) || (own > 0 && open.onListener(this.index) >= own)) {
      this.supervisor.countMain(C_REFUSED_MAX_CONNECTIONS, 1);
      return true;
    }
    return false;
  }

  /**
   * --max-connections and the listener's maxConnections, against what the workers hold now
   * (src/shared/open-connections.ts): one more is closed unread and counted. The check is at
   * hand-off, so a connection that waited for the rate is checked when it leaves the wait.
   */
  private admit(socket: net.Socket): void {
    if (this.full()) { socket.destroy(); return; }
    // _handle.fd is the only way to reach the descriptor; Node has no API to move a socket
    // to another thread (src/README.md, "Measured").
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) { socket.destroy(); return; }
    this.handOffFd(fd, () => socket.destroy());
  }

  /** A copy of `fd` goes to a worker; `close` closes this thread's own (after the copy is made). */
  private handOffFd(fd: number, close: () => void, defer = false): void {
    let copy: number;
    try {
      copy = native.dupFd(fd);
    } catch (err) {
      limitedLog().error('handover-failed', `fleetmq: cannot hand over a connection: ${(err as Error).message}`);
      close();
      return;
    }
    close();
    if (!this.supervisor.handOff(copy, this.index, defer)) {
      native.closeFd(copy);
      this.refused++;
    }
  }
}
