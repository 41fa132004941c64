// The few etcd operations the cluster layer needs, behind an interface of ours.
//
// Implemented with the `etcd3` package (1.1.2), which is old and bundles its own gRPC stack, so
// nothing outside this file imports it. What we take from it and what we do ourselves:
//  - its gRPC stubs and connection pool (one channel per endpoint, random endpoint per call);
//  - NOT its fault handling: its default global retry (3 attempts, no overall budget) and
//    per-host circuit breaker (opens for 5 s after 3 failures) make a call's duration
//    unpredictable, which fencing cannot live with. Both are replaced by no-op policies and
//    every unary call here is retried by `attempt()` below: one attempt = one endpoint with a
//    per-attempt deadline (default 1 s), repeated on a transient error until the caller's
//    overall budget is spent. A killed endpoint fails at once (connection refused), a stalled
//    one (no leader) after its deadline, so within a budget of a few seconds another endpoint
//    is tried.
//  - NOT its `Lease` class: it starts its own keepalive loop and its `lost` event fires at ~2×TTL,
//    after etcd already expired the lease. `keepAliveOnce` opens a LeaseKeepAlive stream with a
//    deadline, sends one request, waits for one answer and closes it; the caller owns the loop.
//  - its watch manager (reconnects the stream with backoff and resumes from the last revision);
//    a cancelled watch (e.g. compacted revision) is reported to the caller, who re-lists.
// gRPC keepalive: 6 s pings with a 3 s timeout. etcd answers pings more frequent than its
// --grpc-keepalive-min-time (5 s) with GOAWAY, so never below that; pings are only sent while a
// stream (watch) is open, because etcd also refuses pings without streams.
import { Etcd3, isRecoverableError, castGrpcError } from 'etcd3';
import { noop, ExponentialBackoff } from 'cockatiel';
import { EtcdConfigError, parseEndpoints } from './names';

export interface KeyValue {
  key: string;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  /** Lease id as a decimal string ('0' = no lease). */
  lease: string;
}

export interface PutIfAbsentResult {
  created: boolean;
  /** Store revision after the transaction. */
  revision: bigint;
  /** When not created: the key that was already there. */
  existing?: KeyValue;
}

export interface WatchEvent { type: 'put' | 'delete'; kv: KeyValue }

export interface WatchBatch { revision: bigint; events: WatchEvent[] }

export interface WatchHandle { cancel(): Promise<void> }

export interface WatchCallbacks {
  onBatch(batch: WatchBatch): void;
  /** The watch was cancelled by etcd (e.g. its start revision was compacted); it will not resume. */
  onCancelled(err: Error): void;
  /** The stream broke; the client reconnects and resumes by itself. Informational. */
  onDisconnected?(err: Error): void;
}

export interface CallBudget {
  /** Overall time for the call including retries on other endpoints (ms). */
  budgetMs?: number;
}

/** The operations the cluster layer uses. Lease ids are decimal strings. */
export interface EtcdClient {
  readonly endpoints: readonly string[];
  leaseGrant(ttlSec: number, opts?: CallBudget): Promise<{ id: string; ttlSec: number }>;
  /** One keepalive round trip; resolves to the TTL etcd renewed the lease to (0 = lease gone). */
  leaseKeepAliveOnce(id: string, opts?: CallBudget): Promise<{ ttlSec: number }>;
  leaseRevoke(id: string, opts?: CallBudget): Promise<void>;
  putIfAbsent(key: string, value: Buffer, leaseId: string, opts?: CallBudget): Promise<PutIfAbsentResult>;
  getPrefix(prefix: string, opts?: CallBudget): Promise<{ revision: bigint; kvs: KeyValue[] }>;
  /** Deletes `key` only if its mod revision is still `modRevision`; true when deleted. */
  deleteIfUnchanged(key: string, modRevision: bigint, opts?: CallBudget): Promise<boolean>;
  watchPrefix(prefix: string, fromRevision: bigint, cb: WatchCallbacks): Promise<WatchHandle>;
  close(): void;
}

