// Admin API queries between the main thread (src/http/api.ts, through src/main/admin-bridge.ts)
// and the workers (workers/admin/admin.ts) or the coordinator (retained messages). Structured
// clone over the existing channels (a worker's parentPort, the coordinator thread's); each query
// carries an id its answer repeats. None of this is on the message path.

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
  /** Topics matching `filter` after `after` (sorted), at most `limit`; payloads only with `payloads`. */
  | { op: 'retained-list'; filter: string; after: string; limit: number }
  | { op: 'retained-get'; topic: string }
  /** Removes the retained message (memory and store); `existed` says whether there was one. */
  | { op: 'retained-delete'; topic: string };

export type CoordinatorAnswer =
  | { op: 'retained-list'; messages: RetainedInfo[]; total: number }
  | { op: 'retained-get'; message: RetainedInfo | null }
  | { op: 'retained-delete'; existed: boolean };

export interface AdminAsk<Q> { t: 'admin'; id: number; q: Q }
export interface AdminReply<A> { t: 'admin-reply'; id: number; a?: A; error?: string }
