// Per-worker metrics in one shared Float64Array: each worker writes only its own row; the
// $SYS publisher and the main thread's /metrics (src/http/metrics.ts) read every row. Doubles,
// not BigInts, because they are read often and 2^53 messages is beyond any uptime.
import { DISCONNECT_REASONS } from './disconnect-reasons';

export const C_CLIENTS_CONNECTED = 0;
export const C_MSGS_RECEIVED = 1;
export const C_MSGS_SENT = 2;
export const C_BYTES_RECEIVED = 3;
export const C_BYTES_SENT = 4;
/** QoS 0 messages not written to a slow consumer (socket over its high-water mark). */
export const C_DROPPED_SLOW_QOS0 = 5;
/** QoS 1/2 messages dropped by a full session queue (policy drop-oldest / drop-new). */
export const C_DROPPED_QUEUE_FULL = 6;
/** Messages dropped because their Message Expiry Interval passed while queued. */
export const C_DROPPED_EXPIRED = 7;
/** Messages not sent because they exceed the client's Maximum Packet Size [MQTT-3.1.2-25]. */
export const C_DROPPED_TOO_LARGE = 8;
export const C_SUBSCRIPTIONS = 9;
export const C_SESSIONS = 10;
export const C_CONNECTIONS_TOTAL = 11;
/** Records spilled to a producer's overflow queue because a peer ring was full. */
export const C_RING_SPILLED = 12;
/** Connections this worker adopted from its accept ring (the main thread balances on it). */
export const C_ACCEPTED = 13;
/** TCP connections this worker holds now (accepted, not yet closed): the balancing load. */
export const C_CONNECTIONS_OPEN = 14;
/** Packets whose handler threw (a bug): the connection was closed, the worker lived on. */
export const C_HANDLER_ERRORS = 15;
/** QoS 1 messages to persistent sessions routed before their store write (write-behind). */
export const C_STORE_HELD = 16;
/** Of those, messages whose every delivery ended within the linger: never written to disk. */
export const C_STORE_UNWRITTEN = 17;
/** Of those, messages posted before the linger because a delivery was queued. */
export const C_STORE_FORCED = 18;
/** QoS 1 messages this worker published whose persistent sessions on other workers held them. */
export const C_STORE_HELD_REMOTE = 19;
/** CONNECTs refused by authentication: bad username or password, or anonymous when not allowed. */
export const C_AUTH_REFUSED = 20;
/** CONNECTs answered "server busy" because the password-hashing queue was full (--auth-queue-max). */
export const C_AUTH_BUSY = 21;
/** PUBLISHes (and wills) dropped because the ACL does not let their client write the topic. */
export const C_DROPPED_NOT_AUTHORISED = 22;
/** Deliveries withheld because the ACL does not let the subscriber read the topic. */
export const C_WITHHELD_NOT_AUTHORISED = 23;
/** ACL decisions dropped from a connection's full cache (--acl-cache-entries). */
export const C_ACL_CACHE_EVICTED = 24;
/**
 * Connections closed because their client left more output unread than any delivery can explain
 * (replies to packets it keeps sending while it never reads): net/connection.ts, output limit.
 */
