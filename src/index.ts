// The embedding API (package.json "main"): start a broker inside your own Node.js process. Its
// workers and coordinator run as worker_threads of this process, exactly as under the CLI;
// close() gives back every port, thread and timer, so a process may start and stop brokers one
// after another. Only one of them may have a store (durability 'process' or 'fsync'): the
// rocksdb addon loads in one thread per process (src/broker.ts); a later one is refused.
//
//   import { startBroker } from 'fleetmq';
//   const broker = await startBroker({ port: 0, workers: 2, durability: 'none', httpPort: -1 });
//   console.log(`MQTT on ${broker.host}:${broker.port}`);
//   await broker.close();
import { resolveOptions, ConfigError, type BrokerConfig } from './config';
import { startBroker as start } from './broker';

export { ConfigError };
/** The log level of every thread of every broker in this process, now (src/log/logger.ts). */
export { setLogLevel, getLogLevel } from './log/logger';
export type { LogLevel } from './config';
export type { QueuePolicy, Durability } from './config';

/**
 * The config file's keys (`fleetmq --help` lists each with its flag and default), all optional,
 * checked by the same table as the CLI's flags: an unknown key or a bad value throws ConfigError.
 */
export type BrokerOptions = {
  [K in Exclude<keyof BrokerConfig, 'config' | 'allowAnonymous'>]?: BrokerConfig[K];
} & {
  /** As the CLI's --allow-anonymous; a boolean is accepted too. */
  allowAnonymous?: boolean | 'true' | 'false';
};

export interface Broker {
  /** The MQTT listener's port (the bound one when `port: 0` was asked for). */
  readonly port: number;
  readonly host: string;
  /** The HTTP listener's port (/metrics, /livez, /readyz); undefined with `httpPort: -1`. */
  readonly httpPort?: number;
  readonly httpHost?: string;
  /**
   * Disconnects every client (MQTT 5: DISCONNECT 0x8B), writes what the store still holds,
   * stops every thread, closes both ports and clears every timer this broker started.
   * Resolves once all of that is done; calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Starts a broker in this process; resolves once it accepts MQTT connections. */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const config = resolveOptions(options);
  const running = await start(config);
  const broker: Broker = {
    port: running.port,
    host: running.host,
    close: () => running.stop(),
  };
  if (running.http) Object.assign(broker, { httpPort: running.http.port, httpHost: running.http.host });
  return Object.freeze(broker);
}
