// GET /metrics: the Prometheus text exposition format 0.0.4, built at scrape time on the main
// thread from what the other threads already keep in shared memory: the per-worker counter rows
// (src/shared/counters.ts, summed here as $SYS sums them) and every thread's heartbeat slot
// (src/shared/heartbeats.ts). Nothing here is on, or adds anything to, the message path.
import * as fs from 'node:fs/promises';
import * as K from '../shared/counters';
import { readHeartbeat, coordinatorSlot, mainSlot, monotonicMs } from '../shared/heartbeats';
import { HISTOGRAMS, readHistogram } from '../shared/histograms';
import { DISCONNECT_REASONS } from '../shared/disconnect-reasons';
import { TRANSPORTS, G_CONN_BASE, G_INFLIGHT, G_QUEUED, sumGauge } from '../shared/worker-gauges';

/** What the exposition reads; each part is handed over by broker.ts. */
export interface MetricsSources {
  readonly version: string;
  /** Per-worker counter rows (K.COUNTERS_PER_WORKER doubles each). */
  readonly counters: SharedArrayBuffer;
  readonly workers: number;
  readonly heartbeats: SharedArrayBuffer;
  /** Date.now() at start. */
  readonly startedAt: number;
  /** Workers the supervisor replaced after they died. */
  restarts(): number;
  /** Connections the listener closed because no worker's accept ring had room. */
  refusedNoWorker(): number;
  /** HTTP connections the listener dropped at its connection bound. */
  httpDropped(): number;
  /** Latency histograms (src/shared/histograms.ts). */
  readonly histograms?: SharedArrayBuffer;
  /** Per-worker gauges (src/shared/worker-gauges.ts). */
  readonly gauges?: SharedArrayBuffer;
  /** Log records dropped: in the threads' full log rings, and by the writer when stdout lagged. */
  logDrops?(): { ring: number; writer: number };
  /** A cluster member's view (null: a single node, no cluster families). */
  cluster?(): { members: number; fenced: boolean; fencings: number } | null;
}

type Labels = Record<string, string> | null;
type Sample = readonly [Labels, number];

