// Starts a broker in this process: coordinator, workers, then the listeners (TCP, TLS, WS, WSS);
// the operations HTTP listener (src/http/) answers from before the store loads until the broker
// has stopped.
import type { BrokerConfig } from './config';
import { Supervisor } from './main/supervisor';
import { Listener } from './main/listener';
import { prepareDataDir, withOpenTimeout } from './store/data-dir';
import { AuthService } from './auth/auth-service';
import { HttpListener, type Route } from './http/server';
import { renderMetrics } from './http/metrics';
import { Readiness, livez, readyz } from './http/health';
import { startHeartbeat, mainSlot } from './shared/heartbeats';
import { listenerSpecs, RELOADED_LIMITS, type ReloadedLimits, type TransportKind } from './shared/listeners';
import { readTlsMaterial, certSerials } from './main/tls-material';
import { ApiKeys } from './http/api-keys';
import { apiHandler } from './http/api';
import { statusJson, STATUS_HTML, MemberFigures } from './http/status-page';
import { AdminBridge } from './main/admin-bridge';
import { BannedService } from './main/banned-service';
import { NodeAdmin, takeBannedFromPeers } from './main/node-admin';
import { log } from './log/logger';
import { COUNTER_NAMES, sumCounter } from './shared/counters';
import { configureLogging, setLogLevel } from './log/logger';
import type { LogLevel } from './config';
import { HistogramWriter } from './shared/histograms';

const VERSION: string = require('../../package.json').version;

export interface RunningBroker {
  port: number;
  host: string;
  /** The HTTP listener's address; null with --http-port -1. */
  http: { port: number; host: string } | null;
  /** Every listener's bound address, in listenerSpecs order (the first is `port`). */
  listeners: { transport: TransportKind; host: string; port: number; path: string }[];
  /**
   * SIGHUP: reloads the password file and the TLS certificates (for new connections; none is
   * dropped); the line to log says what happened.
   */
  reload(): Promise<{ ok: boolean; line: string }>;
  /**
   * SIGHUP: reloads the ACL file (null without --acl-file); `applied` resolves once every
   * worker decides with the new rules.
   */
  reloadAcl(): { ok: boolean; line: string; applied: Promise<number> } | null;
  /**
   * SIGHUP: reloads the API keys file and the banned file (null when neither is configured);
   * the line to log says what happened.
   */
  reloadOps(): { ok: boolean; line: string; applied: Promise<void> } | null;
  /**
   * SIGHUP: the limits of `next` (the configuration read again) for what happens from now on:
   * accepts, SUBSCRIBEs, PUBLISHes, CONNECT timeouts, and client rates of new connections.
   * null when no limit changed; refused when the listeners themselves changed (restart).
   */
  reloadLimits(next: BrokerConfig): { ok: boolean; line: string } | null;
  /** Rules in the ACL file now (null: none configured). */
  readonly aclRules: number | null;
  /** Users in the password file now (null: none configured). */
  readonly users: number | null;
  /** This node in its cluster now (null: a single node, no --etcd). */
  readonly cluster: { incarnation: string; members: string[]; fenced: boolean } | null;
  /** /readyz answers 503 from now on, then everything stops: clients, threads, store, ports, timers. */
  stop(): Promise<void>;
}

export interface StartOptions {
  testHooks?: boolean;
  /** Called as soon as the HTTP listener is bound, before the store loads (the CLI prints it). */
  onHttpListening?: (addr: { port: number; host: string }) => void;
  /** PUT /api/v1/log-level sets the logger's level through this (unset: the endpoint answers 501). */
  setLogLevel?: (level: string) => void;
}

/**
 * The `rocksdb` addon registers itself the old N-API way (once, when the library is first
 * loaded), so it loads in ONE thread per process: a second coordinator thread, even after the
 * first has ended, fails with "Module did not self-register" (checked on Node 20.20 with
 * rocksdb 5.2.1). So one broker per process may have a store; an embedding program that starts
 * another is told so here, before any thread exists.
 */
let storeThreadUsed = false;

