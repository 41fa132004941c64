// Route sync: each node tells every peer which filters it has local subscribers for, and keeps
// the peers' filters in the shared native trie as node tokens (node-tokens.ts), so one match
// in a worker gives local subscribers and target nodes together. Run by the coordinator.
//
// - Local side: the coordinator's subscription journal (every worker reports each session's
//   subscribe / unsubscribe, and a dead worker's are purged) feeds a refcount per filter; a
//   filter is announced when its count goes 0 -> 1 and withdrawn when it goes back to 0.
//   `$share/...` filters are not announced (shared groups are served by the publisher's node,
//   README.md "Limits"), nor `$SYS` ones (each node has its own $SYS).
// - Announcer (one Routes/Sync call per peer link, this node as gRPC client): a SNAPSHOT (every
//   announced filter, with this node's route version) when the call opens, then DELTAs batched
//   over DELTA_LINGER_MS, each with version + 1. Deltas are set operations (add / del), so a
//   snapshot taken while a delta is pending stays correct when that delta follows it.
//   A failed call is reopened after a backoff while the link is current: a new snapshot.
// - Receiver (the Routes/Sync service): accepts a call only from a current link's node and
//   incarnation, addressed to this node's incarnation; applies snapshots (replaces that node's
//   set: diff into the trie) and deltas; a delta whose version is not last + 1 is ignored and
//   answered RESYNC, and the announcer sends a snapshot on the same call. A snapshot taken is
//   answered OK (the announcer's backoff starts over). Its node's routes
//   are removed from the trie when its link goes down (left, new incarnation, this node fenced).
// Messages are small JSON documents in Buffers (control path, a few per subscription change).
import type * as grpc from '@grpc/grpc-js';
import { topicIndex } from '../shared/topic-index';
import { bytesMethod } from './peer-server';
import type { PeerLink, PeerLinks } from './peer-links';
import { NodeIndex, nodeToken, NODE_TOKEN_OPTS } from './node-tokens';
import * as K from '../shared/counters';

export const ROUTES_SYNC = bytesMethod('Routes', 'Sync', 'bidi');
const DELTA_LINGER_MS = 10;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

type Announce =
  | { k: 'snap'; from: string; inc: string; to: string; toInc: string; v: number; filters: string[] }
  | { k: 'delta'; v: number; add: string[]; del: string[] };

export interface RouteSyncDeps {
  selfId: string;
  incarnation(): string | null;
  trieId: number;
  nodes: NodeIndex;
  links: PeerLinks;
  /** Counter row 0 (the coordinator's gauges), or null. */
  gauges: Float64Array | null;
  log(line: string): void;
}

interface Announcer {
  link: PeerLink;
  call: grpc.ClientDuplexStream<Buffer, Buffer> | null;
  retryMs: number;
  timer: NodeJS.Timeout | null;
}

interface Received {
  incarnation: string;
  /** Version of the last snapshot or delta applied; -1 = waiting for a snapshot. */
  version: number;
  filters: Set<string>;
}

/** FNV-1a, 32 bits: an order-free table digest as XOR of entry hashes. */
export function routeHash(nodeId: string, filter: string): number {
  let h = 0x811c9dc5;
  const s = nodeId + '\u0000' + filter;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}

export const announced = (filter: string): boolean => !filter.startsWith('$share/') && !filter.startsWith('$SYS');

export class RouteSync {
  private readonly local = new Map<string, number>();
  private version = 0;
  private readonly pendingAdd = new Set<string>();
  private readonly pendingDel = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly announcers = new Map<string, Announcer>();
  private readonly received = new Map<string, Received>();
  private remoteCount = 0;
  private localHash = 0;
  private remoteHash = 0;
  private closed = false;

  constructor(private readonly d: RouteSyncDeps) {}

