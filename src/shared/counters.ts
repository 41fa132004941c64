// Per-worker metrics in one shared Float64Array: each worker writes only its own row; the
// $SYS publisher and the main thread's /metrics (src/http/metrics.ts) read every row. Doubles,
// not BigInts, because they are read often and 2^53 messages is beyond any uptime.
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
/** WebSocket requests refused (wrong path, no MQTT subprotocol, plain HTTP) and connections closed for a text frame. */
export const C_WS_REFUSED = 30;
/** TLS / WebSocket connections relayed to the worker that owns their session (workers/net/relay.ts), total. */
export const C_RELAYED = 31;
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
/** Counters in use in a row (the next free index). */
export const COUNTERS_USED = 96;
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
  [C_CLUSTER_REGISTRATIONS]: 'cluster/registry/registrations',
  [C_CLUSTER_TAKEOVERS]: 'cluster/registry/takeovers',
  [C_CLUSTER_REGISTRY_REFUSED]: 'cluster/registry/refused',
  [C_CLUSTER_REGISTRY_TIMEOUTS]: 'cluster/registry/timeouts',
  [C_CLUSTER_REASSERTED]: 'cluster/registry/reasserted',
  [C_CLUSTER_REASSERT_LOST]: 'cluster/registry/lost',
  [C_CLUSTER_HOME_ENTRIES]: 'cluster/registry/home-entries',
};

export function createCounters(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * COUNTERS_PER_WORKER * workers);
}

export function sumCounter(all: Float64Array, workers: number, c: number): number {
  let s = 0;
  for (let w = 0; w < workers; w++) s += all[w * COUNTERS_PER_WORKER + c];
  return s;
}
