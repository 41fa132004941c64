// Every setting is declared once here: its flag, its config-file key, its type, default and
// help line. The CLI, `--help`, `--config` and the workers all read this one table.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { EtcdConfigError, nameProblem, parseEndpoints } from './cluster/names';
import { BannedError, parseBannedConfig } from './shared/banned';
import { badCidr } from './shared/cidr';

export type QueuePolicy = 'drop-oldest' | 'drop-new' | 'disconnect';
export type Durability = 'none' | 'process' | 'fsync';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface BrokerConfig {
  port: number;
  host: string;
  workers: number;
  maxKeepalive: number;
  maxPacketSize: number;
  receiveMaximum: number;
  maxInflight: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  queuePolicy: QueuePolicy;
  outputHighWater: number;
  sysInterval: number;
  youngGenerationMb: number;
  dataDir: string;
  durability: Durability;
  commitLingerMs: number;
  storeMemtableMb: number;
  storeOpenTimeoutMs: number;
  passwordFile?: string;
  /** 'true' / 'false' as given; unset: allowed without --password-file, refused with it (see anonymousAllowed). */
  allowAnonymous?: 'true' | 'false';
  authPoolThreads: number;
  authQueueMax: number;
  authCacheEntries: number;
  aclFile?: string;
  aclCacheEntries: number;
  /** HTTP auth callout and JWT (src/auth/http-callout.ts, src/auth/jwt.ts); unset URL / key files = off. */
  authHttpUrl?: string;
  authHttpTimeoutMs: number;
  authHttpCacheTtlMs: number;
  authHttpDenyCacheTtlMs: number;
  authHttpCacheEntries: number;
  authHttpMaxInflight: number;
  authHttpWhenDown: 'deny' | 'ignore';
  jwtSecretFile?: string;
  jwtPublicKeyFile?: string;
  jwtJwksFile?: string;
  jwtAlgorithms?: string;
  jwtFrom: 'password' | 'username';
  jwtUsernameClaim?: string;
  jwtClientidClaim?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtAclClaim: string;
  /** Comma-separated order of the authentication methods (file, http, jwt); unset: that order, configured ones only. */
  authChain?: string;
  /** Cluster (src/cluster/README.md): all unset / defaults = a single node, no etcd client loaded. */
  etcd?: string;
  nodeId?: string;
  clusterName: string;
  clusterPort: number;
  clusterForwardQueueBytes: number;
  clusterHandoverLingerMs: number;
  clusterAdvertisePort?: number;
  advertise?: string;
  leaseTtl: number;
  clusterJoinTimeoutMs: number;
  /** Retained replication between nodes (src/cluster/retained-sync.ts). */
  retainedTombstoneTtl: number;
  retainedTombstonesMax: number;
  retainedSyncTimeoutMs: number;
  /** Logging (src/log/): the level, and JSON lines or one compact human line per record. */
  logLevel: LogLevel;
  logFormat: 'json' | 'pretty';
  /** /metrics and the latency histograms' timers (false: none of either, for the bench's baseline). */
  metrics: 'true' | 'false';
  /** -1: no HTTP listener. */
  httpPort: number;
  httpHost: string;
  /** Extra listeners beside --port (src/shared/listeners.ts); TLS material is read by the main thread. */
  tlsPort?: number;
  wsPort?: number;
  wssPort?: number;
  wsPath: string;
  cert?: string;
  key?: string;
  ca?: string;
  requireCertificate: 'true' | 'false';
  useIdentityAsUsername: 'true' | 'false';
  tlsHandshakeTimeoutMs: number;
  /** More listeners (usually from --config): see ListenerEntry and src/shared/listeners.ts. */
  listeners: ListenerEntry[];
  /** Admin API and banned list (src/http/api.ts, src/main/banned-service.ts). */
  apiKeysFile?: string;
  bannedFile?: string;
  banned?: BannedConfig;
  /** Limits (workers/README.md, "Limits"); 0 = off unless said otherwise. */
  maxConnections: number;
  maxConnectionRate: number;
  connectTimeoutMs: number;
  maxClientMsgRate: number;
  maxClientByteRate: number;
  maxSubscriptions: number;
  maxPayloadSize: number;
  /** PROXY protocol on --port, from --proxy-trusted only (src/shared/proxy-protocol.ts). */
  proxyProtocol: 'true' | 'false';
  proxyTrusted?: string;
  crl?: string;
  config?: string;
}

/** The config file's `banned` key (src/shared/banned.ts). */
export interface BannedConfig { clientIds?: string[]; clientIdPrefixes?: string[]; usernames?: string[]; addresses?: string[] }

/**
 * One more listener beside the flags' ones. Unset fields take the flags' values: host from
 * --host, path from --ws-path, and for tls / wss the certificate settings from --cert, --key,
 * --ca, --require-certificate, --use-identity-as-username.
 */
export interface ListenerEntry {
  transport: 'tcp' | 'tls' | 'ws' | 'wss';
  port: number;
  host?: string;
  path?: string;
  cert?: string;
  key?: string;
  ca?: string;
  requireCertificate?: boolean;
  useIdentityAsUsername?: boolean;
  /** PROXY protocol v1/v2 header first on every connection, from `proxyTrusted` (default --proxy-trusted) only. */
  proxyProtocol?: boolean;
  proxyTrusted?: string[];
  /** This listener's own bounds (default: none beyond the global --max-connections; --max-connection-rate). */
  maxConnections?: number;
  maxConnectionRate?: number;
  /** tls / wss: PEM CRL (default --crl). */
  crl?: string;
}

export class ConfigError extends Error {}

type Kind = 'int' | 'string' | 'enum' | 'listeners' | 'banned';

