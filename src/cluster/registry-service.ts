// The registry's control RPCs on the peer link: the `fleetmq.Registry` service added to this
// node's PeerServer, and the RegistryTransport that calls it on the other members through
// PeerLinks. Unary calls with small JSON bodies in raw Buffers (peer-server.ts, "CONTRACT"):
// at most a few per CONNECT, none per message. Registrations to one node are batched per event
// loop turn (a burst of CONNECTs costs one call per home, not one each: on a loaded 2-core
// machine, one gRPC call per CONNECT stalled the coordinator's loop for seconds). A body that is
// not what a method expects is refused with INVALID_ARGUMENT and never reaches the registry.
import * as grpc from '@grpc/grpc-js';
import { bytesMethod, type PeerServer } from './peer-server';
import type { PeerLinks } from './peer-links';
import type { ClusterRegistry } from './registry';
import type {
  AssertAns, AssertReq, RegisterAns, RegisterReq, RegistryTransport, ReleaseAns, ReleaseReq, SyncedReq, UnregisterReq,
} from './registry-wire';

const SERVICE = 'Registry';
const method = (name: string) => bytesMethod(SERVICE, name, 'unary');
/** Most registrations in one call. */
const MAX_BATCH = 1000;

const M = {
  Register: method('RegisterMany'),
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
const valid: Record<keyof typeof M, (r: Record<string, unknown>) => boolean> = {
  Register: () => false, // an array: registerOk
  Assert: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && str(r.vid) && revOk(r.rev) && itemsOk(r.items),
  Release: (r: Record<string, unknown>) => str(r.id) && ownerOk(r.target) && ownerOk(r.by) && (r.keep === undefined || typeof r.keep === 'boolean'),
  Synced: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && str(r.vid) && revOk(r.rev),
  Unregister: (r: Record<string, unknown>) => str(r.node) && str(r.inc) && itemsOk(r.items),
};

const registerOk = (r: unknown): boolean => Array.isArray(r) && r.length <= MAX_BATCH &&
  r.every((x: unknown) => rec(x) && str(x.id) && ownerOk(x.owner) && str(x.vid) && revOk(x.rev));

type Handler = (req: never) => Promise<unknown> | unknown;

/**
 * Adds the registry service to `server` (before the node joins). `registry()` is null until the
 * coordinator has built it: calls before that are UNAVAILABLE and the caller retries.
 */
export function addRegistryService(server: PeerServer, registry: () => ClusterRegistry | null): void {
  const impl: grpc.UntypedServiceImplementation = {};
  const handlers: Record<keyof typeof M, (r: ClusterRegistry) => Handler> = {
    Register: (r) => (reqs: RegisterReq[]) => Promise.all(reqs.map((req) => r.onRegister(req))),
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
      if (!(name === 'Register' ? registerOk(body) : rec(body) && valid[name](body))) { cb({ code: grpc.status.INVALID_ARGUMENT, details: `not a ${name} request` }); return; }
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

  private readonly batches = new Map<string, Array<{ req: RegisterReq; resolve: (a: RegisterAns) => void; reject: (e: Error) => void }>>();

  /** Queued for this turn's call to `node` (one call per home per turn, MAX_BATCH at most). */
  register(node: string, req: RegisterReq): Promise<RegisterAns> {
    return new Promise((resolve, reject) => {
      let q = this.batches.get(node);
      if (!q) { this.batches.set(node, (q = [])); setImmediate(() => this.flush(node)); }
      q.push({ req, resolve, reject });
    });
  }

  private flush(node: string): void {
    const q = this.batches.get(node) ?? [];
    this.batches.delete(node);
    for (let i = 0; i < q.length; i += MAX_BATCH) {
      const part = q.slice(i, i + MAX_BATCH);
      this.call<RegisterAns[]>(node, M.Register, part.map((x) => x.req), this.callMs).then((answers) => {
        if (!Array.isArray(answers) || answers.length !== part.length) { for (const x of part) x.reject(new Error('bad RegisterMany answer')); return; }
        part.forEach((x, j) => x.resolve(answers[j]));
      }, (err: Error) => { for (const x of part) x.reject(err); });
    }
  }

  assert(node: string, req: AssertReq): Promise<AssertAns> { return this.call(node, M.Assert, req, this.callMs); }
  release(node: string, req: ReleaseReq): Promise<ReleaseAns> { return this.call(node, M.Release, req, this.releaseMs); }
  async synced(node: string, req: SyncedReq): Promise<void> { await this.call(node, M.Synced, req, this.callMs); }
  async unregister(node: string, req: UnregisterReq): Promise<void> { await this.call(node, M.Unregister, req, this.callMs); }
}