  /** The gRPC service (added to the peer server before the node joins). */
  service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    return [{ Sync: ROUTES_SYNC } as grpc.ServiceDefinition, { Sync: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => this.serve(call) }];
  }

  /** Whether `nodeId` has told this node it has subscribers for `filter` (a handover waits for it). */
  peerHas(nodeId: string, filter: string): boolean { return this.received.get(nodeId)?.filters.has(filter) ?? false; }

  // ---- local side -------------------------------------------------------------------------

  /** A session subscribed to `filter` (first time for that session). */
  localSub(filter: string): void {
    if (!announced(filter)) return;
    const n = (this.local.get(filter) ?? 0) + 1;
    this.local.set(filter, n);
    if (n !== 1) return;
    this.localHash ^= routeHash(this.d.selfId, filter);
    if (!this.pendingDel.delete(filter)) this.pendingAdd.add(filter);
    this.changed();
  }

  /** A session's subscription to `filter` ended. */
  localUnsub(filter: string): void {
    const n = this.local.get(filter);
    if (n === undefined) return;
    if (n > 1) { this.local.set(filter, n - 1); return; }
    this.local.delete(filter);
    this.localHash ^= routeHash(this.d.selfId, filter);
    if (!this.pendingAdd.delete(filter)) this.pendingDel.add(filter);
    this.changed();
  }

  private changed(): void {
    this.gauges();
    if (this.flushTimer === null && !this.closed) this.flushTimer = setTimeout(() => this.flushDelta(), DELTA_LINGER_MS);
  }

  private flushDelta(): void {
    this.flushTimer = null;
    if (this.pendingAdd.size === 0 && this.pendingDel.size === 0) return;
    this.version++;
    const msg = encode({ k: 'delta', v: this.version, add: [...this.pendingAdd], del: [...this.pendingDel] });
    this.pendingAdd.clear();
    this.pendingDel.clear();
    for (const a of this.announcers.values()) a.call?.write(msg);
  }

  // ---- announcer (client) -----------------------------------------------------------------

  linkUp(link: PeerLink): void {
    if (this.closed) return;
    const a: Announcer = { link, call: null, retryMs: RETRY_MIN_MS, timer: null };
    this.announcers.set(link.nodeId, a);
    this.open(a);
  }

  linkDown(link: PeerLink): void {
    const a = this.announcers.get(link.nodeId);
    if (a && a.link === link) {
      this.announcers.delete(link.nodeId);
      if (a.timer) clearTimeout(a.timer);
      a.call?.cancel();
      a.call = null;
    }
    const r = this.received.get(link.nodeId);
    if (r && r.incarnation === link.incarnation) {
      this.received.delete(link.nodeId);
      this.apply(link.nodeId, r.filters, new Set());
    }
  }

  private current(a: Announcer): boolean { return !this.closed && this.announcers.get(a.link.nodeId) === a && !a.link.closed; }

  private open(a: Announcer): void {
    a.timer = null;
    const inc = this.d.incarnation();
    if (!this.current(a) || inc === null) return;
    const call = a.link.client.makeBidiStreamRequest(ROUTES_SYNC.path, ROUTES_SYNC.requestSerialize, ROUTES_SYNC.responseDeserialize);
    a.call = call;
    const failed = () => {
      if (a.call !== call) return;
      a.call = null;
      call.cancel();
      if (!this.current(a)) return;
      a.timer = setTimeout(() => this.open(a), a.retryMs);
      a.retryMs = Math.min(RETRY_MAX_MS, a.retryMs * 2);
    };
    call.on('data', (b: Buffer) => {
      if (a.call !== call) return;
      const m = decode(b);
      // OK: the peer took the snapshot (the call works: back to the shortest backoff).
      if (m?.k === 'ok') a.retryMs = RETRY_MIN_MS;
      // RESYNC: the peer saw a gap; a snapshot on the same call.
      else if (m?.k === 'resync') call.write(this.snapshot(a.link, inc));
    });
    call.on('error', failed);
    call.on('end', failed);
    call.write(this.snapshot(a.link, inc));
  }

  private snapshot(link: PeerLink, inc: string): Buffer {
    return encode({ k: 'snap', from: this.d.selfId, inc, to: link.nodeId, toInc: link.incarnation, v: this.version, filters: [...this.local.keys()] });
  }

  // ---- receiver (server) ------------------------------------------------------------------

  private serve(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    let from: string | null = null;
    let inc = '';
    // Ends the call with FAILED_PRECONDITION (grpc-js turns an 'error' event into the status).
    const refuse = (why: string) => { call.emit('error', { code: 9, details: why }); };
    call.on('error', () => { /* the announcer reopens; routes stay until a snapshot or the link goes */ });
    call.on('data', (b: Buffer) => {
      const m = decode(b) as Announce | null;
      if (!m) { refuse('malformed route message'); return; }
      if (m.k === 'snap') {
        const link = this.d.links.link(m.from);
        if (this.closed || m.to !== this.d.selfId || m.toInc !== this.d.incarnation() || !link || link.incarnation !== m.inc) {
          refuse(`not a current peer: ${m.from} (${m.inc})`);
          return;
        }
        if (from !== null && from !== m.from) { refuse('one node per call'); return; }
        from = m.from;
        inc = m.inc;
        if (this.d.gauges) this.d.gauges[K.C_CLUSTER_ROUTE_SNAPSHOTS]++;
        const r = this.received.get(from);
        const old = r && r.incarnation === inc ? r.filters : new Set<string>();
        const next = new Set(m.filters);
        this.received.set(from, { incarnation: inc, version: m.v, filters: next });
        this.apply(from, old, next);
        call.write(encode({ k: 'ok' }));
        return;
      }
      if (m.k !== 'delta' || from === null) { refuse('delta before snapshot'); return; }
      const r = this.received.get(from);
      if (!r || r.incarnation !== inc) { refuse('stale call'); return; }
      if (r.version < 0) return; // waiting for the snapshot asked for
      if (m.v !== r.version + 1) {
        r.version = -1;
        call.write(encode({ k: 'resync' }));
        return;
      }
      r.version = m.v;
      const next = new Set(r.filters);
      for (const f of m.add) next.add(f);
      for (const f of m.del) next.delete(f);
      const old = r.filters;
      r.filters = next;
      this.apply(from, old, next);
    });
  }

  /** Moves node `nodeId`'s trie entries from `old` to `next`. */
  private apply(nodeId: string, old: Set<string>, next: Set<string>): void {
    const token = nodeToken(this.d.nodes.of(nodeId));
    for (const f of old) {
      if (next.has(f)) continue;
      if (topicIndex.unsubscribe(this.d.trieId, f, token)) { this.remoteCount--; this.remoteHash ^= routeHash(nodeId, f); }
    }
    for (const f of next) {
      if (old.has(f)) continue;
      // Only real filters: a peer's invalid one is not ours to add (the trie refuses it anyway).
      if (topicIndex.subscribe(this.d.trieId, f, token, NODE_TOKEN_OPTS, 0) === 1) { this.remoteCount++; this.remoteHash ^= routeHash(nodeId, f); }
    }
    this.gauges();
  }

  private gauges(): void {
    const g = this.d.gauges;
    if (!g) return;
    g[K.C_CLUSTER_ROUTES_REMOTE] = this.remoteCount;
    g[K.C_CLUSTER_ROUTES_LOCAL] = this.local.size;
    g[K.C_CLUSTER_ROUTES_LOCAL_HASH] = this.localHash >>> 0;
    g[K.C_CLUSTER_ROUTES_REMOTE_HASH] = this.remoteHash >>> 0;
  }

  /** The node stops: calls cancelled, remote routes out of the trie. */
  close(): void {
    this.closed = true;
    if (this.flushTimer) { clearTimeout(this.flushTimer); this.flushTimer = null; }
    for (const a of this.announcers.values()) { if (a.timer) clearTimeout(a.timer); a.call?.cancel(); }
    this.announcers.clear();
    for (const [id, r] of this.received) this.apply(id, r.filters, new Set());
    this.received.clear();
  }
}

type Answer = { k: 'resync' } | { k: 'ok' };

function encode(m: Announce | Answer): Buffer { return Buffer.from(JSON.stringify(m)); }

const strings = (a: unknown): boolean => Array.isArray(a) && a.every((x) => typeof x === 'string');

function decode(b: Buffer): (Announce | Answer) | null {
  try {
    const m = JSON.parse(b.toString('utf8')) as { k?: unknown; add?: unknown; del?: unknown; filters?: unknown };
    if (m.k === 'resync' || m.k === 'ok') return m as Answer;
    if (m.k === 'delta' && strings(m.add) && strings(m.del)) return m as Announce;
    if (m.k === 'snap' && strings(m.filters)) return m as Announce;
    return null;
  } catch { return null; }
}