export const C_CLOSED_UNREAD = 25;
/** CONNECTs answered "server busy" because this node was fenced (not a cluster member). */
export const C_CLUSTER_REFUSED = 26;
/** Connections closed because this node fenced itself (v5: DISCONNECT 0x9C, use another server). */
export const C_CLUSTER_DROPPED = 27;
/** TLS handshakes that failed (wrong CA on the client's side, missing or bad client certificate, not TLS). */
export const C_TLS_FAILED = 28;
/** TLS handshakes or WebSocket upgrades not finished within --tls-handshake-timeout-ms. */
export const C_HANDSHAKE_TIMEOUT = 29;
/** WebSocket requests refused (wrong path, no MQTT subprotocol, plain HTTP) and connections closed for a text frame or a frame that breaks RFC 6455. */
export const C_WS_REFUSED = 30;
/** TLS / WebSocket connections relayed to the worker that owns their session (workers/net/relay.ts), total. */
export const C_RELAYED = 31;
// HTTP auth callout and JWT (src/auth/http-callout.ts, src/auth/jwt.ts): decided on the main
// thread, counted by the worker whose CONNECT it was (the verdict says what happened).
/** Callout requests sent to the auth server (identical concurrent checks share one). */
export const C_AUTH_HTTP_REQUESTS = 40;
/** Callout requests that failed: timeout, refused connection, 5xx, unreadable answer. */
export const C_AUTH_HTTP_ERRORS = 41;
/** CONNECTs decided from the callout's cache, with no request. */
export const C_AUTH_HTTP_CACHE_HITS = 42;
/** CONNECTs that joined an identical callout request already in flight. */
export const C_AUTH_HTTP_COALESCED = 43;
/** CONNECTs answered "server busy" because --auth-http-max-inflight requests were in flight. */
export const C_AUTH_HTTP_INFLIGHT_FULL = 44;
/** Callout answers dropped from the full cache (--auth-http-cache-entries). */
export const C_AUTH_HTTP_CACHE_EVICTED = 45;
/** JWTs refused: bad signature, expired, not yet valid, a claim that does not match, malformed ACL. */
export const C_AUTH_JWT_REFUSED = 46;
/** Connections closed because their JWT expired (v5 DISCONNECT 0xA0). */
export const C_AUTH_TOKEN_EXPIRED = 47;
// Limits (workers/README.md, "Limits"). 48, 49 and 54 are written by the main thread, in row 0
// only (no worker writes them), so they are summed like the others.
/** Connections closed at accept: --max-connections or a listener's maxConnections reached. */
export const C_REFUSED_MAX_CONNECTIONS = 48;
/** Accepted connections that waited for their listener's connection rate (--max-connection-rate). */
export const C_ACCEPT_WAITED = 49;
/** Times a connection's reading was paused by --max-client-msg-rate / --max-client-byte-rate. */
export const C_CLIENT_RATE_PAUSES = 50;
/** SUBSCRIBE filters refused by --max-subscriptions (v5 0x97, v3 0x80). */
export const C_SUBSCRIPTION_QUOTA = 51;
/** PUBLISHes dropped because their payload exceeds --max-payload-size. */
export const C_PAYLOAD_TOO_LARGE = 52;
/** Connections closed on a PROXY protocol listener: untrusted sender, malformed or missing header. */
export const C_PROXY_REFUSED = 53;
/** Connections closed at accept because their listener's rate queue was full (ACCEPT_WAIT_MAX). */
export const C_REFUSED_RATE_QUEUE = 54;
// Admin API and banned list (96-100). The API counters are written by the main thread into
// worker 0's row (no worker writes them, so no write races; they are summed like the others).
/** CONNECTs refused because the client id, username or address is banned (v5 0x8A, v3 5). */
export const C_BANNED_REFUSED = 96;
/** Connected clients disconnected because a ban added or reloaded names them (v5 DISCONNECT 0x98). */
export const C_BANNED_DISCONNECTED = 97;
/** Clients disconnected through the admin API (DELETE /api/v1/clients/:id). */
export const C_KICKED = 98;
/** Requests to /api/v1 (main thread, worker 0's row). */
export const C_API_REQUESTS = 99;
/** Of those, answered with a status of 400 or more: refused keys, bad input, errors (main thread, worker 0's row). */
export const C_API_FAILURES = 100;
// Cluster data plane (src/cluster/README.md, "Forwarding", "Routes"). 76-79 are written by
// workers in their own rows; 80-87 by the coordinator, in row 0 only (workers never write them).
/** Messages forwarded to peer nodes (one per target node). */
export const C_CLUSTER_FWD_OUT = 76;
/** Messages peer nodes forwarded here, routed to local subscribers. */
export const C_CLUSTER_FWD_IN = 77;
/** QoS 0 messages not forwarded because a peer queue (or the way to the coordinator) was full. */
export const C_CLUSTER_FWD_DROPPED = 78;
/** QoS >= 1 messages refused because a peer queue was over its hard bound: the publisher got no acknowledgement and was disconnected. */
export const C_CLUSTER_FWD_FAILED = 79;
/** Gauge: routes (node, filter) this node holds from its peers, in the trie as node tokens. */
export const C_CLUSTER_ROUTES_REMOTE = 80;
/** Gauge: filters with local subscribers this node announces to its peers. */
export const C_CLUSTER_ROUTES_LOCAL = 81;
/** Route snapshots received from peers (at link start, after a stream reset, after a version gap). */
export const C_CLUSTER_ROUTE_SNAPSHOTS = 82;
/** Gauge: XOR of hash(node, filter) over this node's announced routes (compare with the peers' remote hash). */
export const C_CLUSTER_ROUTES_LOCAL_HASH = 83;
/** Gauge: XOR of hash(node, filter) over the routes held from peers. */
export const C_CLUSTER_ROUTES_REMOTE_HASH = 84;
/** Gauge: peer nodes whose forward stream is open. */
export const C_CLUSTER_PEERS_CONNECTED = 85;
/** QoS >= 1 forwarded messages sent again after a forward stream reset. */
export const C_CLUSTER_FWD_RESENT = 86;
/** Forwarded messages received twice (a resend after a stream reset) and not routed again. */
export const C_CLUSTER_FWD_DUPLICATES = 87;
// --- Operability (logs and metrics): 60-75. -------------------------------------------------
/**
 * Connections of connected clients (CONNACK sent) that ended, by reason: one counter per
 * DisconnectReason, at C_DISCONNECT_BASE + reason (workers/net/close-reason.ts).
 */
