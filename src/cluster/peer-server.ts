// The node's gRPC server on --cluster-port: every node-to-node service (route sync, forwarding,
// and the client-id registry / takeover built on top) is added to this one server.
//
// CONTRACT (read by every module that adds a service):
// - Run by the coordinator thread, only with --etcd. `new PeerServer()`, then any number of
//   `addService(definition, implementation)`, then `start(host, port)` ONCE, before the
//   membership join: the port it resolves to (port 0 = a free one) is what the member record in
//   etcd announces, so peers can reach every service as soon as they see this node.
//   `addService` after `start` throws (grpc-js can add services later, but a peer that sees the
//   node must find every service at once).
// - Services are hand-written definitions whose messages are raw Buffers (`bytesMethod` below):
//   the forwarding path carries batched frames of bytes and must do no protobuf work per
//   message; control services encode their own small messages (JSON or a binary layout of
//   their own) in the same Buffers. Method paths are `/fleetmq.<Service>/<Method>`.
// - Server options: keepalive pings every 10 s (>= 5 s: a peer that GOAWAYs faster pings is
//   never provoked), 5 s ping timeout, pings allowed without calls (clients ping idle
//   channels), messages up to MAX_MESSAGE_BYTES, a per-stream flow-control window of
//   STREAM_WINDOW_BYTES (HTTP/2's default 64 KiB caps a stream at one window per round trip).
// - Garbage on the port (not HTTP/2, or HTTP/2 but not gRPC) is closed by grpc-js / Node's
//   http2 on that connection alone; nothing reaches a service and the node keeps serving
//   (test/integration/3z-cluster-pubsub.test.ts).
// - `stop()` closes listeners and calls: graceful for STOP_GRACE_MS, then forced.
import * as grpc from '@grpc/grpc-js';

export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const STREAM_WINDOW_BYTES = 1024 * 1024;
export const KEEPALIVE_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 1_000;

/** Server and channel options shared by both ends of a peer link. */
export const PEER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  // A server rejects pings closer than this; ours ping every KEEPALIVE_MS.
  'grpc.http2.min_ping_interval_without_data_ms': KEEPALIVE_MS / 2,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc-node.flow_control_window': STREAM_WINDOW_BYTES,
};

const identity = (b: Buffer): Buffer => b;

/** One method of a hand-written service whose requests and responses are raw Buffers. */
export function bytesMethod(service: string, method: string, kind: 'unary' | 'clientStream' | 'serverStream' | 'bidi'):
  grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/fleetmq.${service}/${method}`,
    requestStream: kind === 'clientStream' || kind === 'bidi',
    responseStream: kind === 'serverStream' || kind === 'bidi',
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

export class PeerServer {
  private readonly server: grpc.Server;
  private started = false;
  private boundPort = 0;

  constructor() {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': KEEPALIVE_MS / 2,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    });
    // grpc-js has no server option for the HTTP/2 window; it hands these settings to
    // http2.createSecureServer/createServer when it binds (checked with grpc-js 1.14).
    const common = (this.server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } }).commonServerOptions;
    if (common) common.settings = { ...common.settings, initialWindowSize: STREAM_WINDOW_BYTES };
  }

  /** Adds a service; only before start(). */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    if (this.started) throw new Error('PeerServer.addService after start(): add every service before the node joins');
    this.server.addService(definition, implementation);
  }

  /** Binds host:port (0 = a free port) and resolves to the bound port. */
  start(host: string, port: number): Promise<number> {
    if (this.started) return Promise.reject(new Error('PeerServer already started'));
    this.started = true;
    const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(where, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) { reject(new Error(`cannot listen on cluster port ${where}: ${err.message}`)); return; }
        this.boundPort = bound;
        resolve(bound);
      });
    });
  }

  get port(): number { return this.boundPort; }

  /** Graceful for a second, then forced. Never throws. */
  stop(): Promise<void> {
    if (!this.started) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => { this.server.forceShutdown(); resolve(); }, STOP_GRACE_MS);
      this.server.tryShutdown(() => { clearTimeout(force); resolve(); });
    });
  }
}
