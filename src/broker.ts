// Starts a broker in this process: coordinator, workers, then the listener; the operations HTTP
// listener (src/http/) answers from before the store loads until the broker has stopped.
import type { BrokerConfig } from './config';
import { Supervisor } from './main/supervisor';
import { Listener } from './main/listener';
import { prepareDataDir, withOpenTimeout } from './store/data-dir';
import { AuthService } from './auth/auth-service';
import { HttpListener, type Route } from './http/server';
import { renderMetrics } from './http/metrics';
import { Readiness, livez, readyz } from './http/health';
import { startHeartbeat, mainSlot } from './shared/heartbeats';

const VERSION: string = require('../../package.json').version;

export interface RunningBroker {
  port: number;
  host: string;
  /** The HTTP listener's address; null with --http-port -1. */
  http: { port: number; host: string } | null;
  /** SIGHUP: reloads the password file; the line to log says what happened. */
  reload(): { ok: boolean; line: string };
  /**
   * SIGHUP: reloads the ACL file (null without --acl-file); `applied` resolves once every
   * worker decides with the new rules.
   */
  reloadAcl(): { ok: boolean; line: string; applied: Promise<number> } | null;
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
  // A bad password or ACL file stops the start here, before any thread or port exists.
  const auth = new AuthService(config);
  const supervisor = new Supervisor(config, opts.testHooks ?? false, auth);
  const readiness = new Readiness();
  let listener: Listener | null = null;
  let http: HttpListener | null = null;
  let httpAddr: { port: number; host: string } | null = null;
  let stopMainBeat: (() => void) | null = null;
  // Whatever was started, stopped in reverse; used by stop() and by a start that fails.
  const release = async () => {
    if (listener) await listener.close();
    await supervisor.stop();
    stopMainBeat?.();
    if (http) await http.close();
    await auth.close();
  };

  if (config.httpPort >= 0) {
    // Before the store loads, so /readyz says "starting" through a long restore.
    http = new HttpListener(httpRoutes(config, supervisor, readiness, () => listener?.refused ?? 0, () => http!.dropped));
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
    // The coordinator thread may be stuck in the store's open: its stop is not awaited (the CLI
    // exits at once, src/cli.ts "exitNow"), but an embedding process gets its threads back.
    void supervisor.stop().catch(() => undefined);
    stopMainBeat?.();
    if (http) await http.close();
    await auth.close();
    throw err;
  }
  listener = new Listener(supervisor);
  let addr;
  try {
    addr = await listener.listen(config.port, config.host);
  } catch (err) {
    listener = null;
    await release();
    throw err;
  }
  readiness.serving();
  let stopped: Promise<void> | null = null;
  return {
    port: addr.port,
    host: addr.address,
    http: httpAddr,
    reload: () => auth.reload(),
    reloadAcl: () => auth.reloadAcl(),
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

function httpRoutes(config: BrokerConfig, supervisor: Supervisor, readiness: Readiness, refused: () => number, dropped: () => number): Map<string, Route> {
  const workers = config.workers;
  return new Map<string, Route>([
    ['/metrics', async () => ({
      status: 200,
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      body: await renderMetrics({
        version: VERSION, counters: supervisor.counters, workers, heartbeats: supervisor.heartbeats,
        startedAt: supervisor.startedAt, restarts: () => supervisor.restarts, refusedNoWorker: refused, httpDropped: dropped,
      }),
    })],
    ['/livez', () => livez(supervisor.heartbeats, workers)],
    ['/readyz', () => readyz(readiness)],
  ]);
}
