// Starts a broker in this process: coordinator, workers, then the listener.
import type { BrokerConfig } from './config';
import { Supervisor } from './main/supervisor';
import { Listener } from './main/listener';
import { prepareDataDir, withOpenTimeout } from './store/data-dir';

export interface RunningBroker {
  port: number;
  host: string;
  stop(): Promise<void>;
}

export async function startBroker(config: BrokerConfig, opts: { testHooks?: boolean } = {}): Promise<RunningBroker> {
  if (config.durability !== 'none') {
    // Up front, before any thread starts: an unusable --data-dir is one clear line.
    const checking = prepareDataDir(config.dataDir);
    await (config.storeOpenTimeoutMs > 0 ? withOpenTimeout(checking, config.dataDir, config.storeOpenTimeoutMs) : checking);
  }
  const supervisor = new Supervisor(config, opts.testHooks ?? false);
  await supervisor.start();
  const listener = new Listener(supervisor);
  const addr = await listener.listen(config.port, config.host);
  let stopped: Promise<void> | null = null;
  return {
    port: addr.port,
    host: addr.address,
    stop() {
      stopped ??= (async () => {
        await listener.close();
        await supervisor.stop();
      })();
      return stopped;
    },
  };
}
