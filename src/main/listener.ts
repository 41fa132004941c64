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

export class Listener {
  private readonly server: net.Server;
  /** Connections refused because no worker could take them (its accept ring was full). */
  refused = 0;

  /** `index`: this listener's place in listenerSpecs(config), sent with each fd. */
  constructor(private readonly supervisor: Supervisor, private readonly index = 0) {
    this.server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.handOff(socket));
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
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handOff(socket: net.Socket): void {
    // _handle.fd is the only way to reach the descriptor; Node has no API to move a socket
    // to another thread (src/README.md, "Measured").
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) { socket.destroy(); return; }
    let copy: number;
    try {
      copy = native.dupFd(fd);
    } catch (err) {
      limitedLog().error('handover-failed', `fleetmq: cannot hand over a connection: ${(err as Error).message}`);
      socket.destroy();
      return;
    }
    socket.destroy();
    if (!this.supervisor.handOff(copy, this.index)) {
      native.closeFd(copy);
      this.refused++;
    }
  }
}