export interface EtcdClientOptions {
  /** e.g. ['http://127.0.0.1:2379'] or a comma-separated string. */
  endpoints: string[] | string;
  /** Deadline of one attempt on one endpoint (ms). Default 1000. */
  attemptTimeoutMs?: number;
  /** Default overall budget of a unary call including retries (ms). Default 3000. */
  defaultBudgetMs?: number;
}

// Endpoint syntax lives in names.ts (config.ts checks it without loading etcd3).
export { EtcdConfigError, parseEndpoints };

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) { end[i]++; return end.subarray(0, i + 1); }
  }
  return Buffer.from([0]);
}

interface RawKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; lease: string }

function toKv(raw: RawKv): KeyValue {
  return {
    key: raw.key.toString(),
    value: raw.value,
    createRevision: BigInt(raw.create_revision),
    modRevision: BigInt(raw.mod_revision),
    lease: String(raw.lease ?? '0'),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Etcd3Client implements EtcdClient {
  readonly endpoints: readonly string[];
  private readonly etcd: Etcd3;
  private readonly attemptMs: number;
  private readonly budgetMs: number;
  private closed = false;

  constructor(opts: EtcdClientOptions) {
    this.endpoints = parseEndpoints(opts.endpoints);
    this.attemptMs = opts.attemptTimeoutMs ?? 1000;
    this.budgetMs = opts.defaultBudgetMs ?? 3000;
    this.etcd = new Etcd3({
      hosts: [...this.endpoints],
      grpcOptions: {
        'grpc.keepalive_time_ms': 6000,
        'grpc.keepalive_timeout_ms': 3000,
        'grpc.keepalive_permit_without_calls': 0,
        // Reconnect quickly after an endpoint comes back (grpc-js default backoff grows to 120 s).
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.attemptMs }),
      faultHandling: {
        host: () => noop,
        global: noop,
        // etcd3 calls .next() on this once to get the first backoff.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as never,
      },
    });
  }

  /** Runs `fn` (one attempt on one endpoint) until it succeeds, fails for good, or the budget is spent. */
  private async attempt<T>(what: string, opts: CallBudget | undefined, fn: () => Promise<T>): Promise<T> {
    const budget = opts?.budgetMs ?? this.budgetMs;
    const end = Date.now() + budget;
    let last: unknown;
    let n = 0;
    for (;;) {
      if (this.closed) throw new Error(`etcd ${what}: client closed`);
      n++;
      try {
        return await fn();
      } catch (err) {
        last = err;
        if (!(err instanceof Error) || !isRecoverableError(err)) throw err;
      }
      const left = end - Date.now();
      if (left <= 0) break;
      // A refused connection fails in microseconds: do not spin on it.
      await sleep(Math.min(50, left));
      if (Date.now() >= end) break;
    }
    let msg = (last instanceof Error ? last.message : String(last)).replace(/\s*Resolution note:\s*$/, '');
    if (/Protocol error/i.test(msg)) msg += ' (something answers there, but not etcd\'s gRPC: is this an etcd client URL?)';
    const e = new EtcdUnavailableError(`etcd ${what} failed after ${n} attempt(s) in ${Math.round(budget)} ms on ${this.endpoints.join(',')}: ${msg}`);
    e.cause = last;
    throw e;
  }

  private deadline(): Date { return new Date(Date.now() + this.attemptMs); }

  async leaseGrant(ttlSec: number, opts?: CallBudget) {
    const res = await this.attempt('lease grant', opts, () => this.etcd.leaseClient.leaseGrant({ TTL: ttlSec, ID: 0 }));
    if (res.error) throw new Error(`etcd lease grant refused: ${res.error}`);
    return { id: String(res.ID), ttlSec: Number(res.TTL) };
  }

  leaseKeepAliveOnce(id: string, opts?: CallBudget) {
    return this.attempt('lease keepalive', opts, async () => {
      const stream = await this.etcd.leaseClient.leaseKeepAlive({ deadline: this.deadline() });
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on('data', resolve);
          stream.on('error', (err: Error) => reject(castError(err)));
          stream.on('end', () => reject(castError(Object.assign(new Error('keepalive stream ended'), { code: 14 }))));
          stream.write({ ID: id });
        });
        return { ttlSec: Number(res.TTL) };
      } finally {
        (stream as unknown as NodeJS.EventEmitter).removeAllListeners('data').removeAllListeners('end');
        stream.on('error', () => undefined); // the cancel below may surface as an error
        stream.cancel();
      }
    });
  }

  async leaseRevoke(id: string, opts?: CallBudget) {
    try {
      await this.attempt('lease revoke', opts, () => this.etcd.leaseClient.leaseRevoke({ ID: id }));
    } catch (err) {
      // Already expired or revoked: the goal (no lease) is reached.
      if (err instanceof Error && /lease not found/i.test(err.message)) return;
      throw err;
    }
  }

  async putIfAbsent(key: string, value: Buffer, leaseId: string, opts?: CallBudget): Promise<PutIfAbsentResult> {
    const k = Buffer.from(key);
    const res = await this.attempt('put-if-absent', opts, () => this.etcd.kv.txn({
      compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 } as never],
      success: [{ request_put: { key: k, value, lease: leaseId } }],
      failure: [{ request_range: { key: k } }],
    }));
    const revision = BigInt(res.header.revision);
    if (res.succeeded) return { created: true, revision };
    const kvs = (res.responses[0]?.response_range?.kvs ?? []) as RawKv[];
    return { created: false, revision, existing: kvs[0] ? toKv(kvs[0]) : undefined };
  }

  async getPrefix(prefix: string, opts?: CallBudget) {
    const k = Buffer.from(prefix);
    const res = await this.attempt('get prefix', opts, () => this.etcd.kv.range({ key: k, range_end: prefixEnd(k) }));
    return { revision: BigInt(res.header.revision), kvs: (res.kvs as RawKv[]).map(toKv) };
  }

  async deleteIfUnchanged(key: string, modRevision: bigint, opts?: CallBudget) {
    const k = Buffer.from(key);
    const res = await this.attempt('delete', opts, () => this.etcd.kv.txn({
      compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: String(modRevision) } as never],
      success: [{ request_delete_range: { key: k } }],
      failure: [],
    }));
    return res.succeeded;
  }

  async watchPrefix(prefix: string, fromRevision: bigint, cb: WatchCallbacks): Promise<WatchHandle> {
    const watcher = this.etcd.watch().prefix(prefix).startRevision(String(fromRevision)).watcher();
    let cancelled = false;
    watcher.on('data', (res: { header: { revision: string }; events: Array<{ type: string; kv: RawKv }> }) => {
      if (cancelled) return;
      const events: WatchEvent[] = res.events.map((ev) => ({
        type: ev.type === 'Delete' ? 'delete' : 'put',
        // No etcd3 namespace is used, so keys arrive whole.
        kv: toKv(ev.kv),
      }));
      cb.onBatch({ revision: BigInt(res.header.revision), events });
    });
    watcher.on('error', (err: Error) => { if (!cancelled) { cancelled = true; cb.onCancelled(err); } });
    watcher.on('disconnected', (err: Error) => { if (!cancelled) cb.onDisconnected?.(err); });
    return {
      cancel: async () => {
        cancelled = true;
        // detach waits for etcd's answer when connected; do not hang on a dead etcd.
        await Promise.race([watcher.cancel().catch(() => undefined), sleep(this.attemptMs)]);
      },
    };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.etcd.close();
  }
}

export class EtcdUnavailableError extends Error {
  cause?: unknown;
}

/** Gives stream errors the same typed classes (and so the same retry decision) as unary errors. */
function castError(err: Error): Error {
  return castGrpcError(err);
}
