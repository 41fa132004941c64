// `fleetmq` command line: parse, validate (one clear line + exit 2 on bad input), start, and
// shut down cleanly on SIGTERM / SIGINT; SIGHUP reloads the password, ACL, API keys and banned
// files and the certificates. `fleetmq passwd` edits a password file (src/auth/passwd-cli.ts),
// `fleetmq apikey` an API keys file (src/http/api-keys.ts).
//
// Exit codes: 0 clean shutdown; 1 cannot start (one line on stderr: an unusable --data-dir, a
// store that did not open within --store-open-timeout-ms, a bad password or ACL file, a
// --node-id already registered in the cluster, an etcd that did not answer within
// --cluster-join-timeout-ms, ...) or shutdown failed; 2 bad configuration (also --etcd without
// --node-id); 128 + signal number for SIGTERM / SIGINT before the broker was listening.
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, resolveConfig, helpText, ConfigError, BrokerConfig, anonymousAllowed, isLoopbackHost, chainAuth, authMethods } from './config';
import { startBroker, RunningBroker } from './broker';
import { passwdMain } from './auth/passwd-cli';
import { apikeyMain } from './http/api-keys';
import { configureLogging, log, announce, flushLogs, flushLogsSync } from './log/logger';

const VERSION: string = require('../../package.json').version;

