// Starts a broker in this process: coordinator, workers, then the listener.
import type { BrokerConfig } from './config';
import { Supervisor } from './main/supervisor';
import { Listener } from './main/listener';
import { prepareDataDir, withOpenTimeout } from './store/data-dir';
import { AuthService } from './auth/auth-service';

export interface RunningBroker {
  port: number;
  host: string;
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
  stop(): Promise<void>;
}

export async function startBroker(config: BrokerConfig, opts: { testHooks?: boolean } = {}): Promise<RunningBroker> {
  if (config.durability !== 'none') {
    // Up front, before any thread starts: an unusable --data-dir is one clear line.
    const checking = prepareDataDir(config.dataDir);
    await (config.storeOpenTimeoutMs > 0 ? withOpenTimeout(checking, config.dataDir, config.storeOpenTimeoutMs) : checking);
  }
  // A bad password or ACL file stops the start here, before any thread or port exists.
  const auth = new AuthService(config);
  const supervisor = new Supervisor(config, opts.testHooks ?? false, auth);
  await supervisor.start();
  const listener = new Listener(supervisor);
  const addr = await listener.listen(config.port, config.host);
  let stopped: Promise<void> | null = null;
  return {
    port: addr.port,
    host: addr.address,
    reload: () => auth.reload(),
    reloadAcl: () => auth.reloadAcl(),
    get aclRules() { return auth.aclRuleCount; },
    get users() { return config.passwordFile ? auth.userCount : null; },
    get cluster() { return supervisor.cluster; },
    stop() {
      stopped ??= (async () => {
        await listener.close();
        await supervisor.stop();
        await auth.close();
      })();
      return stopped;
    },
  };
}
