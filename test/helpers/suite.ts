// The numbered protocol conformance suite's shape (test/integration/0*-*.test.ts): one describe
// block per worker count, each with its own broker, and the protocol versions cases run with.
import { describe, before, after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { launchBroker, makeTempDir, removeDir, BrokerHandle, LaunchOptions } from './broker';

/** Both protocol versions the suite runs client-level cases with. */
export const VERSIONS: Array<4 | 5> = [4, 5];

/**
 * Extra broker flags for every broker of the suite, for diagnosis only (e.g.
 * FLEETMQ_IT_ARGS="--durability none" separates protocol failures from store failures).
 * The suite's verdict is the run without it.
 */
const EXTRA_ARGS: string[] = (process.env.FLEETMQ_IT_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Where each suite's broker output is kept after the run, for diagnosing failures. */
const LOG_DIR = path.join(os.tmpdir(), 'fleetmq-it-logs');

/** Saves a broker's output as LOG_DIR/<title>.log. */
function saveBrokerLog(title: string, output: string): void {
  try {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    fs.writeFileSync(path.join(LOG_DIR, `${title.replace(/[^\w.=-]+/g, '_')}.log`), output);
  } catch { /* diagnostics only */ }
}

export interface BrokerCtx {
  /** The running broker (throws if it failed to start, so every test fails loudly). */
  (): BrokerHandle;
}

/**
 * Runs `body` inside one describe block per worker count (default 1 and 3), each with its own
 * broker (and its own empty store directory: state from an earlier run must not leak into a test)
 * started in `before` and stopped (SIGTERM) in `after`. With 3 workers the main thread assigns
 * connections least-loaded-first, so consecutive connections land on different workers:
 * publisher and subscriber of a test are on different workers.
 */
export function eachWorkerCount(
  title: string,
  body: (broker: BrokerCtx, workers: number) => void,
  opts: { workers?: number[]; args?: string[]; env?: LaunchOptions['env']; concurrency?: boolean } = {},
): void {
  for (const workers of opts.workers ?? [1, 3]) {
    // concurrency: the block's tests run at once (each on its own connections; use
    // clientPool('after') there, since an afterEach cleanup would cut the others' clients).
    describe(`${title} [workers=${workers}]`, { concurrency: opts.concurrency ?? false }, () => {
      let broker: BrokerHandle | undefined;
      let startError: Error | undefined;
      let dataDir: string | undefined;
      before(async () => {
        try {
          dataDir = makeTempDir('fleetmq-it-');
          broker = await launchBroker(workers, ['--data-dir', dataDir, ...(opts.args ?? []), ...EXTRA_ARGS], { env: opts.env, ms: 20000 });
        } catch (err) {
          startError = err as Error;
          throw err;
        }
      });
      after(async () => {
        if (broker) {
          await broker.stop();
          saveBrokerLog(`${title} [workers=${workers}]`, broker.output());
        }
        if (dataDir) removeDir(dataDir);
      });
      const get: BrokerCtx = () => {
        if (!broker) throw new Error(`broker did not start: ${startError?.message ?? 'unknown'}`);
        if (broker.proc.exitCode !== null || broker.proc.signalCode !== null) {
          throw new Error(`broker is no longer running (exit ${broker.proc.exitCode ?? broker.proc.signalCode}); output:\n${broker.output().slice(-4000)}`);
        }
        return broker;
      };
      body(get, workers);
    });
  }
}