interface Setting {
  key: keyof BrokerConfig;
  flag: string;
  kind: Kind;
  min?: number;
  max?: number;
  choices?: readonly string[];
  help: string;
  default: () => string | number | undefined | ListenerEntry[] | BannedConfig;
}

const cores = () => os.availableParallelism?.() ?? os.cpus().length;
const defaultWorkers = () => Math.max(1, cores() - 1);

export const SETTINGS: readonly Setting[] = [
  { key: 'port', flag: '--port', kind: 'int', min: 0, max: 65535, default: () => 1883, help: 'TCP port to listen on (0 = any free port; the bound port is printed)' },
  { key: 'host', flag: '--host', kind: 'string', default: () => '127.0.0.1', help: 'address to listen on; loopback by default (as Mosquitto 2): any other address needs --password-file (or --auth-http-url, a --jwt-*-file) or an explicit --allow-anonymous true' },
  { key: 'workers', flag: '--workers', kind: 'int', min: 1, max: 256, default: defaultWorkers, help: 'worker threads serving connections (default: available cores - 1, at least 1)' },
  { key: 'maxKeepalive', flag: '--max-keepalive', kind: 'int', min: 0, max: 65535, default: () => 65535, help: 'largest keep-alive (s) a client may use; larger or 0 is capped and, on MQTT 5, announced as Server Keep Alive' },
  { key: 'maxPacketSize', flag: '--max-packet-size', kind: 'int', min: 64, max: 268435455, default: () => 16 * 1048576, help: 'largest packet (bytes) accepted from a client; larger is DISCONNECT 0x95 (v5) or a close' },
  { key: 'receiveMaximum', flag: '--receive-maximum', kind: 'int', min: 1, max: 65535, default: () => 1024, help: 'QoS 1/2 PUBLISHes a client may have unacknowledged towards the broker (v5 Receive Maximum)' },
  { key: 'maxInflight', flag: '--max-inflight', kind: 'int', min: 1, max: 65535, default: () => 1024, help: 'QoS 1/2 messages in flight to one client (lowered to the client\'s Receive Maximum)' },
  { key: 'maxQueuedMessages', flag: '--max-queued-messages', kind: 'int', min: 0, max: 1e9, default: () => 10000, help: 'QoS 1/2 messages queued per session beyond the in-flight window (0 = none)' },
  { key: 'maxQueuedBytes', flag: '--max-queued-bytes', kind: 'int', min: 0, max: 2 ** 40, default: () => 64 * 1024 * 1024, help: 'payload bytes queued per session (messages beyond the in-flight window)' },
  { key: 'queuePolicy', flag: '--queue-policy', kind: 'enum', choices: ['drop-oldest', 'drop-new', 'disconnect'], default: () => 'drop-oldest', help: 'what happens when a session queue is full (every drop is counted)' },
  { key: 'outputHighWater', flag: '--output-high-water', kind: 'int', min: 1024, max: 2 ** 31, default: () => 1024 * 1024, help: 'bytes buffered for a socket before it counts as a slow consumer' },
  { key: 'sysInterval', flag: '--sys-interval', kind: 'int', min: 0, max: 86400, default: () => 10, help: 'seconds between $SYS/broker updates (0 = off)' },
  { key: 'youngGenerationMb', flag: '--young-generation-mb', kind: 'int', min: 0, max: 1024, default: () => 2, help: 'V8 young generation of each worker and the coordinator, MiB (0 = V8 default, which grows to tens of MiB per thread and shows up as ~3 KiB of RSS per idle connection; 32 speeds up saturated QoS 1 by cutting garbage collection, see bench/README.md)' },
  { key: 'dataDir', flag: '--data-dir', kind: 'string', default: () => './data', help: 'RocksDB store for persistent sessions, their messages and retained messages' },
  { key: 'durability', flag: '--durability', kind: 'enum', choices: ['none', 'process', 'fsync'], default: () => 'process', help: 'none: memory only; process: acknowledged QoS>=1 messages for persistent sessions are in the WAL before the ack (survive kill -9); fsync: the WAL is synced first (survive power loss)' },
  { key: 'commitLingerMs', flag: '--commit-linger-ms', kind: 'int', min: 0, max: 1000, default: () => 20, help: 'write-behind window, ms: a QoS 1 message to online persistent sessions of the publisher\'s worker is routed at once and its store write waits up to this long; if every delivery is acknowledged meanwhile it is never written and the PUBACK goes at once, else the PUBACK follows the write (0: write at once)' },
  { key: 'storeMemtableMb', flag: '--store-memtable-mb', kind: 'int', min: 1, max: 1024, default: () => 16, help: 'RocksDB write buffer, MiB: the WAL grows to about this before a flush to a table file lets it be deleted' },
  { key: 'storeOpenTimeoutMs', flag: '--store-open-timeout-ms', kind: 'int', min: 0, max: 86_400_000, default: () => 60_000, help: 'how long the data directory check and the store open (which reads an existing store through once to verify it) may take before startup fails with a clear error and exit code 1; a hung or pseudo filesystem otherwise stalls startup forever (0 = wait forever)' },
  { key: 'passwordFile', flag: '--password-file', kind: 'string', default: () => undefined, help: 'Mosquitto password file (user:$7$... lines as mosquitto_passwd or `fleetmq passwd` write them); clients must give a user and password in it. SIGHUP reloads it' },
  { key: 'allowAnonymous', flag: '--allow-anonymous', kind: 'enum', choices: ['true', 'false'], default: () => undefined, help: 'let clients connect without a username (default: true without --password-file, --auth-http-url or a --jwt-*-file, where the broker stays on loopback unless this is given explicitly; false with one)' },
  { key: 'authPoolThreads', flag: '--auth-pool-threads', kind: 'int', min: 1, max: 64, default: () => Math.max(1, Math.floor(cores() / 4)), help: 'threads hashing passwords (one pool per process; serving threads never hash)' },
  { key: 'authQueueMax', flag: '--auth-queue-max', kind: 'int', min: 0, max: 1_000_000, default: () => 1024, help: 'password checks that may wait for a hashing thread; beyond it a CONNECT is answered "server busy" (v5 0x89, v3 3) at once and counted' },
  { key: 'authCacheEntries', flag: '--auth-cache-entries', kind: 'int', min: 0, max: 10_000_000, default: () => 10000, help: 'verified user + password pairs remembered by each worker and by the main thread (keyed by an HMAC, never the password) so reconnects skip the hash; cleared on reload (0 = off)' },
  { key: 'aclFile', flag: '--acl-file', kind: 'string', default: () => undefined, help: 'Mosquitto acl_file (topic / user / pattern lines): who may publish to and receive which topics; a SUBSCRIBE to a filter the client may read nothing of is refused (0x80 / 0x87). SIGHUP reloads it' },
  { key: 'aclCacheEntries', flag: '--acl-cache-entries', kind: 'int', min: 1, max: 1_000_000, default: () => 256, help: 'ACL decisions remembered per connection (topic -> allowed); when full, new ones are not kept (counted) and after 4x as many the cache starts afresh; cleared on reload' },
  { key: 'authHttpUrl', flag: '--auth-http-url', kind: 'string', default: () => undefined, help: 'HTTP auth callout (EMQX-compatible): each CONNECT POSTs {clientid, username, password, peerhost, peerport, listener, protocol, proto_ver} as JSON to this http(s) URL, which answers 200 {"result": "allow"|"deny"|"ignore", "is_superuser": bool, "acl": [...]} (204 = allow, 4xx = ignore, 5xx / timeout / unreachable = down, see --auth-http-when-down)' },
  { key: 'authHttpTimeoutMs', flag: '--auth-http-timeout-ms', kind: 'int', min: 1, max: 600_000, default: () => 5000, help: 'a callout not answered within this counts as the auth server being down' },
  { key: 'authHttpCacheTtlMs', flag: '--auth-http-cache-ttl-ms', kind: 'int', min: 0, max: 86_400_000, default: () => 60_000, help: 'how long an allow / ignore answer is reused for the same client id, username, password, address and listener (keyed by an HMAC, never the password; 0 = no cache); SIGHUP empties the cache' },
  { key: 'authHttpDenyCacheTtlMs', flag: '--auth-http-deny-cache-ttl-ms', kind: 'int', min: 0, max: 86_400_000, default: () => 5000, help: 'how long a deny answer is reused (shorter, so a fixed account works again soon; 0 = denials are not cached)' },
  { key: 'authHttpCacheEntries', flag: '--auth-http-cache-entries', kind: 'int', min: 1, max: 10_000_000, default: () => 10000, help: 'callout answers cached at most; when full the oldest goes (counted)' },
  { key: 'authHttpMaxInflight', flag: '--auth-http-max-inflight', kind: 'int', min: 1, max: 100_000, default: () => 256, help: 'callout requests in flight at once (identical ones share one); beyond it a CONNECT is answered "server busy" (v5 0x89, v3 3) and counted' },
  { key: 'authHttpWhenDown', flag: '--auth-http-when-down', kind: 'enum', choices: ['deny', 'ignore'], default: () => 'deny', help: 'when the auth server is down (timeout, refused, 5xx, bad answer): deny = CONNACK "server unavailable" (v5 0x88, v3 3), fail closed; ignore = ask the next method of --auth-chain' },
  { key: 'jwtSecretFile', flag: '--jwt-secret-file', kind: 'string', default: () => undefined, help: 'JWT authentication (HS256/384/512) with the secret in this file (its bytes, a trailing newline dropped). The token is the CONNECT password (see --jwt-from). SIGHUP rereads it' },
  { key: 'jwtPublicKeyFile', flag: '--jwt-public-key-file', kind: 'string', default: () => undefined, help: 'JWT authentication (RS256/384/512, PS256, ES256/384) with this PEM public key (or certificate). SIGHUP rereads it' },
  { key: 'jwtJwksFile', flag: '--jwt-jwks-file', kind: 'string', default: () => undefined, help: 'JWT authentication with the keys of this JWKS file ({"keys": [...]}, chosen by the token\'s kid / alg). SIGHUP rereads it' },
  { key: 'jwtAlgorithms', flag: '--jwt-algorithms', kind: 'string', default: () => undefined, help: 'comma-separated JWT algorithms accepted (default: HS256 with --jwt-secret-file, RS256,ES256 with a public key or JWKS); "none" is never accepted' },
  { key: 'jwtFrom', flag: '--jwt-from', kind: 'enum', choices: ['password', 'username'], default: () => 'password', help: 'which CONNECT field carries the JWT' },
  { key: 'jwtUsernameClaim', flag: '--jwt-username-claim', kind: 'string', default: () => undefined, help: 'a claim that must equal the CONNECT username (e.g. sub); unset = not checked' },
  { key: 'jwtClientidClaim', flag: '--jwt-clientid-claim', kind: 'string', default: () => undefined, help: 'a claim that must equal the client id (e.g. clientid); unset = not checked' },
  { key: 'jwtIssuer', flag: '--jwt-issuer', kind: 'string', default: () => undefined, help: 'the iss claim a JWT must carry; unset = not checked' },
  { key: 'jwtAudience', flag: '--jwt-audience', kind: 'string', default: () => undefined, help: 'an aud value a JWT must carry; unset = not checked' },
  { key: 'jwtAclClaim', flag: '--jwt-acl-claim', kind: 'string', default: () => 'acl', help: 'the claim holding the client\'s ACL: a list of {"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all", "topic": ...} rules (first match decides, no match falls through to --acl-file) or {"pub": [...], "sub": [...], "all": [...]} allow-lists (no match is denied)' },
  { key: 'authChain', flag: '--auth-chain', kind: 'string', default: () => undefined, help: 'order of the authentication methods, comma-separated, from file (--password-file), http (--auth-http-url), jwt (--jwt-*-file); each allows, denies or passes to the next; default: file,http,jwt, those configured' },
  { key: 'etcd', flag: '--etcd', kind: 'string', default: () => undefined, help: 'etcd client URLs (http://host:port[,http://host:port...]): run as a member of a cluster (needs --node-id); without it the node runs alone and loads no etcd client' },
  { key: 'nodeId', flag: '--node-id', kind: 'string', default: () => undefined, help: 'this node\'s id in the cluster (letters, digits, \'.\', \'_\', \'-\'); a node id already registered is refused at startup' },
  { key: 'clusterName', flag: '--cluster-name', kind: 'string', default: () => 'fleetmq', help: 'the cluster to join: members register under /fleetmq/<name>/members/ in etcd' },
  { key: 'clusterPort', flag: '--cluster-port', kind: 'int', min: 0, max: 65535, default: () => 7883, help: 'port of the node-to-node gRPC server (route sync, forwarding), on --host; 0 = any free port; the member record in etcd announces the bound port' },
  { key: 'clusterAdvertisePort', flag: '--cluster-advertise-port', kind: 'int', min: 1, max: 65535, default: () => undefined, help: 'port peers use to reach this node\'s cluster port, when it differs from --cluster-port (a port mapping or proxy in between); default: the bound --cluster-port' },
  { key: 'clusterForwardQueueBytes', flag: '--cluster-forward-queue-bytes', kind: 'int', min: 65536, max: 4 * 1024 * 1024 * 1024, default: () => 64 * 1024 * 1024, help: 'bytes of messages queued for one peer node and not yet acknowledged by it; beyond it QoS 0 is dropped (counted) and QoS >= 1 waits, up to twice the bound, then its publisher is disconnected without an acknowledgement' },
  { key: 'clusterHandoverLingerMs', flag: '--cluster-handover-linger-ms', kind: 'int', min: 0, max: 60_000, default: () => 200, help: 'when a session moves to another node: how long the old node still takes messages for it (they go over with its queue) after the new node\'s routes reached it, for peers whose routes or frames are slower' },
  { key: 'advertise', flag: '--advertise', kind: 'string', default: () => undefined, help: 'address peers use to reach this node (default: --host when it is a specific address, else this machine\'s hostname)' },
  { key: 'leaseTtl', flag: '--lease-ttl', kind: 'int', min: 2, max: 3600, default: () => 10, help: 'etcd lease TTL, seconds: a node that cannot renew it for TTL - max(0.5 s, TTL/5) fences itself (refuses CONNECT, disconnects its clients) and rejoins; the others see it gone after TTL' },
  { key: 'clusterJoinTimeoutMs', flag: '--cluster-join-timeout-ms', kind: 'int', min: 1, max: 86_400_000, default: () => 15_000, help: 'how long startup waits for an unreachable etcd (a line every 3 s) before it fails with exit code 1' },
  { key: 'retainedTombstoneTtl', flag: '--retained-tombstone-ttl', kind: 'int', min: 1, max: 365 * 86400, default: () => 6 * 3600, help: 'cluster: seconds a cleared retained message is remembered (a tombstone), so a node that was down for less than this cannot bring it back when it returns with its data dir; a node down for longer can (default 6 hours)' },
  { key: 'retainedTombstonesMax', flag: '--retained-tombstones-max', kind: 'int', min: 1, max: 100_000_000, default: () => 1_000_000, help: 'cluster: tombstones kept at most (~150 bytes each); past it the oldest is dropped before its TTL (counted in fleetmq_cluster_retained_tombstones_dropped_total)' },
  { key: 'retainedSyncTimeoutMs', flag: '--retained-sync-timeout-ms', kind: 'int', min: 1, max: 86_400_000, default: () => 30_000, help: 'cluster: how long a node joining or rejoining waits for every peer\'s retained messages before it serves anyway (logged with the peers it did not hear from); /readyz says 503 until then' },
  { key: 'logLevel', flag: '--log-level', kind: 'enum', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: () => 'info', help: 'least severe log records written (info: startup, connects and disconnects with their reason; warn: auth failures and drops, rate-limited; silent: none)' },
  { key: 'logFormat', flag: '--log-format', kind: 'enum', choices: ['json', 'pretty'], default: () => 'json', help: 'json: one JSON object per line on stdout (for log shippers); pretty: one compact human line per record' },
  { key: 'metrics', flag: '--metrics', kind: 'enum', choices: ['true', 'false'], default: () => 'true', help: 'false: no /metrics route and no latency timers (the bench baseline); counters stay, $SYS reads them' },
  { key: 'httpPort', flag: '--http-port', kind: 'int', min: -1, max: 65535, default: () => 9883, help: 'HTTP port for GET /metrics (Prometheus text format), /livez and /readyz (0 = any free port, printed at startup; -1 = no HTTP listener)' },
  { key: 'httpHost', flag: '--http-host', kind: 'string', default: () => '127.0.0.1', help: 'address of the HTTP listener; loopback by default, as its endpoints need no authentication' },
  { key: 'tlsPort', flag: '--tls-port', kind: 'int', min: 0, max: 65535, default: () => undefined, help: 'MQTT over TLS on this port too (0 = any free port, printed), on --host; needs --cert and --key' },
  { key: 'wsPort', flag: '--ws-port', kind: 'int', min: 0, max: 65535, default: () => undefined, help: 'MQTT over WebSocket on this port too (0 = any free port, printed), on --host, at --ws-path' },
  { key: 'wssPort', flag: '--wss-port', kind: 'int', min: 0, max: 65535, default: () => undefined, help: 'MQTT over secure WebSocket (TLS) on this port too (0 = any free port, printed), on --host, at --ws-path; needs --cert and --key' },
  { key: 'wsPath', flag: '--ws-path', kind: 'string', default: () => '/mqtt', help: 'HTTP path of the WebSocket listeners; another path is answered 404' },
  { key: 'cert', flag: '--cert', kind: 'string', default: () => undefined, help: 'PEM server certificate (chain) for --tls-port and --wss-port; SIGHUP reloads it for new connections' },
  { key: 'key', flag: '--key', kind: 'string', default: () => undefined, help: 'PEM private key of --cert; SIGHUP reloads it' },
  { key: 'ca', flag: '--ca', kind: 'string', default: () => undefined, help: 'PEM CA certificate(s) that client certificates must chain to (with --require-certificate true); SIGHUP reloads it' },
  { key: 'requireCertificate', flag: '--require-certificate', kind: 'enum', choices: ['true', 'false'], default: () => 'false', help: 'TLS clients must present a certificate signed by --ca, else the handshake fails (as Mosquitto\'s require_certificate)' },
  { key: 'useIdentityAsUsername', flag: '--use-identity-as-username', kind: 'enum', choices: ['true', 'false'], default: () => 'false', help: 'the client certificate\'s CN is the username and no password is asked (as Mosquitto\'s use_identity_as_username); a certificate without a CN is refused; needs --require-certificate true' },
  { key: 'tlsHandshakeTimeoutMs', flag: '--tls-handshake-timeout-ms', kind: 'int', min: 100, max: 600_000, default: () => 10_000, help: 'a TLS handshake or WebSocket upgrade not finished within this is closed and counted ($SYS/broker/clients/refused/handshake-timeout)' },
  // Admin API, status page and banned list.
  { key: 'apiKeysFile', flag: '--api-keys-file', kind: 'string', default: () => undefined, help: 'API keys for /api/v1 on the HTTP listener, one NAME:ROLE:$7$... line each (role read or admin), as `fleetmq apikey FILE NAME ROLE` writes them; without it /api/v1 answers 401 to everyone. SIGHUP reloads it' },
  { key: 'bannedFile', flag: '--banned-file', kind: 'string', default: () => undefined, help: 'banned clients, one "KIND VALUE" line each, KIND clientid, clientid-prefix, username or address (an IP or CIDR block); a banned CONNECT gets CONNACK 0x8A (v5) / 5 (v3), a connected client it names is disconnected (v5 0x98). SIGHUP reloads it' },
  { key: 'banned', flag: '--banned', kind: 'banned', default: () => undefined, help: 'banned clients as JSON (usually the "banned" key of --config): {"clientIds": [...], "clientIdPrefixes": [...], "usernames": [...], "addresses": ["10.0.0.7", "192.168.0.0/16"]}; added to --banned-file and to what the admin API adds' },
  { key: 'listeners', flag: '--listeners', kind: 'listeners', default: () => [], help: 'more listeners, a JSON array (usually the "listeners" key of --config): [{"transport": "tcp|tls|ws|wss", "port": N, "host": ..., "path": ..., "cert": ..., "key": ..., "ca": ..., "requireCertificate": true|false, "useIdentityAsUsername": true|false, "crl": ..., "proxyProtocol": true|false, "proxyTrusted": ["10.0.0.0/8"], "maxConnections": N, "maxConnectionRate": N}]; unset fields take the flags\' values' },
  { key: 'maxConnections', flag: '--max-connections', kind: 'int', min: 0, max: 10_000_000, default: () => 0, help: 'connections open at once over all listeners (TLS / WebSocket ones from their accept on); one more is closed at accept and counted (0 = no limit; per listener: "maxConnections" in a listeners entry); SIGHUP reloads it (with a listener\'s own) from the flags and --config' },
  { key: 'maxConnectionRate', flag: '--max-connection-rate', kind: 'int', min: 0, max: 1_000_000, default: () => 0, help: 'connections each listener hands to the workers per second (burst: one second\'s worth); faster arrivals wait, none is dropped, and each wait is counted (0 = no limit; per listener: "maxConnectionRate"); SIGHUP reloads it (with a listener\'s own) from the flags and --config' },
  { key: 'connectTimeoutMs', flag: '--connect-timeout-ms', kind: 'int', min: 100, max: 3_600_000, default: () => 10_000, help: 'a connection that has not sent CONNECT within this (after its TLS / WebSocket handshake) is closed; SIGHUP reloads it' },
  { key: 'maxClientMsgRate', flag: '--max-client-msg-rate', kind: 'int', min: 0, max: 100_000_000, default: () => 0, help: 'PUBLISH packets per second one connection may send (burst: one second\'s worth); beyond it the broker stops reading its socket until the rate allows (TCP backpressure, nothing dropped) and counts the pause (0 = no limit); SIGHUP reloads it for connections made after' },
  { key: 'maxClientByteRate', flag: '--max-client-byte-rate', kind: 'int', min: 0, max: 2 ** 40, default: () => 0, help: 'bytes per second one connection may send, read the same way as --max-client-msg-rate (0 = no limit); SIGHUP reloads it for connections made after' },
  { key: 'maxSubscriptions', flag: '--max-subscriptions', kind: 'int', min: 0, max: 10_000_000, default: () => 0, help: 'subscriptions one session may hold; a SUBSCRIBE filter beyond it is refused (v5 0x97 Quota exceeded, v3 0x80) and counted (0 = no limit); SIGHUP reloads it' },
  { key: 'maxPayloadSize', flag: '--max-payload-size', kind: 'int', min: 0, max: 268435455, default: () => 0, help: 'largest PUBLISH payload (bytes) accepted; a larger one is dropped and counted, QoS 1/2 acknowledged with v5 0x97 Quota exceeded (v3: acknowledged as usual) (0 = only --max-packet-size bounds it); SIGHUP reloads it' },
  { key: 'proxyProtocol', flag: '--proxy-protocol', kind: 'enum', choices: ['true', 'false'], default: () => 'false', help: 'connections to --port start with a PROXY protocol v1 or v2 header (HAProxy\'s, as load balancers send it), accepted only from --proxy-trusted; the address it names is the client\'s everywhere (logs, limits). A connection from elsewhere, or without a valid header within --tls-handshake-timeout-ms, is closed and counted (per listener: "proxyProtocol"); restart to change (SIGHUP does not reload it)' },
  { key: 'proxyTrusted', flag: '--proxy-trusted', kind: 'string', default: () => undefined, help: 'addresses allowed to send a PROXY header, comma-separated IPs or CIDRs (e.g. 10.0.0.0/8,127.0.0.1); needed with PROXY protocol on any listener (per listener: "proxyTrusted": [...]); restart to change (SIGHUP does not reload it)' },
  { key: 'crl', flag: '--crl', kind: 'string', default: () => undefined, help: 'PEM certificate revocation list(s) of --ca: a revoked client certificate fails the TLS handshake (counted as clients/refused/tls). SIGHUP reloads it with the certificates' },
  { key: 'config', flag: '--config', kind: 'string', default: () => undefined, help: 'JSON file whose keys are the camelCase flag names (e.g. "maxKeepalive"); flags win' },
];