/** One scrape's text: families in order, each with its HELP and TYPE lines. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly names = new Set<string>();

  /**
   * A histogram family: `_bucket{le}` cumulative (the last is +Inf and equals `_count`), `_sum`,
   * `_count`, as the text format 0.0.4 has them.
   */
  histogram(name: string, help: string, bounds: readonly number[], h: { cumulative: number[]; sum: number; count: number }): this {
    if (this.names.has(name)) throw new Error(`metric family ${name} declared twice`);
    this.names.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`);
    bounds.forEach((b, i) => this.lines.push(`${name}_bucket{le="${formatValue(b)}"} ${formatValue(h.cumulative[i])}`));
    this.lines.push(`${name}_bucket{le="+Inf"} ${formatValue(h.count)}`, `${name}_sum ${formatValue(h.sum)}`, `${name}_count ${formatValue(h.count)}`);
    return this;
  }

  family(name: string, type: 'counter' | 'gauge', help: string, samples: readonly Sample[]): this {
    if (this.names.has(name)) throw new Error(`metric family ${name} declared twice`);
    this.names.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  one(name: string, type: 'counter' | 'gauge', help: string, value: number): this {
    return this.family(name, type, help, [[null, value]]);
  }

  /** Every line ends with a line feed, the last one too (the format's rule). */
  text(): string { return this.lines.join('\n') + '\n'; }
}

/** HELP text: backslash and line feed are the only escapes. */
function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values: backslash, double quote and line feed are escaped. */
function formatLabels(labels: Labels): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return `{${parts.join(',')}}`;
}

/** Go's ParseFloat spellings: NaN, +Inf, -Inf; finite numbers as JavaScript prints them. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Open and maximum file descriptors from /proc (Linux); null elsewhere or when unreadable. */
async function fdUsage(): Promise<{ open: number; max: number | null } | null> {
  try {
    const open = (await fs.readdir('/proc/self/fd')).length;
    const limits = await fs.readFile('/proc/self/limits', 'utf8').catch(() => '');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    return { open, max: m && m[1] !== 'unlimited' ? Number(m[1]) : null };
  } catch {
    return null;
  }
}

export async function renderMetrics(src: MetricsSources): Promise<string> {
  const all = new Float64Array(src.counters);
  const n = src.workers;
  const sum = (c: number): number => K.sumCounter(all, n, c);
  const perWorker = (c: number): Sample[] => Array.from({ length: n }, (_, w) => [{ worker: String(w) }, all[w * K.COUNTERS_PER_WORKER + c]] as const);

  const e = new Exposition();
  e.family('fleetmq_build_info', 'gauge', 'Always 1; the version is its label.', [[{ version: src.version }, 1]]);
  e.one('fleetmq_workers', 'gauge', 'Worker threads serving connections (--workers).', n);
  e.one('fleetmq_worker_restarts_total', 'counter', 'Workers that died and were replaced by the supervisor (their connections were lost).', src.restarts());

  e.one('fleetmq_connections', 'gauge', 'TCP connections held by the workers now (with a CONNECT or not).', sum(K.C_CONNECTIONS_OPEN));
  e.family('fleetmq_worker_connections', 'gauge', 'TCP connections held by each worker now: the load the listener balances on.', perWorker(K.C_CONNECTIONS_OPEN));
  e.one('fleetmq_clients_connected', 'gauge', 'MQTT clients connected now (CONNECT accepted).', sum(K.C_CLIENTS_CONNECTED));
  e.one('fleetmq_connections_total', 'counter', 'TCP connections taken by a worker (a connection moved to the worker that holds its session counts again).', sum(K.C_CONNECTIONS_TOTAL));
  e.family('fleetmq_connections_refused_total', 'counter', 'Connections refused: auth = bad credentials or anonymous not allowed, busy = the password-hashing queue was full, no_worker = no worker could take the connection, banned = the client id, username or address is banned.', [
    [{ reason: 'auth' }, sum(K.C_AUTH_REFUSED)],
    [{ reason: 'busy' }, sum(K.C_AUTH_BUSY)],
    [{ reason: 'no_worker' }, src.refusedNoWorker()],
    [{ reason: 'fenced' }, sum(K.C_CLUSTER_REFUSED)],
    [{ reason: 'tls' }, sum(K.C_TLS_FAILED)],
    [{ reason: 'handshake_timeout' }, sum(K.C_HANDSHAKE_TIMEOUT)],
    [{ reason: 'websocket' }, sum(K.C_WS_REFUSED)],
    [{ reason: 'banned' }, sum(K.C_BANNED_REFUSED)],
  ]);
  e.family('fleetmq_connections_closed_total', 'counter', 'Connections the broker closed on its own: unread_output = the client left more output unread than any delivery can explain, fenced = this node fenced itself out of its cluster, banned = a ban added or reloaded named the client, admin = kicked through the admin API.', [
    [{ reason: 'unread_output' }, sum(K.C_CLOSED_UNREAD)],
    [{ reason: 'fenced' }, sum(K.C_CLUSTER_DROPPED)],
    [{ reason: 'banned' }, sum(K.C_BANNED_DISCONNECTED)],
    [{ reason: 'admin' }, sum(K.C_KICKED)],
  ]);
  e.one('fleetmq_api_requests_total', 'counter', 'Requests to the admin API (/api/v1).', sum(K.C_API_REQUESTS));
  e.one('fleetmq_api_failures_total', 'counter', 'Admin API requests answered with a status of 400 or more (no or a wrong key, read key on a write, bad input, a worker that did not answer).', sum(K.C_API_FAILURES));
  // Cluster data plane (src/cluster/README.md): workers count forwarding, the coordinator the rest (row 0).
  e.family('fleetmq_cluster_forwarded_messages_total', 'counter', 'Messages forwarded between nodes: out = sent to a peer node (one per target node), in = received from peers and routed here.', [
    [{ direction: 'out' }, sum(K.C_CLUSTER_FWD_OUT)],
    [{ direction: 'in' }, sum(K.C_CLUSTER_FWD_IN)],
  ]);
  e.family('fleetmq_cluster_forward_dropped_total', 'counter', 'Forwarded messages not delivered to a peer: queue_full = QoS 0 at a full peer queue (--cluster-forward-queue-bytes), refused = QoS >= 1 over twice that bound (publisher disconnected without an acknowledgement).', [
    [{ reason: 'queue_full' }, sum(K.C_CLUSTER_FWD_DROPPED)],
    [{ reason: 'refused' }, sum(K.C_CLUSTER_FWD_FAILED)],
  ]);
  e.one('fleetmq_cluster_forward_resent_total', 'counter', 'QoS >= 1 forwarded messages sent again after a forward stream reset.', sum(K.C_CLUSTER_FWD_RESENT));
  e.one('fleetmq_cluster_forward_duplicates_total', 'counter', 'Forwarded messages received again after a resend and not routed twice.', sum(K.C_CLUSTER_FWD_DUPLICATES));
  e.one('fleetmq_cluster_routes_remote', 'gauge', 'Routes (peer node, filter) held from peers, as node tokens in the trie.', sum(K.C_CLUSTER_ROUTES_REMOTE));
  e.one('fleetmq_cluster_routes_local', 'gauge', 'Filters with local subscribers announced to peers.', sum(K.C_CLUSTER_ROUTES_LOCAL));
  e.one('fleetmq_cluster_route_snapshots_total', 'counter', 'Route snapshots received from peers (link start, stream reset, version gap).', sum(K.C_CLUSTER_ROUTE_SNAPSHOTS));
  e.family('fleetmq_cluster_routes_hash', 'gauge', 'XOR of hash(node, filter) over the routes: local = announced by this node, remote = held from peers. A peer\'s remote hash equals the XOR of the other nodes\' local hashes once routes converged.', [
    [{ table: 'local' }, sum(K.C_CLUSTER_ROUTES_LOCAL_HASH)],
    [{ table: 'remote' }, sum(K.C_CLUSTER_ROUTES_REMOTE_HASH)],
  ]);
  e.one('fleetmq_cluster_peers_connected', 'gauge', 'Peer nodes this node has a forward stream open to.', sum(K.C_CLUSTER_PEERS_CONNECTED));
  e.one('fleetmq_cluster_admin_calls_total', 'counter', 'Admin API calls made to other cluster members (one per member and request).', sum(K.C_CLUSTER_ADMIN_ASKED));
  e.one('fleetmq_cluster_admin_missing_total', 'counter', 'Admin API calls to other members that failed or timed out (the answer was marked partial).', sum(K.C_CLUSTER_ADMIN_MISSING));
  e.one('fleetmq_cluster_admin_refused_total', 'counter', 'Admin calls on the cluster port refused (not a current member, not a query, too many waiting).', sum(K.C_CLUSTER_ADMIN_REFUSED));
  e.one('fleetmq_cluster_registrations_total', 'counter', 'Client-id claims granted by their home node (one per CONNECT on a cluster member).', sum(K.C_CLUSTER_REGISTRATIONS));
  e.one('fleetmq_cluster_takeovers_total', 'counter', 'Sessions on another node ended for a CONNECT on this one (cross-node takeovers).', sum(K.C_CLUSTER_TAKEOVERS));
  e.family('fleetmq_cluster_registry_refused_total', 'counter', 'CONNECTs the client-id registry refused: refused = not a member or the home refused, timeout = home or previous owner did not answer in time.', [
    [{ reason: 'refused' }, sum(K.C_CLUSTER_REGISTRY_REFUSED)],
    [{ reason: 'timeout' }, sum(K.C_CLUSTER_REGISTRY_TIMEOUTS)],
  ]);
  e.one('fleetmq_cluster_reasserted_total', 'counter', 'Client ids re-registered with a new home after a view change or a rejoin.', sum(K.C_CLUSTER_REASSERTED));
  e.one('fleetmq_cluster_reassert_lost_total', 'counter', 'Sessions ended on this node because another node owned their id at a view change or rejoin.', sum(K.C_CLUSTER_REASSERT_LOST));
  e.one('fleetmq_cluster_home_entries', 'gauge', 'Client ids this node is the home (registry primary) of now.', sum(K.C_CLUSTER_HOME_ENTRIES));
  e.family('fleetmq_cluster_handovers_total', 'counter', 'Sessions moved between nodes on a takeover: out = handed to another node, in = taken from one, failed = not completed (the other side died or did not answer).', [
    [{ dir: 'out' }, sum(K.C_CLUSTER_HANDOVERS_OUT)],
    [{ dir: 'in' }, sum(K.C_CLUSTER_HANDOVERS_IN)],
    [{ dir: 'failed' }, sum(K.C_CLUSTER_HANDOVERS_FAILED)],
  ]);
  e.one('fleetmq_cluster_handover_dropped_total', 'counter', 'Queued messages left out of a session handover (over the bytes one handover carries).', sum(K.C_CLUSTER_HANDOVER_DROPPED));
  // Retained replication (src/cluster/retained-sync.ts), coordinator, row 0.
  e.one('fleetmq_cluster_retained_sent_total', 'counter', 'Retained entries (messages and tombstones) sent to peer nodes.', sum(K.C_CLUSTER_RETAINED_SENT));
  e.family('fleetmq_cluster_retained_received_total', 'counter', 'Retained entries received from peers: applied = newer than this node\'s (last writer wins), stale = not newer (or malformed), ignored.', [
    [{ result: 'applied' }, sum(K.C_CLUSTER_RETAINED_APPLIED)],
    [{ result: 'stale' }, sum(K.C_CLUSTER_RETAINED_STALE)],
  ]);
  e.one('fleetmq_cluster_retained_tombstones', 'gauge', 'Cleared retained topics remembered now (tombstones, kept --retained-tombstone-ttl).', sum(K.C_CLUSTER_RETAINED_TOMBSTONES));
  e.one('fleetmq_cluster_retained_tombstones_dropped_total', 'counter', 'Tombstones dropped before their TTL at --retained-tombstones-max (oldest first).', sum(K.C_CLUSTER_RETAINED_TOMBS_DROPPED));
  e.one('fleetmq_cluster_retained_resyncs_total', 'counter', 'Full retained snapshots restarted for a peer whose set of changed topics was full.', sum(K.C_CLUSTER_RETAINED_RESYNCS));
  e.one('fleetmq_cluster_retained_snapshots_total', 'counter', 'Whole retained snapshots received from peers (at a join, restart or rejoin).', sum(K.C_CLUSTER_RETAINED_SNAPSHOTS));
  e.one('fleetmq_cluster_retained_too_large_total', 'counter', 'Retained messages larger than a replication frame (16 MiB), kept on their node only.', sum(K.C_CLUSTER_RETAINED_TOO_LARGE));
  e.one('fleetmq_connections_relayed_total', 'counter', 'TLS / WebSocket connections relayed to the worker that owns their session.', sum(K.C_RELAYED));
  e.one('fleetmq_sessions', 'gauge', 'Sessions held now (connected or not).', sum(K.C_SESSIONS));
  e.one('fleetmq_subscriptions', 'gauge', 'Subscriptions held now.', sum(K.C_SUBSCRIPTIONS));
  e.one('fleetmq_session_deadlines', 'gauge', 'Offline sessions\' expiries and will delays pending (one heap and one timer per worker, not a timer each).', sum(K.C_SESSION_DEADLINES));

  e.one('fleetmq_messages_received_total', 'counter', 'PUBLISH packets received from clients.', sum(K.C_MSGS_RECEIVED));
  e.one('fleetmq_messages_sent_total', 'counter', 'PUBLISH packets sent to clients.', sum(K.C_MSGS_SENT));
  e.one('fleetmq_routing_passes_total', 'counter', 'Routing passes: one native topic match over a batch of PUBLISHes, normally one per worker loop turn across all its connections (messages received / passes = batch size).', sum(K.C_ROUTE_PASSES));
  e.one('fleetmq_routing_early_total', 'counter', 'Batches routed before their loop turn ended because they were full (256 messages, or 4 MiB of read chunks held).', sum(K.C_ROUTED_EARLY));
  e.one('fleetmq_bytes_received_total', 'counter', 'Bytes read from client sockets.', sum(K.C_BYTES_RECEIVED));
  e.one('fleetmq_bytes_sent_total', 'counter', 'Bytes written to client sockets.', sum(K.C_BYTES_SENT));
  e.family('fleetmq_messages_dropped_total', 'counter', 'Messages not delivered to a subscriber: slow_consumer = QoS 0 to a socket over --output-high-water, queue_full = a full session queue (--queue-policy), expired = Message Expiry Interval passed while queued, too_large = over the client\'s Maximum Packet Size.', [
    [{ reason: 'slow_consumer' }, sum(K.C_DROPPED_SLOW_QOS0)],
    [{ reason: 'queue_full' }, sum(K.C_DROPPED_QUEUE_FULL)],
    [{ reason: 'expired' }, sum(K.C_DROPPED_EXPIRED)],
    [{ reason: 'too_large' }, sum(K.C_DROPPED_TOO_LARGE)],
    [{ reason: 'not_authorised' }, sum(K.C_DROPPED_NOT_AUTHORISED)],
  ]);
  e.one('fleetmq_messages_withheld_total', 'counter', 'Deliveries withheld because the ACL does not let the subscriber read the topic.', sum(K.C_WITHHELD_NOT_AUTHORISED));
  e.one('fleetmq_acl_cache_evicted_total', 'counter', 'ACL decisions dropped from a connection\'s full cache (--acl-cache-entries).', sum(K.C_ACL_CACHE_EVICTED));
  // HTTP auth callout and JWT.
  e.one('fleetmq_auth_http_requests_total', 'counter', 'HTTP auth callout requests sent (identical concurrent checks share one).', sum(K.C_AUTH_HTTP_REQUESTS));
  e.one('fleetmq_auth_http_errors_total', 'counter', 'HTTP auth callout requests that failed: timeout, refused, 5xx, unreadable answer (--auth-http-when-down decides).', sum(K.C_AUTH_HTTP_ERRORS));
  e.one('fleetmq_auth_http_cache_hits_total', 'counter', 'CONNECTs decided from the callout cache without a request.', sum(K.C_AUTH_HTTP_CACHE_HITS));
  e.one('fleetmq_auth_http_coalesced_total', 'counter', 'CONNECTs that joined an identical callout request in flight.', sum(K.C_AUTH_HTTP_COALESCED));
  e.one('fleetmq_auth_http_inflight_full_total', 'counter', 'CONNECTs answered "server busy" because --auth-http-max-inflight requests were in flight.', sum(K.C_AUTH_HTTP_INFLIGHT_FULL));
  e.one('fleetmq_auth_http_cache_evicted_total', 'counter', 'Callout answers dropped from the full cache (--auth-http-cache-entries).', sum(K.C_AUTH_HTTP_CACHE_EVICTED));
  e.one('fleetmq_auth_jwt_refused_total', 'counter', 'JWTs refused: bad signature, expired, not yet valid, a claim that does not match.', sum(K.C_AUTH_JWT_REFUSED));
  e.one('fleetmq_auth_token_expired_disconnects_total', 'counter', 'Connections closed because their JWT expired.', sum(K.C_AUTH_TOKEN_EXPIRED));
  e.one('fleetmq_ring_spilled_total', 'counter', 'Cross-worker records that waited in a producer\'s overflow queue because the peer ring was full.', sum(K.C_RING_SPILLED));
  e.one('fleetmq_handler_errors_total', 'counter', 'Packets whose handler threw (a bug): the connection was closed, the worker lived on.', sum(K.C_HANDLER_ERRORS));
  e.one('fleetmq_store_held_messages_total', 'counter', 'QoS 1 messages to persistent sessions routed before their store write (write-behind, --commit-linger-ms).', sum(K.C_STORE_HELD));
  e.one('fleetmq_store_unwritten_messages_total', 'counter', 'Held messages acknowledged by every subscriber within the linger: never written.', sum(K.C_STORE_UNWRITTEN));
  e.one('fleetmq_store_forced_messages_total', 'counter', 'Held messages written before the linger ended because a delivery was queued.', sum(K.C_STORE_FORCED));
  e.one('fleetmq_store_held_remote_messages_total', 'counter', 'Published QoS 1 messages held by persistent sessions on another worker than the publisher\'s.', sum(K.C_STORE_HELD_REMOTE));

  // Per thread, from the heartbeat slots.
  const now = monotonicMs();
  const threads: [string, number][] = [];
  for (let w = 0; w < n; w++) threads.push([`worker-${w}`, w]);
  threads.push(['coordinator', coordinatorSlot(n)], ['main', mainSlot(n)]);
  const beats = threads.map(([name, slot]) => [name, readHeartbeat(src.heartbeats, slot, now)] as const);
  const started = beats.filter(([, b]) => b.ageMs !== null);
  e.family('fleetmq_heartbeat_age_seconds', 'gauge', 'Seconds since each thread last beat (once a second from a timer; /livez fails past 5).',
    started.map(([thread, b]) => [{ thread }, b.ageMs! / 1000]));
  e.family('fleetmq_event_loop_delay_p99_seconds', 'gauge', 'Each thread\'s event-loop delay over the last second, 99th percentile (sampled every 20 ms).',
    started.map(([thread, b]) => [{ thread }, b.delayP99Ms / 1000]));
  e.family('fleetmq_event_loop_delay_max_seconds', 'gauge', 'Each thread\'s longest event-loop delay over the last second.',
    started.map(([thread, b]) => [{ thread }, b.delayMaxMs / 1000]));
  e.family('fleetmq_event_loop_utilization_ratio', 'gauge', 'Fraction of the last second each thread\'s event loop spent running (1 = saturated).',
    started.map(([thread, b]) => [{ thread }, b.utilization]));

  // Limits (workers/README.md, "Limits").
  e.family('fleetmq_limit_refused_total', 'counter', 'Connections closed by a limit: max_connections = --max-connections or a listener\'s maxConnections at accept, rate_queue_full = more connections waiting for --max-connection-rate than the wait list holds, proxy = PROXY protocol listener: untrusted sender, malformed or missing header.', [
    [{ reason: 'max_connections' }, sum(K.C_REFUSED_MAX_CONNECTIONS)],
    [{ reason: 'rate_queue_full' }, sum(K.C_REFUSED_RATE_QUEUE)],
    [{ reason: 'proxy' }, sum(K.C_PROXY_REFUSED)],
  ]);
  e.one('fleetmq_accept_rate_waits_total', 'counter', 'Accepted connections that waited for their listener\'s --max-connection-rate before a worker got them.', sum(K.C_ACCEPT_WAITED));
  e.one('fleetmq_client_rate_pauses_total', 'counter', 'Times reading a client\'s socket paused for --max-client-msg-rate / --max-client-byte-rate.', sum(K.C_CLIENT_RATE_PAUSES));
  e.one('fleetmq_subscriptions_refused_quota_total', 'counter', 'SUBSCRIBE filters refused by --max-subscriptions (v5 0x97, v3 0x80).', sum(K.C_SUBSCRIPTION_QUOTA));
  e.one('fleetmq_messages_payload_too_large_total', 'counter', 'PUBLISHes dropped for a payload over --max-payload-size (QoS 1/2: v5 acknowledged 0x97).', sum(K.C_PAYLOAD_TOO_LARGE));
  // Disconnects, auth results, per-worker load, the log path, latency histograms.
  e.family('fleetmq_disconnects_total', 'counter', 'Connections of connected clients (CONNACK sent) that ended, by reason: ' +
    'client_disconnect, keepalive_timeout, protocol_error, takeover, shutdown, connection_lost (closed without DISCONNECT), internal_error (a handler threw), ' +
    'kicked (operator), server_other, output_limit, fenced.',
  DISCONNECT_REASONS.map((r, i) => [{ reason: r }, sum(K.C_DISCONNECT_BASE + i)] as const));
  const denyAnon = sum(K.C_AUTH_DENY_ANONYMOUS);
  const denyCert = sum(K.C_AUTH_DENY_CERTIFICATE);
  e.family('fleetmq_auth_results_total', 'counter', 'CONNECT authentication results by method: password (checked, or cached in the worker), anonymous, certificate (--use-identity-as-username); busy = the password-hashing queue was full.', [
    [{ method: 'password', result: 'allow' }, sum(K.C_AUTH_ALLOW_PASSWORD)],
    [{ method: 'password', result: 'deny' }, Math.max(0, sum(K.C_AUTH_REFUSED) - denyAnon - denyCert)],
    [{ method: 'password', result: 'busy' }, sum(K.C_AUTH_BUSY)],
    [{ method: 'anonymous', result: 'allow' }, sum(K.C_AUTH_ALLOW_ANONYMOUS)],
    [{ method: 'anonymous', result: 'deny' }, denyAnon],
    [{ method: 'certificate', result: 'allow' }, sum(K.C_AUTH_ALLOW_CERTIFICATE)],
    [{ method: 'certificate', result: 'deny' }, denyCert],
  ]);
  e.family('fleetmq_worker_messages_received_total', 'counter', 'PUBLISH packets each worker received from its clients (rate() of it is the worker\'s load).', perWorker(K.C_MSGS_RECEIVED));
  e.family('fleetmq_worker_messages_sent_total', 'counter', 'PUBLISH packets each worker sent to its clients.', perWorker(K.C_MSGS_SENT));
  e.family('fleetmq_worker_clients_connected', 'gauge', 'MQTT clients connected to each worker now.', perWorker(K.C_CLIENTS_CONNECTED));
  if (src.gauges) {
    const g = src.gauges;
    e.family('fleetmq_transport_connections', 'gauge', 'Connections held by the workers now, by transport (tcp, tls, websocket: ws and wss).',
      TRANSPORTS.map((t, i) => [{ transport: t }, sumGauge(g, n, G_CONN_BASE + i)] as const));
    e.one('fleetmq_messages_inflight', 'gauge', 'QoS 1/2 messages sent to clients and not yet acknowledged, all sessions (sampled once a second).', sumGauge(g, n, G_INFLIGHT));
    e.one('fleetmq_messages_queued', 'gauge', 'Messages waiting in session queues (offline sessions, or a full in-flight window), all sessions (sampled once a second).', sumGauge(g, n, G_QUEUED));
  }
  const cluster = src.cluster?.() ?? null;
  if (cluster !== null) {
    e.one('fleetmq_cluster_members', 'gauge', 'Members in this node\'s current cluster view, itself included (0 while fenced).', cluster.fenced ? 0 : cluster.members);
    e.one('fleetmq_cluster_fenced', 'gauge', '1 while this node has fenced itself out of its cluster (its lease could not be proven alive), else 0.', cluster.fenced ? 1 : 0);
    e.one('fleetmq_cluster_fencings_total', 'counter', 'Times this node fenced itself since it started.', cluster.fencings);
  }
  if (src.logDrops) {
    const d = src.logDrops();
    e.family('fleetmq_log_records_dropped_total', 'counter', 'Log records dropped: ring = a worker\'s or the coordinator\'s log ring to the writer was full, writer = stdout did not keep up and the writer\'s buffer was full.', [
      [{ stage: 'ring' }, d.ring],
      [{ stage: 'writer' }, d.writer],
    ]);
  }
  if (src.histograms) {
    for (const [i, spec] of HISTOGRAMS.entries()) e.histogram(spec.name, spec.help, spec.bounds, readHistogram(src.histograms, i));
  }

  e.one('fleetmq_http_connections_dropped_total', 'counter', 'Connections to this HTTP listener closed at once because it already had its maximum open.', src.httpDropped());

  // The client libraries' standard process metrics, for the whole process (every thread).
  const cpu = process.cpuUsage();
  e.one('process_cpu_seconds_total', 'counter', 'User and system CPU time of the process, seconds.', (cpu.user + cpu.system) / 1e6);
  e.one('process_resident_memory_bytes', 'gauge', 'Resident set size of the process, bytes.', process.memoryUsage.rss());
  e.one('process_start_time_seconds', 'gauge', 'When the broker started, seconds since the Unix epoch.', src.startedAt / 1000);
  const fds = await fdUsage();
  if (fds) {
    e.one('process_open_fds', 'gauge', 'Open file descriptors of the process.', fds.open);
    if (fds.max !== null) e.one('process_max_fds', 'gauge', 'The process\'s open file descriptor limit (LimitNOFILE / ulimit -n).', fds.max);
  }
  return e.text();
}
