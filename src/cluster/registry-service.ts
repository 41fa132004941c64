// The registry's control RPCs on the peer link: the `fleetmq.Registry` service added to this
// node's PeerServer, and the RegistryTransport that calls it on the other members through
// PeerLinks. Unary calls with small JSON bodies in raw Buffers (peer-server.ts, "CONTRACT"):
// at most a few per CONNECT, none per message. A body that is not what a method expects is
// refused with INVALID_ARGUMENT and never reaches the registry.
import * as grpc from '@grpc/grpc-js';
import { bytesMethod, type PeerServer } from './peer-server';
import type { PeerLinks } from './peer-links';
import type { ClusterRegistry } from './registry';
import type {
  AssertAns, AssertReq, RegisterAns, RegisterReq, RegistryTransport, ReleaseAns, ReleaseReq, SyncedReq, UnregisterReq,
} from './registry-wire';

const SERVICE = 'Registry';
const method = (name: string) => bytesMethod(SERVICE, name, 'unary');
const M = {
  Register: method('Register'),
  Assert: method('Assert'),
  Release: method('Release'),
  Synced: method('Synced'),
  Unregister: method('Unregister'),
} as const;

const str = (x: unknown): x is string => typeof x === 'string';
const num = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const rec = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
const revOk = (x: unknown): boolean => str(x) && /^\d{1,20}$/.test(x);
const ownerOk = (o: unknown): boolean => rec(o) && str(o.node) && str(o.inc) && num(o.seq);
const itemsOk = (x: unknown): boolean => Array.isArray(x) && x.every((i) => rec(i) && str(i.id) && num(i.seq));

/** Shape checks: what a peer sends is not trusted to be what the code expects. */
const valid = {
  Register: (r: Record<string, unknown>) => str(r.id) && ownerOk(r.owner) && str(r.vid) && revOk(r.rev),
  Assert: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && str(r.vid) && revOk(r.rev) && itemsOk(r.items),
  Release: (r: Record<string, unknown>) => str(r.id) && ownerOk(r.target) && ownerOk(r.by),
  Synced: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && str(r.vid) && revOk(r.rev),
  Unregister: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && itemsOk(r.items),
};

type Handler = (req: never) => Promise<unknown> | unknown;

/**
 * Adds the registry service to `server` (before the node joins). `registry()` is null until the
 * coordinator has built it: calls before that are UNAVAILABLE and the caller retries.
 */
export function addRegistryService(server: PeerServer, registry: () => ClusterRegistry | null): void {
  const impl: grpc.UntypedServiceImplementation = {};
  const handlers: Record<keyof typeof M, (r: ClusterRegistry) => Handler> = {
    Register: (r) => (req: RegisterReq) => r.onRegister(req),
    Assert: (r) => (req: AssertReq) => r.onAssert(req),
    Release: (r) => (req: ReleaseReq) => r.onRelease(req),
    Synced: (r) => (req: SyncedReq) => { r.onSynced(req); return {}; },
    Unregister: (r) => (req: UnregisterReq) => { r.onUnregister(req); return {}; },
  };
  for (const name of Object.keys(M) as Array<keyof typeof M>) {
    impl[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const reg = registry();
      if (!reg) { cb({ code: grpc.status.UNAVAILABLE, details: 'registry not ready' }); return; }
      let body: unknown;
      try { body = JSON.parse(call.request.toString('utf8')); } catch { body = null; }
      if (!rec(body) || !valid[name](body)) { cb({ code: grpc.status.INVALID_ARGUMENT, details: `not a ${name} request` }); return; }
      Promise.resolve()
        .then(() => handlers[name](reg)(body as never))
        .then((ans) => cb(null, Buffer.from(JSON.stringify(ans))), (err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }));
    };
  }
  const definition: grpc.ServiceDefinition = { ...M };
  server.addService(definition, impl);
}

const identity = (b: Buffer): Buffer => b;

/** Calls other members' registry service over their current peer link. */
export class GrpcRegistryTransport implements RegistryTransport {
  /**
   * @param callMs deadline of one call.
   * @param releaseMs deadline of a Release, which waits for the old connection to close (and, if
   *   a claim of the old owner is on its way, for that claim to end first).
   */
  constructor(private readonly links: PeerLinks, private readonly callMs: number, private readonly releaseMs: number) {}

  private call<T>(node: string, m: grpc.MethodDefinition<Buffer, Buffer>, req: unknown, ms: number): Promise<T> {
    const link = this.links.link(node);
    if (!link) return Promise.reject(new Error(`no peer link to ${node}`));
    return new Promise<T>((resolve, reject) => {
      link.client.makeUnaryRequest(m.path, identity, identity, Buffer.from(JSON.stringify(req)), new grpc.Metadata(),
        { deadline: Date.now() + ms }, (err, res) => {
          if (err || !res) { reject(err ?? new Error('empty answer')); return; }
          try { resolve(JSON.parse(res.toString('utf8')) as T); } catch (e) { reject(e as Error); }
        });
    });
  }

  register(node: string, req: RegisterReq): Promise<RegisterAns> { return this.call(node, M.Register, req, this.callMs); }
  assert(node: string, req: AssertReq): Promise<AssertAns> { return this.call(node, M.Assert, req, this.callMs); }
  release(node: string, req: ReleaseReq): Promise<ReleaseAns> { return this.call(node, M.Release, req, this.releaseMs); }
  async synced(node: string, req: SyncedReq): Promise<void> { await this.call(node, M.Synced, req, this.callMs); }
  async unregister(node: string, req: UnregisterReq): Promise<void> { await this.call(node, M.Unregister, req, this.callMs); }
}