const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
const byKey = new Map(SETTINGS.map((s) => [s.key as string, s]));

function coerce(s: Setting, raw: unknown, where: string): string | number | ListenerEntry[] | BannedConfig {
  if (s.kind === 'listeners') return listenerEntries(raw, where);
  if (s.kind === 'banned') return bannedConfig(raw, where);
  if (s.kind === 'int') {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) throw new ConfigError(`${where}: expected an integer, got ${JSON.stringify(raw)}`);
    if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
      throw new ConfigError(`${where}: ${n} is out of range ${s.min}..${s.max}`);
    }
    return n;
  }
  if (typeof raw === 'boolean' && s.kind === 'enum' && s.choices!.includes(String(raw))) return String(raw); // "allowAnonymous": true
  if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${where}: expected a non-empty string, got ${JSON.stringify(raw)}`);
  if (s.kind === 'enum' && !s.choices!.includes(raw)) {
    throw new ConfigError(`${where}: expected one of ${s.choices!.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** A `banned` value (JSON text from the flag, or the config file's object), checked entry by entry. */
function bannedConfig(raw: unknown, where: string): BannedConfig {
  let v = raw;
  if (typeof raw === 'string') {
    try { v = JSON.parse(raw); } catch (err) { throw new ConfigError(`${where}: invalid JSON: ${(err as Error).message}`); }
  }
  try { parseBannedConfig(v, where); } catch (err) {
    if (err instanceof BannedError) throw new ConfigError(err.message);
    throw err;
  }
  return v as BannedConfig;
}

const TRANSPORTS = ['tcp', 'tls', 'ws', 'wss'];
const ENTRY_KEYS = new Set(['transport', 'port', 'host', 'path', 'cert', 'key', 'ca', 'requireCertificate', 'useIdentityAsUsername',
  'proxyProtocol', 'proxyTrusted', 'maxConnections', 'maxConnectionRate', 'crl']);

/** A `listeners` value (JSON text from the flag, or the config file's array), checked field by field. */
function listenerEntries(raw: unknown, where: string): ListenerEntry[] {
  let v = raw;
  if (typeof raw === 'string') {
    try { v = JSON.parse(raw); } catch (err) { throw new ConfigError(`${where}: invalid JSON: ${(err as Error).message}`); }
  }
  if (!Array.isArray(v)) throw new ConfigError(`${where}: expected an array of listeners`);
  return v.map((e: unknown, i) => {
    const at = `${where}[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new ConfigError(`${at}: expected an object`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!ENTRY_KEYS.has(k)) throw new ConfigError(`${at}: unknown key ${JSON.stringify(k)}`);
    if (typeof o.transport !== 'string' || !TRANSPORTS.includes(o.transport)) throw new ConfigError(`${at}.transport: expected one of ${TRANSPORTS.join(', ')}, got ${JSON.stringify(o.transport)}`);
    if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new ConfigError(`${at}.port: expected an integer 0..65535, got ${JSON.stringify(o.port)}`);
    for (const k of ['host', 'path', 'cert', 'key', 'ca', 'crl']) {
      if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw new ConfigError(`${at}.${k}: expected a non-empty string, got ${JSON.stringify(o[k])}`);
    }
    for (const k of ['requireCertificate', 'useIdentityAsUsername', 'proxyProtocol']) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ConfigError(`${at}.${k}: expected true or false, got ${JSON.stringify(o[k])}`);
    }
    for (const k of ['maxConnections', 'maxConnectionRate']) {
      if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isInteger(o[k]) || (o[k] as number) < 0)) throw new ConfigError(`${at}.${k}: expected an integer >= 0, got ${JSON.stringify(o[k])}`);
    }
    if (o.proxyTrusted !== undefined) {
      if (!Array.isArray(o.proxyTrusted) || !o.proxyTrusted.every((x) => typeof x === 'string')) throw new ConfigError(`${at}.proxyTrusted: expected an array of IPs / CIDRs`);
      const bad = badCidr(o.proxyTrusted as string[]);
      if (bad) throw new ConfigError(`${at}.proxyTrusted: ${bad}`);
    }
    return o as unknown as ListenerEntry;
  });
}

export interface ParsedArgs { help: boolean; version: boolean; values: Map<Setting, string | number | ListenerEntry[] | BannedConfig> }

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const values = new Map<Setting, string | number | ListenerEntry[] | BannedConfig>();
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (arg === '--version' || arg === '-v') { version = true; continue; }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const s = byFlag.get(name);
    if (!s) throw new ConfigError(`unknown option ${JSON.stringify(name)} (see --help)`);
    let raw: string | undefined = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new ConfigError(`${name} needs a value`);
    values.set(s, coerce(s, raw, name));
  }
  return { help, version, values };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--config ${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError(`--config ${file}: expected a JSON object`);
  return obj as Record<string, unknown>;
}

/** Merges defaults < config file < flags. Throws ConfigError with one line naming the problem. */
export function resolveConfig(parsed: ParsedArgs): BrokerConfig {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) out[s.key] = s.default();
  const file = parsed.values.get(byFlag.get('--config')!) as string | undefined;
  if (file) {
    for (const [k, v] of Object.entries(readConfigFile(file))) {
      const s = byKey.get(k);
      if (!s || s.key === 'config') throw new ConfigError(`--config ${file}: unknown key ${JSON.stringify(k)}`);
      out[k] = coerce(s, v, `--config ${file}: ${k}`);
    }
  }
  for (const [s, v] of parsed.values) out[s.key] = v;
  return checked(out);
}

/** The checks that span settings, on a complete set of them (flags, file or embedding options). */
function checked(out: Record<string, unknown>): BrokerConfig {
  const config = out as unknown as BrokerConfig;
  checkExposure(config);
  checkCluster(config);
  checkTls(config);
  checkProxy(config);
  checkAuthMethods(config);
  return config;
}

/** Cluster flags are checked here (exit 2), with the rules of src/cluster/names.ts, which loads no etcd client. */
function checkCluster(config: BrokerConfig): void {
  if (config.etcd === undefined) return;
  if (config.nodeId === undefined) throw new ConfigError('--etcd needs --node-id: every member of a cluster needs an id of its own');
  const bad = nameProblem('--node-id', config.nodeId) ?? nameProblem('--cluster-name', config.clusterName);
  if (bad) throw new ConfigError(bad);
  try { parseEndpoints(config.etcd); } catch (err) {
    if (err instanceof EtcdConfigError) throw new ConfigError(`--etcd: ${err.message}`);
    throw err;
  }
}

/** The address peers use: --advertise, else --host when it names one address, else the hostname. */
export function advertisedAddress(config: BrokerConfig): string {
  if (config.advertise) return config.advertise;
  const h = config.host.replace(/^\[|\]$/g, '');
  return h === '0.0.0.0' || h === '::' || h === '' ? os.hostname() : h;
}

/**
 * The settings of an embedding program (src/index.ts): the config file's keys with the same
 * checks, defaults for what is not given (an undefined value counts as not given). Throws
 * ConfigError with one line naming the problem.
 */
export function resolveOptions(options: unknown): BrokerConfig {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`startBroker: options must be an object, got ${Array.isArray(options) ? 'an array' : JSON.stringify(options)}`);
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) out[s.key] = s.default();
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const s = byKey.get(k);
    if (!s || s.key === 'config') throw new ConfigError(`startBroker: unknown option ${JSON.stringify(k)} (the options are the config file's keys: ${SETTINGS.filter((x) => x.key !== 'config').map((x) => x.key).join(', ')})`);
    out[k] = coerce(s, v, `startBroker option ${k}`);
  }
  return checked(out);
}

/** TLS settings that cannot work together fail at start, one line naming what is missing. */
function checkTls(config: BrokerConfig): void {
  const secure = config.tlsPort !== undefined || config.wssPort !== undefined;
  if (secure && (!config.cert || !config.key)) throw new ConfigError(`${config.tlsPort !== undefined ? '--tls-port' : '--wss-port'} needs --cert and --key`);
  if (config.requireCertificate === 'true' && !config.ca) throw new ConfigError('--require-certificate true needs --ca (the CA client certificates must chain to)');
  if (config.useIdentityAsUsername === 'true' && config.requireCertificate !== 'true') throw new ConfigError('--use-identity-as-username true needs --require-certificate true');
  if (!config.wsPath.startsWith('/')) throw new ConfigError(`--ws-path must start with "/", got ${JSON.stringify(config.wsPath)}`);
  config.listeners.forEach((l, i) => {
    const at = `listeners[${i}]`;
    if (l.path !== undefined && !l.path.startsWith('/')) throw new ConfigError(`${at}.path must start with "/", got ${JSON.stringify(l.path)}`);
    if (l.transport !== 'tls' && l.transport !== 'wss') return;
    if (!(l.cert ?? config.cert) || !(l.key ?? config.key)) throw new ConfigError(`${at}: a ${l.transport} listener needs "cert" and "key" (or --cert and --key)`);
    const require = l.requireCertificate ?? config.requireCertificate === 'true';
    if (require && !(l.ca ?? config.ca)) throw new ConfigError(`${at}: "requireCertificate" needs "ca" (or --ca)`);
    if ((l.useIdentityAsUsername ?? config.useIdentityAsUsername === 'true') && !require) throw new ConfigError(`${at}: "useIdentityAsUsername" needs "requireCertificate": true`);
  });
  const ports = [config.port, config.tlsPort, config.wsPort, config.wssPort].filter((p): p is number => p !== undefined && p !== 0);
  if (new Set(ports).size !== ports.length) throw new ConfigError('--port, --tls-port, --ws-port and --wss-port must differ');
  const bound = [...ports.map((p) => `${config.host}:${p}`), ...config.listeners.filter((l) => l.port !== 0).map((l) => `${l.host ?? config.host}:${l.port}`)];
  if (new Set(bound).size !== bound.length) throw new ConfigError('two listeners on the same address and port');
}

/** PROXY protocol without a trusted address would trust no one: every connection refused. */
function checkProxy(config: BrokerConfig): void {
  if (config.proxyTrusted !== undefined) {
    const bad = badCidr(config.proxyTrusted.split(','));
    if (bad) throw new ConfigError(`--proxy-trusted: ${bad}`);
  }
  if (config.proxyProtocol === 'true' && !config.proxyTrusted) throw new ConfigError('--proxy-protocol true needs --proxy-trusted (the load balancers allowed to send the header)');
  config.listeners.forEach((l, i) => {
    if (l.proxyProtocol && !l.proxyTrusted && !config.proxyTrusted) throw new ConfigError(`listeners[${i}]: "proxyProtocol" needs "proxyTrusted" (or --proxy-trusted)`);
  });
  if (config.crl && !config.ca) throw new ConfigError('--crl needs --ca (the CA whose revocations it lists)');
}

/** Whether clients without a username may connect (Mosquitto 2's allow_anonymous default). */
export function anonymousAllowed(config: BrokerConfig): boolean {
  return config.allowAnonymous ? config.allowAnonymous === 'true' : authMethods(config).length === 0;
}

export type AuthMethod = 'file' | 'http' | 'jwt';
const AUTH_METHODS: readonly AuthMethod[] = ['file', 'http', 'jwt'];

function methodConfigured(config: BrokerConfig, m: AuthMethod): boolean {
  if (m === 'file') return !!config.passwordFile;
  if (m === 'http') return !!config.authHttpUrl;
  return !!(config.jwtSecretFile || config.jwtPublicKeyFile || config.jwtJwksFile);
}

/** The authentication methods in the order they are asked (--auth-chain); empty: none configured. */
export function authMethods(config: BrokerConfig): AuthMethod[] {
  if (config.authChain === undefined) return AUTH_METHODS.filter((m) => methodConfigured(config, m));
  return config.authChain.split(',').map((s) => s.trim()) as AuthMethod[];
}

/** The callout or JWT is configured: CONNECTs go through the method chain (src/auth/chain.ts). */
export function chainAuth(config: BrokerConfig): boolean {
  return methodConfigured(config, 'http') || methodConfigured(config, 'jwt');
}

/** --auth-chain names configured methods, once each; JWT has one key source; the URL is http(s). */
function checkAuthMethods(config: BrokerConfig): void {
  if (config.authChain !== undefined) {
    const names = config.authChain.split(',').map((s) => s.trim());
    for (const n of names) {
      if (!AUTH_METHODS.includes(n as AuthMethod)) throw new ConfigError(`--auth-chain: unknown method ${JSON.stringify(n)} (expected file, http, jwt)`);
      if (!methodConfigured(config, n as AuthMethod)) throw new ConfigError(`--auth-chain names ${n}, which is not configured (${n === 'file' ? '--password-file' : n === 'http' ? '--auth-http-url' : '--jwt-secret-file, --jwt-public-key-file or --jwt-jwks-file'})`);
    }
    if (new Set(names).size !== names.length) throw new ConfigError('--auth-chain names a method twice');
    for (const m of AUTH_METHODS) if (methodConfigured(config, m) && !names.includes(m)) throw new ConfigError(`--auth-chain leaves out ${m}, which is configured`);
  }
  const keys = [config.jwtSecretFile, config.jwtPublicKeyFile, config.jwtJwksFile].filter((k) => k !== undefined);
  if (keys.length > 1) throw new ConfigError('give one of --jwt-secret-file, --jwt-public-key-file, --jwt-jwks-file');
  if (config.authHttpUrl !== undefined) {
    let u: URL;
    try { u = new URL(config.authHttpUrl); } catch { throw new ConfigError(`--auth-http-url: not a URL: ${JSON.stringify(config.authHttpUrl)}`); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`--auth-http-url must be http:// or https://, got ${JSON.stringify(u.protocol)}`);
  }
}

/** A literal loopback address (127.0.0.0/8, ::1, localhost): the only hosts served without authentication by default. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The secure default (as Mosquitto 2): without authentication the broker serves loopback only.
 * Any other address needs a password file, or anonymous access asked for in so many words.
 */
function checkExposure(config: BrokerConfig): void {
  if (!anonymousAllowed(config) || config.allowAnonymous === 'true') return;
  for (const [host, what] of [[config.host, `--host ${config.host}`], ...config.listeners.map((l, i) => [l.host ?? config.host, `listeners[${i}].host ${l.host}`])]) {
    if (isLoopbackHost(host)) continue;
    throw new ConfigError(`${what} without authentication would let anyone on the network connect: ` +
      'give --password-file FILE (or --auth-http-url, --jwt-*-file), or --allow-anonymous true to accept anonymous clients there');
  }
}

export function helpText(): string {
  const lines = ['Usage: fleetmq [options]', '       fleetmq passwd FILE USER      add or update a user in a password file (fleetmq passwd --help)', '       fleetmq apikey FILE NAME ROLE add or replace an admin API key (role read or admin); prints its secret once', '', 'A clustered MQTT 3.1.1 / 5.0 broker for Node.js.', '', 'Options:'];
  for (const s of SETTINGS) {
    const d = s.default();
    const arg = s.kind === 'int' ? 'N' : s.kind === 'enum' ? s.choices!.join('|') : s.kind === 'listeners' || s.kind === 'banned' ? 'JSON' : 'VALUE';
    lines.push(`  ${`${s.flag} ${arg}`.padEnd(38)} ${s.help}${d !== undefined && !Array.isArray(d) ? ` [${d}]` : ''}  (config key "${s.key}")`);
  }
  lines.push(`  ${'--help'.padEnd(38)} print this help`, `  ${'--version'.padEnd(38)} print the version`);
  return lines.join('\n');
}
