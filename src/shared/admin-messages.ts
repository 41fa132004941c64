// Admin API queries between the main thread (src/http/api.ts, through src/main/admin-bridge.ts)
// and the workers (workers/admin/admin.ts) or the coordinator (retained messages). Structured
// clone over the existing channels (a worker's parentPort, the coordinator thread's); each query
// carries an id its answer repeats. None of this is on the message path.
import type { BanKind } from './banned';

/** A connected client as the API shows it. */
export interface ClientInfo {
  clientId: string;
  username: string | null;
  address: string | null;
  port: number | null;
  protocolVersion: number;
  connected: boolean;
  /** ms since the epoch; null for an offline session. */
  connectedAt: number | null;
  keepalive: number;
  subscriptions: number;
  inflight: number;
  queued: number;
  /** Session Expiry Interval, seconds (4294967295: never). */
  sessionExpiryInterval: number;
  worker: number;
  /** The cluster member holding it (set in a cluster only). */
  node?: string;
}

export interface SubscriptionInfo { filter: string; qos: number; noLocal: boolean; retainAsPublished: boolean; retainHandling: number; subscriptionId: number | null }

/** MQTT 5 properties a published message may carry (correlationData as base64). */
export interface PublishProps {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  userProperties?: Record<string, string | string[]>;
}

export type WorkerQuery =
  /** Connected clients with a client id after `after` (keyset paging), sorted, at most `limit`. */
  | { op: 'clients'; after: string; limit: number; clientId?: string; username?: string; address?: string }
  /** One client, connected or an offline session. */
  | { op: 'client'; clientId: string }
  /** Disconnect the client: v5 DISCONNECT 0x98 (administrative action), v3 close. */
  | { op: 'kick'; clientId: string }
  | { op: 'subscriptions'; clientId: string; after: string; limit: number }
  | { op: 'publish'; topic: string; payload: Uint8Array; qos: number; retain: boolean; props: PublishProps | null };

export type WorkerAnswer =
  | { op: 'clients'; clients: ClientInfo[] }
  | { op: 'client'; client: ClientInfo | null }
  | { op: 'kick'; kicked: boolean }
  | { op: 'subscriptions'; found: boolean; subscriptions: SubscriptionInfo[] }
  | { op: 'publish'; ok: true };

export interface RetainedInfo { topic: string; payload: Uint8Array; qos: number; props: Uint8Array | null; expiryAt: number }

export type CoordinatorQuery =
  /** A cluster member only: `q` to every other member of the view (src/cluster/admin-service.ts). */
  | { op: 'peers'; q: NodeQuery }
  /** Topics matching `filter` after `after` (sorted), at most `limit`; payloads only with `payloads`. */
  | { op: 'retained-list'; filter: string; after: string; limit: number }
  | { op: 'retained-get'; topic: string }
  /** Removes the retained message (memory and store); `existed` says whether there was one. */
  | { op: 'retained-delete'; topic: string };

export type CoordinatorAnswer =
  | PeersAnswer
  | { op: 'retained-list'; messages: RetainedInfo[]; total: number }
  | { op: 'retained-get'; message: RetainedInfo | null }
  | { op: 'retained-delete'; existed: boolean };

export interface AdminAsk<Q> { t: 'admin'; id: number; q: Q }
export interface AdminReply<A> { t: 'admin-reply'; id: number; a?: A; error?: string }

// --- The cluster's admin service (src/cluster/admin-service.ts, src/main/node-admin.ts) --------
// A NodeQuery is what one node answers about itself; the API on any node asks its own main
// thread and, in a cluster, every other member (through its coordinator and the peer gRPC
// service) and merges. JSON-safe: it crosses nodes as JSON.

/** A retained message as the API shows it (payload as text when UTF-8, always as base64). */
export interface RetainedJson { topic: string; payload: string | null; payloadBase64: string; qos: number; expiresAt: string | null }