export async function startBroker(config: BrokerConfig, opts: StartOptions = {}): Promise<RunningBroker> {
  if (config.durability !== 'none' && storeThreadUsed) {
    throw new Error(`durability '${config.durability}' needs the rocksdb addon, which loads in one thread per process only, ` +
      'and an earlier broker in this process has used it: start this one with durability \'none\', or in another process');
  }
  if (config.durability !== 'none') {
    // Up front, before any thread starts: an unusable --data-dir is one clear line.
    const checking = prepareDataDir(config.dataDir);
    await (config.storeOpenTimeoutMs > 0 ? withOpenTimeout(checking, config.dataDir, config.storeOpenTimeoutMs) : checking);
  }
  configureLogging(config);
  // A bad API keys or banned file, password file, ACL file or certificate stops the start here,
  // before any thread or port exists.
  const keys = new ApiKeys(config.apiKeysFile);
  const banned = new BannedService(config, (entries) => supervisor.setBanned(entries));
  const auth = new AuthService(config);
  const specs = listenerSpecs(config);
  const tls = readTlsMaterial(specs);
  const supervisor = new Supervisor(config, opts.testHooks ?? false, auth, tls);
  void supervisor.setBanned(banned.all());
  const bridge = new AdminBridge(supervisor);
  // The admin API's answers about this node; in a cluster also to the other members' APIs.
  const applyLogLevel = opts.setLogLevel ?? ((level: string) => setLogLevel(level as LogLevel));
  const admin = new NodeAdmin({
    bridge, banned, stats: () => statsOf(config, supervisor), nodeId: config.etcd !== undefined ? config.nodeId ?? null : null,
    setLogLevel: applyLogLevel, reload: () => reloadAll(),
  });
  if (admin.nodeId !== null) {
    supervisor.onAdminPeer = (m) => {
      admin.fromPeer(m.q).then((a) => supervisor.postToCoordinator({ t: 'admin-peer-reply', id: m.id, a }),
        (err: Error) => supervisor.postToCoordinator({ t: 'admin-peer-reply', id: m.id, error: err.message }));
    };
    // A rejoin after fencing: what changed meanwhile (the first join: below, before serving).
    supervisor.onClusterJoined = (rejoin) => {
      if (rejoin) void takeBannedFromPeers(admin, banned).then((line) => log.info(`fleetmq: ${line}`));
    };
  }
  if (config.metrics !== 'false') auth.timeChecks(new HistogramWriter(supervisor.histograms, mainSlot(config.workers)));
  const readiness = new Readiness();
  readiness.hold(() => (supervisor.retainedSyncing ? 'syncing: catching up with the cluster\'s retained messages' : null));
  const listeners: Listener[] = [];
  let http: HttpListener | null = null;
  let httpAddr: { port: number; host: string } | null = null;
  let stopMainBeat: (() => void) | null = null;
  // Whatever was started, stopped in reverse; used by stop() and by a start that fails.
  const release = async () => {
    await Promise.all(listeners.map((l) => l.close()));
    bridge.close();
    banned.close();
    await supervisor.stop();
    stopMainBeat?.();
    if (http) await http.close();
    await auth.close();
  };

  if (config.httpPort >= 0) {
    // Before the store loads, so /readyz says "starting" through a long restore.
    const counterView = new Float64Array(supervisor.counters);
    // In a cluster the status page shows each member's clients and message rates (asked of the members).
    const figures = admin.nodeId === null ? null : new MemberFigures(async () => {
      const e = await admin.everywhere({ op: 'stats' });
      const stats: Record<string, Record<string, unknown>> = {};
      for (const r of e.replies) if (r.a.op === 'stats') stats[r.node] = r.a.stats;
      return { members: e.cluster?.members ?? [], stats };
    });
    http = new HttpListener(httpRoutes(config, supervisor, readiness, () => listeners.reduce((n, l) => n + l.refused, 0), () => http!.dropped, figures), apiHandler({
      keys, bridge, banned, admin,
      stats: () => statsOf(config, supervisor),
      reload: () => reloadAll(),
      setLogLevel: applyLogLevel,
      // Worker 0's row: no worker writes these counters (src/shared/counters.ts).
      count: (c, n) => { counterView[c] += n; },
    }));
    try {
      const a = await http.listen(config.httpPort, config.httpHost);
      httpAddr = { port: a.port, host: a.address };
    } catch (err) {
      http = null;
      await release();
      throw err;
    }
    stopMainBeat = startHeartbeat(supervisor.heartbeats, mainSlot(config.workers));
    opts.onHttpListening?.(httpAddr);
  }
  if (config.durability !== 'none') storeThreadUsed = true;
  try {
    await supervisor.start();
  } catch (err) {
    bridge.close();
    banned.close();
    // The coordinator thread may be stuck in the store's open: its stop is not awaited (the CLI
    // exits at once, src/cli.ts "exitNow"), but an embedding process gets its threads back.
    void supervisor.stop().catch(() => undefined);
    stopMainBeat?.();
    if (http) await http.close();
    await auth.close();
    throw err;
  }
  // A member that joins takes the cluster's banned list before any client can connect.
  if (admin.nodeId !== null) log.info(`fleetmq: ${await takeBannedFromPeers(admin, banned)}`);
  const bound: RunningBroker['listeners'] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      const l = new Listener(supervisor, i, spec, config.maxConnections);
      listeners.push(l);
      const addr = await l.listen(spec.port, spec.host);
      bound.push({ transport: spec.transport, host: addr.address, port: addr.port, path: spec.path });
    }
  } catch (err) {
    await release();
    throw err;
  }
  readiness.serving();
  let stopped: Promise<void> | null = null;
  const reloadTls = async (): Promise<{ ok: boolean; line: string }> => {
    let material;
    try {
      material = readTlsMaterial(specs)!;
    } catch (err) {
      return { ok: false, line: `certificates not reloaded, the previous ones stay in force: ${(err as Error).message}` };
    }
    const errors = await supervisor.reloadTls(material);
    if (errors.length) return { ok: false, line: `certificates reloaded with errors (those workers keep the previous ones): ${errors.join('; ')}` };
    return { ok: true, line: `certificates reloaded for new connections (serial ${certSerials(material)})` };
  };
  // `applied`: every worker checks CONNECTs against the banned file just read.
  const reloadOps = (): { ok: boolean; line: string; applied: Promise<void> } | null => {
    const parts: { ok: boolean; line: string; applied?: Promise<void> }[] = [];
    if (config.apiKeysFile) parts.push(keys.reload());
    if (config.bannedFile) parts.push(banned.reload());
    if (parts.length === 0) return null;
    return { ok: parts.every((p) => p.ok), line: parts.map((p) => p.line).join('; '), applied: Promise.all(parts.map((p) => p.applied)).then(() => undefined) };
  };
  // POST /api/v1/reload: what SIGHUP does (src/cli.ts), each part's line in order.
  async function reloadAll(): Promise<{ ok: boolean; lines: string[] }> {
    const parts: { ok: boolean; line: string }[] = [];
    if (config.passwordFile) parts.push(auth.reload());
    const acl = auth.reloadAcl();
    if (acl) {
      parts.push(acl);
      if (acl.ok) parts.push({ ok: true, line: `acl generation ${await acl.applied} in force in every worker` });
    }
    if (tls) parts.push(await reloadTls());
    const ops = reloadOps();
    if (ops) {
      await ops.applied;
      parts.push(ops);
    }
    if (parts.length === 0) parts.push({ ok: true, line: 'nothing to reload: no password, ACL, certificate, API keys or banned file configured' });
    return { ok: parts.every((p) => p.ok), lines: parts.map((p) => p.line) };
  }
  return {
    port: bound[0].port,
    host: bound[0].host,
    listeners: bound,
    http: httpAddr,
    async reload() {
      const a = auth.reload();
      if (!tls) return a;
      const t = await reloadTls();
      return { ok: a.ok && t.ok, line: `${a.line}; ${t.line}` };
    },
    reloadAcl: () => auth.reloadAcl(),
    reloadOps,
    reloadLimits(next: BrokerConfig) {
      const nextSpecs = listenerSpecs(next);
      const changed = RELOADED_LIMITS.filter((k) => next[k] !== config[k]);
      const specChanged = nextSpecs.some((s, i) => specs[i] && (s.maxConnections !== specs[i].maxConnections || s.maxConnectionRate !== specs[i].maxConnectionRate));
      if (changed.length === 0 && !specChanged && nextSpecs.length === specs.length) return null;
      const same = nextSpecs.length === specs.length && nextSpecs.every((s, i) => s.transport === specs[i].transport && s.port === specs[i].port && s.host === specs[i].host);
      if (!same) return { ok: false, line: 'limits not reloaded: the listeners changed (restart to change listeners)' };
      const limits = Object.fromEntries(RELOADED_LIMITS.map((k) => [k, next[k]])) as unknown as ReloadedLimits;
      supervisor.reloadLimits(limits);
      listeners.forEach((l, i) => l.setLimits(next.maxConnections, nextSpecs[i]));
      nextSpecs.forEach((s, i) => { specs[i].maxConnections = s.maxConnections; specs[i].maxConnectionRate = s.maxConnectionRate; });
      return { ok: true, line: `limits reloaded: ${RELOADED_LIMITS.map((k) => `${k} ${next[k]}`).join(', ')}${specChanged ? ' (and the listeners\' own)' : ''}` };
    },
    get aclRules() { return auth.aclRuleCount; },
    get users() { return config.passwordFile ? auth.userCount : null; },
    get cluster() { return supervisor.cluster; },
    stop() {
      readiness.draining();
      stopped ??= release();
      return stopped;
    },
  };
}