function configure(argv: readonly string[]): BrokerConfig | null {
  try {
    const parsed = parseArgs(argv);
    if (parsed.help) { process.stdout.write(helpText() + '\n'); return null; }
    if (parsed.version) { process.stdout.write(`fleetmq ${VERSION}\n`); return null; }
    return resolveConfig(parsed);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fleetmq: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** What the startup log says about who may connect (Mosquitto 2's secure default, made visible). */
function accessLine(config: BrokerConfig, host: string, users: number | null): string {
  const anon = anonymousAllowed(config);
  if (chainAuth(config)) {
    const who = anon ? `anonymous clients allowed (--allow-anonymous true)${isLoopbackHost(host) ? '' : ` on ${host}`}` : 'anonymous clients refused';
    return `authentication chain ${authMethods(config).join(', ')}${config.passwordFile ? ` (password file ${config.passwordFile}: ${users} user${users === 1 ? '' : 's'})` : ''}; ${who}`;
  }
  if (!config.passwordFile) {
    if (!anon) return 'no password file and --allow-anonymous false: every client is refused';
    return isLoopbackHost(host) ? 'no authentication configured: anonymous clients allowed, loopback only (see --password-file)'
      : `WARNING: no authentication configured: anonymous clients allowed from the network on ${host} (--allow-anonymous true)`;
  }
  const who = anon ? `anonymous clients allowed (--allow-anonymous true)${isLoopbackHost(host) ? '' : ` on ${host}`}` : 'anonymous clients refused';
  return `password file ${config.passwordFile}: ${users} user${users === 1 ? '' : 's'}; ${who}`;
}

export async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === 'passwd') { process.exitCode = await passwdMain(argv.slice(1)); return; }
  if (argv[0] === 'apikey') { process.exitCode = apikeyMain(argv.slice(1)); return; }
  const config = configure(argv);
  if (!config) return;
  // From here on every line goes through the one writer (src/log/): JSON by default. What goes
  // wrong before the broker runs (a signal during startup, cannot start) stays a plain line on
  // stderr, as bad flags are: a person or a supervisor reads it, and the exit code says the rest.
  configureLogging(config);
  // Signal handlers go in before the listening line: a supervisor that reads the line and
  // signals at once must get the clean shutdown, not the default kill.
  let stopping: string | null = null;
  let broker: RunningBroker | null = null;
  const shutdown = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = sig;
    if (broker) { stop(broker, sig); return; }
    // Still starting: no client was served and the store is crash-safe, so there is nothing to
    // flush, and a thread stuck opening the store must not keep us (see exitNow).
    process.stderr.write(`fleetmq: ${sig} during startup, exiting\n`);
    exitNow(128 + os.constants.signals[sig]);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP would otherwise end the process; it reloads the password, ACL and JWT key files, the TLS
  // certificates, the API keys, the banned file and the limits; connections stay up.
  process.on('SIGHUP', () => {
    if (!broker || stopping) return;
    // The admin API's keys and the banned list (a banned client connected now is disconnected).
    const ops = broker.reloadOps();
    // Printed once every worker checks CONNECTs against the banned file just read.
    if (ops) void ops.applied.then(() => (ops.ok ? log.info(`fleetmq: SIGHUP: ${ops.line}`) : log.error(`fleetmq: SIGHUP: ${ops.line}`)));
    reloadLimits(broker, argv);
    const acl = broker.reloadAcl();
    if (!acl || config.passwordFile || chainAuth(config) || broker.listeners.length > 1) {
      void broker.reload().then((r) => (r.ok ? log.info(`fleetmq: SIGHUP: ${r.line}`) : log.error(`fleetmq: SIGHUP: ${r.line}`)));
    }
    if (!acl) return;
    if (acl.ok) log.info(`fleetmq: SIGHUP: ${acl.line}`); else log.error(`fleetmq: SIGHUP: ${acl.line}`);
    if (acl.ok) void acl.applied.then((g) => log.info(`fleetmq: SIGHUP: acl generation ${g} in force in every worker`));
  });
  // The last line before a stalled start says what it is waiting for.
  if (config.durability !== 'none') log.info(`fleetmq: opening store at ${path.resolve(config.dataDir)}`, { dataDir: path.resolve(config.dataDir) });
  try {
    broker = await startBroker(config, {
      testHooks: process.env.FLEETMQ_TEST_HOOKS === '1',
      // Printed as soon as it is bound: /readyz answers (503) while the store loads. Not worded
      // "listening on": that line means MQTT is served.
      onHttpListening: (a) => announce(`fleetmq: http endpoints at http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port} (/metrics, /livez, /readyz, /api/v1, status page at /)`, { httpPort: a.port }),
    });
  } catch (err) {
    process.stderr.write(`fleetmq: cannot start: ${(err as Error).message}\n`);
    exitNow(1);
  }
  const access = accessLine(config, broker.host, broker.users);
  if (access.startsWith('WARNING')) log.warn(`fleetmq: ${access}`); else log.info(`fleetmq: ${access}`);
  // Before the listening line, which launchers wait for: by then every port is known.
  for (const l of broker.listeners.slice(1)) {
    announce(`fleetmq: ${l.transport} listener on ${l.host}:${l.port}${l.path ? ` path ${l.path}` : ''}`, { transport: l.transport, port: l.port });
  }
  if (config.aclFile) log.info(`fleetmq: acl file ${config.aclFile}: ${broker.aclRules} rule${broker.aclRules === 1 ? '' : 's'}`);
  const cluster = broker.cluster;
  if (cluster) log.info(`fleetmq: cluster ${config.clusterName} as ${config.nodeId} (incarnation ${cluster.incarnation}), members: ${cluster.members.join(', ')}`, { cluster: config.clusterName, node: config.nodeId });
  announce(`fleetmq listening on ${broker.host}:${broker.port} (${config.workers} worker${config.workers === 1 ? '' : 's'})`, { port: broker.port, workers: config.workers });
  if (stopping) stop(broker, stopping);
}

/**
 * Exits without Node's teardown (native `_exit`). process.exit() joins worker threads, and a
 * worker waits for its pending threadpool requests: one that never completes (a store open on a
 * hung or pseudo filesystem) would keep the process alive forever, spinning. Only used before
 * the broker is up, when there is nothing to flush. stderr/stdout writes are synchronous here.
 */
function exitNow(code: number): never {
  flushLogsSync();
  try {
    (require('./native') as typeof import('./native')).native.exitNow(code);
  } catch { /* addon not loadable: fall back */ }
  process.exit(code);
}

/**
 * SIGHUP: the flags and --config file read again; the limits among them apply from now on
 * (src/broker.ts). A configuration that no longer parses keeps the limits in force.
 */
function reloadLimits(broker: RunningBroker, argv: readonly string[]): void {
  let next: BrokerConfig;
  try {
    next = resolveConfig(parseArgs(argv));
  } catch (err) {
    log.error(`fleetmq: SIGHUP: limits not reloaded, the configuration does not parse: ${(err as Error).message}`);
    return;
  }
  const r = broker.reloadLimits(next);
  if (r) { if (r.ok) log.info(`fleetmq: SIGHUP: ${r.line}`); else log.error(`fleetmq: SIGHUP: ${r.line}`); }
}

function stop(broker: RunningBroker, sig: string): void {
  log.info(`fleetmq: ${sig}, shutting down`);
  broker.stop().then(() => flushLogs().then(() => process.exit(0)), (err) => {
    log.error(`fleetmq: shutdown failed: ${(err as Error).message}`);
    void flushLogs().then(() => process.exit(1));
  });
}
