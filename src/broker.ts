// Starts a broker in this process: coordinator, workers, then the listeners.
import type { BrokerConfig } from './config';
import { Supervisor } from './main/supervisor';
import { Listener } from './main/listener';
import { prepareDataDir, withOpenTimeout } from './store/data-dir';
import { AuthService } from './auth/auth-service';
import { listenerSpecs, type TransportKind } from './shared/listeners';
import { readTlsMaterial, certSerials } from './main/tls-material';

export interface RunningBroker {
  port: number;
  host: string;
  /** Every listener's bound address, in listenerSpecs order (the first is `port`). */
  listeners: { transport: TransportKind; host: string; port: number; path: string }[];
  /**
   * SIGHUP: reloads the password file and the TLS certificates (for new connections; none is
   * dropped); the line to log says what happened.
   */
  reload(): Promise<{ ok: boolean; line: string }>;
  /** Users in the password file now (null: none configured). */
  readonly users: number | null;
  stop(): Promise<void>;
}

export async function startBroker(config: BrokerConfig, opts: { testHooks?: boolean } = {}): Promise<RunningBroker> {
  if (config.durability !== 'none') {
    // Up front, before any thread starts: an unusable --data-dir is one clear line.
    const checking = prepareDataDir(config.dataDir);
    await (config.storeOpenTimeoutMs > 0 ? withOpenTimeout(checking, config.dataDir, config.storeOpenTimeoutMs) : checking);
  }
  // A bad password file or certificate stops the start here, before any thread or port exists.
  const auth = new AuthService(config);
  const specs = listenerSpecs(config);
  const tls = readTlsMaterial(specs);
  const supervisor = new Supervisor(config, opts.testHooks ?? false, auth, tls);
  await supervisor.start();
  const listeners: Listener[] = [];
  const bound: RunningBroker['listeners'] = [];
  for (const [i, spec] of specs.entries()) {
    const l = new Listener(supervisor, i);
    listeners.push(l);
    const addr = await l.listen(spec.port, spec.host);
    bound.push({ transport: spec.transport, host: addr.address, port: addr.port, path: spec.path });
  }
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
  return {
    port: bound[0].port,
    host: bound[0].host,
    listeners: bound,
    async reload() {
      const a = auth.reload();
      if (!tls) return a;
      const t = await reloadTls();
      return { ok: a.ok && t.ok, line: `${a.line}; ${t.line}` };
    },
    get users() { return config.passwordFile ? auth.userCount : null; },
    stop() {
      stopped ??= (async () => {
        await Promise.all(listeners.map((l) => l.close()));
        await supervisor.stop();
        await auth.close();
      })();
      return stopped;
    },
  };
}