function httpRoutes(config: BrokerConfig, supervisor: Supervisor, readiness: Readiness, refused: () => number, dropped: () => number, figures: MemberFigures | null): Map<string, Route> {
  const workers = config.workers;
  const routes = new Map<string, Route>([
    ['/metrics', async () => ({
      status: 200,
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      body: await renderMetrics({
        version: VERSION, counters: supervisor.counters, workers, heartbeats: supervisor.heartbeats,
        startedAt: supervisor.startedAt, restarts: () => supervisor.restarts, refusedNoWorker: refused, httpDropped: dropped,
        histograms: supervisor.histograms, gauges: supervisor.gauges, logDrops: () => supervisor.logs.drops(),
        cluster: () => {
          const c = supervisor.cluster;
          return c === null ? null : { members: c.members.length, fenced: c.fenced, fencings: supervisor.fencings };
        },
      }),
    })],
    ['/livez', () => livez(supervisor.heartbeats, workers)],
    ['/readyz', () => readyz(readiness, supervisor.cluster)],
    ['/', () => ({ status: 200, body: STATUS_HTML, contentType: 'text/html; charset=utf-8' })],
    ['/status.json', () => ({
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify(statusJson({
        version: VERSION, counters: supervisor.counters, workers, heartbeats: supervisor.heartbeats, startedAt: supervisor.startedAt,
        restarts: () => supervisor.restarts, cluster: () => supervisor.cluster, nodeId: config.nodeId ?? null,
        memberFigures: () => (figures && supervisor.cluster ? figures.current(supervisor.cluster.members) : null),
      })) + '\n',
    })],
  ]);
  // --metrics false: the bench's baseline without metrics (no route, no latency timers).
  if (config.metrics === 'false') routes.delete('/metrics');
  return routes;
}

/** GET /api/v1/stats: every counter summed over the workers, by its $SYS name. */
function statsOf(config: BrokerConfig, supervisor: Supervisor): Record<string, number | string | null> {
  const all = new Float64Array(supervisor.counters);
  const out: Record<string, number | string | null> = {
    version: VERSION,
    uptimeSeconds: Math.round((Date.now() - supervisor.startedAt) / 1000),
    workers: config.workers,
    workerRestarts: supervisor.restarts,
  };
  for (const [c, name] of Object.entries(COUNTER_NAMES)) out[name] = sumCounter(all, config.workers, Number(c));
  return out;
}