export const C_DISCONNECT_BASE = 60;
/** Reasons 0..10 take 60..70 (DISCONNECT_REASONS.length). */
export const C_DISCONNECT_LAST = 70;
/** CONNECTs let in, by method: a checked or cached password, anonymous, a client certificate's CN. */
export const C_AUTH_ALLOW_PASSWORD = 71;
export const C_AUTH_ALLOW_ANONYMOUS = 72;
export const C_AUTH_ALLOW_CERTIFICATE = 73;
/** Of C_AUTH_REFUSED: anonymous (or username without a password file) refused, and a certificate without a CN. */
export const C_AUTH_DENY_ANONYMOUS = 74;
export const C_AUTH_DENY_CERTIFICATE = 75;

// -- Cluster client-id registry (src/cluster/registry.ts): written by the coordinator thread, in
// worker 0's row (these slots are no worker's; 88–95 fill one cache line of their own).
/** Claims of a client id granted by its home node (one per CONNECT on a cluster member). */
export const C_CLUSTER_REGISTRATIONS = 88;
/** Sessions on another node ended for a CONNECT here (cross-node takeovers). */
export const C_CLUSTER_TAKEOVERS = 89;
/** CONNECTs refused by the registry (this node not a member, a home that refused). */
export const C_CLUSTER_REGISTRY_REFUSED = 90;
/** CONNECTs refused because the registry did not settle in time (home or previous owner unreachable). */
export const C_CLUSTER_REGISTRY_TIMEOUTS = 91;
/** Client ids re-registered with a new home after a view change or a rejoin. */
export const C_CLUSTER_REASSERTED = 92;
/** Sessions ended here because, at a view change or rejoin, another node owned their id. */
export const C_CLUSTER_REASSERT_LOST = 93;
/** Client ids this node is the home of now (a gauge). */
export const C_CLUSTER_HOME_ENTRIES = 94;
// -- Cluster admin service (src/cluster/admin-service.ts): written by the coordinator thread, in
// worker 0's row (no worker writes them).
/** Admin API calls made to other members (one per member per API request in a cluster). */
export const C_CLUSTER_ADMIN_ASKED = 104;
/** Of those, failed or not answered within the deadline: the member was reported missing. */
export const C_CLUSTER_ADMIN_MISSING = 105;
/** Admin calls from the cluster port refused: not a current member, not a query, or too many waiting. */
export const C_CLUSTER_ADMIN_REFUSED = 106;
// The publish path's batches (workers/routing/router.ts): one per loop turn across connections.
/** Routing passes: native match calls over a batch of PUBLISHes (messages received ÷ this = batch size). */
export const C_ROUTE_PASSES = 116;
/** Of those, batches routed before their turn's end because they were full (256 messages, or 4 MiB of read chunks held). */
export const C_ROUTED_EARLY = 117;
// -- Session state at scale (workers/session/): 128-135.
/** Gauge: offline-session deadlines (expiries, will delays) pending in the workers' heaps; no Node timer each. */
export const C_SESSION_DEADLINES = 128;
// -- Cross-node session handover (src/cluster/handover.ts): written by the coordinator thread, in
// worker 0's row.
/** Sessions handed to another node (phase 2 done: the copy here is deleted). */
export const C_CLUSTER_HANDOVERS_OUT = 136;
/** Sessions taken from another node (session present = 1 on a CONNECT here). */
export const C_CLUSTER_HANDOVERS_IN = 137;
/** Handovers that did not complete (the other side died or did not answer in time). */
export const C_CLUSTER_HANDOVERS_FAILED = 138;
/** Queued messages left out of a handover: over the size one handover may carry. */
export const C_CLUSTER_HANDOVER_DROPPED = 139;
// -- Cluster retained replication (src/cluster/retained-sync.ts): the coordinator, row 0.
/** Retained entries (sets and tombstones) sent to peers. */
export const C_CLUSTER_RETAINED_SENT = 144;
/** Retained entries from peers that were newer than this node's and were applied. */
export const C_CLUSTER_RETAINED_APPLIED = 145;
/** Retained entries from peers that were not newer (or did not decode) and were ignored. */
export const C_CLUSTER_RETAINED_STALE = 146;
/** Tombstones (cleared retained topics) held now (a gauge). */
export const C_CLUSTER_RETAINED_TOMBSTONES = 147;
/** Tombstones dropped before their TTL because --retained-tombstones-max was reached. */
export const C_CLUSTER_RETAINED_TOMBS_DROPPED = 148;
/** Full snapshots restarted because a peer's changed-topic set was full. */
export const C_CLUSTER_RETAINED_RESYNCS = 149;
/** Retained snapshots received whole from peers. */
export const C_CLUSTER_RETAINED_SNAPSHOTS = 150;
/** Retained messages too large for a replication frame, kept on their node only. */
export const C_CLUSTER_RETAINED_TOO_LARGE = 151;
/** Counters in use in a row (the next free index). */
export const COUNTERS_USED = 152;
/**
 * Row stride, in doubles. Each worker writes its row on every message from its own core; rows
 * that shared a 64-byte cache line would bounce it between cores (false sharing). A
 * SharedArrayBuffer's memory is only as aligned as the allocator makes it (16 bytes, not 64), so
 * a row is rounded up to whole cache lines and one spare line keeps any two rows' counters at
 * least 64 bytes apart wherever the buffer starts. Readers ($SYS, /metrics) use this stride.
 */