export type NodeQuery =
  | { op: 'clients'; after: string; limit: number; clientId?: string; username?: string; address?: string }
  | { op: 'client'; clientId: string }
  | { op: 'kick'; clientId: string }
  | { op: 'subscriptions'; clientId: string; after: string; limit: number }
  | { op: 'stats' }
  | { op: 'retained-list'; filter: string; after: string; limit: number }
  | { op: 'retained-get'; topic: string }
  | { op: 'retained-delete'; topic: string }
  /** The API entries of the banned list (what a node that joins takes over). */
  | { op: 'ban-list' }
  /** An entry added through the API on another node, applied here as it is. */
  | { op: 'ban-add'; kind: BanKind; value: string; expiresAt: number }
  | { op: 'ban-remove'; kind: BanKind; value: string }
  /** PUT log-level and POST reload, asked of every member by the node the request came to. */
  | { op: 'log-level'; level: string }
  | { op: 'reload' };

export type NodeAnswer =
  | { op: 'clients'; clients: ClientInfo[] }
  | { op: 'client'; client: ClientInfo | null }
  | { op: 'kick'; kicked: boolean }
  | { op: 'subscriptions'; found: boolean; connected: boolean; subscriptions: SubscriptionInfo[] }
  | { op: 'stats'; stats: Record<string, number | string | null> }
  /** `cut`: the page was cut short by its byte budget after this topic (a merge must stop there). */
  | { op: 'retained-list'; messages: RetainedJson[]; total: number; cut: boolean }
  | { op: 'retained-get'; message: RetainedJson | null }
  | { op: 'retained-delete'; existed: boolean }
  | { op: 'ban-list'; entries: Array<{ kind: BanKind; value: string; expiresAt: number }> }
  | { op: 'ban-add'; ok: true }
  | { op: 'ban-remove'; removed: boolean }
  | { op: 'log-level'; level: string }
  | { op: 'reload'; ok: boolean; lines: string[] };

/** One member's answer to a query asked of the whole cluster. */
export interface NodeReply { node: string; a: NodeAnswer }

/** What the coordinator's fan-out to the other members gives back. */
export interface PeersAnswer {
  op: 'peers';
  /** This node's id and the members of the view it acts on (empty while fenced). */
  self: string;
  members: string[];
  fenced: boolean;
  replies: NodeReply[];
  /** Members asked that did not answer in time (or failed): node id → why. */
  missing: Record<string, string>;
}

/** Coordinator → main thread: a peer asks this node (answered with PeerAskReply). */
export interface PeerAsk { t: 'admin-peer'; id: number; q: NodeQuery }
export interface PeerAskReply { t: 'admin-peer-reply'; id: number; a?: NodeAnswer; error?: string }

/** Pino's levels, as PUT log-level takes them. */
export const LOG_LEVEL_NAMES: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const isStr = (x: unknown): x is string => typeof x === 'string';
const isLimit = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 10_001;
const optStr = (x: unknown): boolean => x === undefined || isStr(x);

/**
 * What is wrong with a query another node sent (null: nothing). A peer is a current member
 * running this code, but what arrives on a port is checked before it is acted on.
 */
export function nodeQueryProblem(q: unknown): string | null {
  if (typeof q !== 'object' || q === null) return 'not an object';
  const r = q as Record<string, unknown>;
  const ok = ((): boolean => {
    switch (r.op) {
      case 'clients': return isStr(r.after) && isLimit(r.limit) && optStr(r.clientId) && optStr(r.username) && optStr(r.address);
      case 'client': case 'kick': return isStr(r.clientId);
      case 'subscriptions': return isStr(r.clientId) && isStr(r.after) && isLimit(r.limit);
      case 'stats': case 'ban-list': case 'reload': return true;
      case 'log-level': return isStr(r.level) && LOG_LEVEL_NAMES.includes(r.level);
      case 'retained-list': return isStr(r.filter) && isStr(r.after) && isLimit(r.limit);
      case 'retained-get': case 'retained-delete': return isStr(r.topic) && r.topic !== '';
      case 'ban-add': return isStr(r.kind) && isStr(r.value) && Number.isSafeInteger(r.expiresAt) && (r.expiresAt as number) >= 0;
      case 'ban-remove': return isStr(r.kind) && isStr(r.value);
      default: return false;
    }
  })();
  return ok ? null : `not an admin query: ${JSON.stringify(q).slice(0, 200)}`;
}