export const COUNTERS_PER_WORKER = (Math.ceil((COUNTERS_USED * 8) / 64) + 1) * 8;

export const COUNTER_NAMES: Record<number, string> = {
  [C_CLIENTS_CONNECTED]: 'clients/connected',
  [C_MSGS_RECEIVED]: 'messages/received',
  [C_MSGS_SENT]: 'messages/sent',
  [C_BYTES_RECEIVED]: 'bytes/received',
  [C_BYTES_SENT]: 'bytes/sent',
  [C_DROPPED_SLOW_QOS0]: 'messages/dropped/slow-consumer',
  [C_DROPPED_QUEUE_FULL]: 'messages/dropped/queue-full',
  [C_DROPPED_EXPIRED]: 'messages/dropped/expired',
  [C_DROPPED_TOO_LARGE]: 'messages/dropped/too-large',
  [C_SUBSCRIPTIONS]: 'subscriptions/count',
  [C_SESSIONS]: 'sessions/count',
  [C_CONNECTIONS_TOTAL]: 'clients/total',
  [C_HANDLER_ERRORS]: 'errors/handler',
  [C_STORE_HELD]: 'store/held',
  [C_STORE_UNWRITTEN]: 'store/held/unwritten',
  [C_STORE_FORCED]: 'store/held/forced',
  [C_STORE_HELD_REMOTE]: 'store/held/remote',
  [C_AUTH_REFUSED]: 'clients/refused/auth',
  [C_AUTH_BUSY]: 'clients/refused/busy',
  [C_DROPPED_NOT_AUTHORISED]: 'messages/dropped/not-authorised',
  [C_WITHHELD_NOT_AUTHORISED]: 'messages/withheld/not-authorised',
  [C_ACL_CACHE_EVICTED]: 'acl/cache/evicted',
  [C_CLOSED_UNREAD]: 'clients/closed/unread-output',
  [C_CLUSTER_REFUSED]: 'clients/refused/fenced',
  [C_CLUSTER_DROPPED]: 'clients/disconnected/fenced',
  [C_TLS_FAILED]: 'clients/refused/tls',
  [C_HANDSHAKE_TIMEOUT]: 'clients/refused/handshake-timeout',
  [C_WS_REFUSED]: 'clients/refused/websocket',
  [C_RELAYED]: 'clients/relayed',
  [C_AUTH_HTTP_REQUESTS]: 'auth/http/requests',
  [C_AUTH_HTTP_ERRORS]: 'auth/http/errors',
  [C_AUTH_HTTP_CACHE_HITS]: 'auth/http/cache-hits',
  [C_AUTH_HTTP_COALESCED]: 'auth/http/coalesced',
  [C_AUTH_HTTP_INFLIGHT_FULL]: 'auth/http/inflight-full',
  [C_AUTH_HTTP_CACHE_EVICTED]: 'auth/http/cache-evicted',
  [C_AUTH_JWT_REFUSED]: 'auth/jwt/refused',
  [C_AUTH_TOKEN_EXPIRED]: 'clients/disconnected/token-expired',
  [C_REFUSED_MAX_CONNECTIONS]: 'clients/refused/max-connections',
  [C_ACCEPT_WAITED]: 'clients/accept/waited-rate',
  [C_CLIENT_RATE_PAUSES]: 'clients/rate-paused',
  [C_SUBSCRIPTION_QUOTA]: 'subscriptions/refused/quota',
  [C_PAYLOAD_TOO_LARGE]: 'messages/dropped/payload-too-large',
  [C_PROXY_REFUSED]: 'clients/refused/proxy',
  [C_REFUSED_RATE_QUEUE]: 'clients/refused/rate-queue-full',
  [C_BANNED_REFUSED]: 'clients/refused/banned',
  [C_BANNED_DISCONNECTED]: 'clients/disconnected/banned',
  [C_KICKED]: 'clients/disconnected/admin',
  [C_API_REQUESTS]: 'api/requests',
  [C_API_FAILURES]: 'api/failures',
  [C_CLUSTER_ADMIN_ASKED]: 'cluster/admin/asked',
  [C_CLUSTER_ADMIN_MISSING]: 'cluster/admin/missing',
  [C_CLUSTER_ADMIN_REFUSED]: 'cluster/admin/refused',
  [C_CLUSTER_FWD_OUT]: 'cluster/forwarded/out',
  [C_CLUSTER_FWD_IN]: 'cluster/forwarded/in',
  [C_CLUSTER_FWD_DROPPED]: 'cluster/forwarded/dropped',
  [C_CLUSTER_FWD_FAILED]: 'cluster/forwarded/failed',
  [C_CLUSTER_ROUTES_REMOTE]: 'cluster/routes/remote',
  [C_CLUSTER_ROUTES_LOCAL]: 'cluster/routes/local',
  [C_CLUSTER_ROUTE_SNAPSHOTS]: 'cluster/routes/snapshots',
  [C_CLUSTER_ROUTES_LOCAL_HASH]: 'cluster/routes/local-hash',
  [C_CLUSTER_ROUTES_REMOTE_HASH]: 'cluster/routes/remote-hash',
  [C_CLUSTER_PEERS_CONNECTED]: 'cluster/peers/connected',
  [C_CLUSTER_FWD_RESENT]: 'cluster/forwarded/resent',
  [C_CLUSTER_FWD_DUPLICATES]: 'cluster/forwarded/duplicates',
  [C_AUTH_ALLOW_PASSWORD]: 'clients/auth/allowed/password',
  [C_AUTH_ALLOW_ANONYMOUS]: 'clients/auth/allowed/anonymous',
  [C_AUTH_ALLOW_CERTIFICATE]: 'clients/auth/allowed/certificate',
  [C_AUTH_DENY_ANONYMOUS]: 'clients/auth/denied/anonymous',
  [C_AUTH_DENY_CERTIFICATE]: 'clients/auth/denied/certificate',
  [C_CLUSTER_REGISTRATIONS]: 'cluster/registry/registrations',
  [C_CLUSTER_TAKEOVERS]: 'cluster/registry/takeovers',
  [C_CLUSTER_REGISTRY_REFUSED]: 'cluster/registry/refused',
  [C_CLUSTER_REGISTRY_TIMEOUTS]: 'cluster/registry/timeouts',
  [C_CLUSTER_REASSERTED]: 'cluster/registry/reasserted',
  [C_CLUSTER_REASSERT_LOST]: 'cluster/registry/lost',
  [C_CLUSTER_HOME_ENTRIES]: 'cluster/registry/home-entries',
  [C_ROUTE_PASSES]: 'routing/passes',
  [C_ROUTED_EARLY]: 'routing/early',
  [C_CLUSTER_HANDOVERS_OUT]: 'cluster/handover/out',
  [C_CLUSTER_HANDOVERS_IN]: 'cluster/handover/in',
  [C_CLUSTER_HANDOVERS_FAILED]: 'cluster/handover/failed',
  [C_CLUSTER_HANDOVER_DROPPED]: 'cluster/handover/dropped',
  [C_SESSION_DEADLINES]: 'sessions/deadlines',
  [C_CLUSTER_RETAINED_SENT]: 'cluster/retained/sent',
  [C_CLUSTER_RETAINED_APPLIED]: 'cluster/retained/applied',
  [C_CLUSTER_RETAINED_STALE]: 'cluster/retained/stale',
  [C_CLUSTER_RETAINED_TOMBSTONES]: 'cluster/retained/tombstones',
  [C_CLUSTER_RETAINED_TOMBS_DROPPED]: 'cluster/retained/tombstones-dropped',
  [C_CLUSTER_RETAINED_RESYNCS]: 'cluster/retained/resyncs',
  [C_CLUSTER_RETAINED_SNAPSHOTS]: 'cluster/retained/snapshots',
  [C_CLUSTER_RETAINED_TOO_LARGE]: 'cluster/retained/too-large',
};

for (const [i, r] of DISCONNECT_REASONS.entries()) COUNTER_NAMES[C_DISCONNECT_BASE + i] = `clients/disconnected/${r.replace(/_/g, '-')}`;

export function createCounters(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * COUNTERS_PER_WORKER * workers);
}

export function sumCounter(all: Float64Array, workers: number, c: number): number {
  let s = 0;
  for (let w = 0; w < workers; w++) s += all[w * COUNTERS_PER_WORKER + c];
  return s;
}
