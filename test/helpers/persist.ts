// What the broker-level persistence suite (test/integration/2*-*.test.ts) needs beyond
// launching and clients:
//
// - Deployment: one data directory (fresh, under os.tmpdir()) and the broker processes started
//   on it one after the other: start(), down('SIGTERM' | 'SIGKILL'), restart(). Each start gets
//   a new port (read from the "listening" line). dispose() kills what is still running and
//   deletes the directory; withDeployment() always disposes it and the test's clients.
// - persistentOpts() / persistentConnect(): a session that outlives its connection, per version.
// - durableBarrier(): proof that what the broker acknowledged before it is on disk.
// - hashTree() / diffTrees() / listTree(): proof that a store was (not) touched.
//
// Nothing here sleeps for a fixed time to wait for the broker: every wait is bounded and fails
// with a message naming what was awaited.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as mqtt from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { Broker, launch, makeTempDir, removeDir } from './broker';
import { Clients, subscribeOk, publish, end } from './clients';

export type Durability = 'none' | 'process' | 'fsync';
export type Down = 'SIGTERM' | 'SIGKILL';

// ---------------------------------------------------------------------------------------------
// A data directory and the brokers started on it

export interface DeploymentOptions {
  durability?: Durability;
  /** Extra broker flags (e.g. --max-inflight). */
  args?: string[];
  /** Extra environment (e.g. FLEETMQ_TEST_HOOKS=1). */
  env?: NodeJS.ProcessEnv;
}

export class Deployment {
  readonly dir: string;
  broker: Broker | undefined;
  private outputs: string[] = [];

  constructor(readonly workers: number, readonly opts: DeploymentOptions = {}) {
    this.dir = makeTempDir('fleetmq-persist-');
  }

  args(): string[] {
    return ['--port', '0', '--host', '127.0.0.1', '--workers', String(this.workers),
      '--data-dir', this.dir, '--durability', this.opts.durability ?? 'process', ...(this.opts.args ?? [])];
  }

  /** The running broker (throws if none). */
  get b(): Broker {
    if (!this.broker || !this.broker.alive()) {
      throw new Error(`broker is not running; output so far:\n${this.history()}`);
    }
    return this.broker;
  }

  get port(): number { return this.b.port; }

  async start(): Promise<Broker> {
    if (this.broker?.alive()) throw new Error('start(): a broker is still running on this data dir');
    try {
      this.broker = await launch(this.args(), { env: this.opts.env });
    } catch (err) {
      const msg = (err as Error).message;
      const hint = /unknown option "--(data-dir|durability)"/.test(msg)
        ? '\n(the broker rejects the persistence flags)' : '';
      throw new Error(`broker start #${this.outputs.length + 1} on ${this.dir} failed: ${msg}${hint}`);
    }
    this.outputs.push('');
    return this.broker;
  }

  /** Takes the running broker down: SIGTERM (clean shutdown, bounded) or SIGKILL. */
  async down(how: Down): Promise<void> {
    const b = this.b;
    if (how === 'SIGKILL') await b.kill(); else await b.stop();
    this.outputs[this.outputs.length - 1] = b.output();
  }

  async restart(how: Down): Promise<Broker> {
    await this.down(how);
    return this.start();
  }

  /** Everything every broker on this data dir printed, start by start. */
  history(): string {
    const cur = this.broker ? this.broker.output() : '';
    const outs = this.outputs.slice();
    if (outs.length) outs[outs.length - 1] = cur;
    return outs.map((o, i) => `--- start #${i + 1} ---\n${o.slice(-3000)}`).join('\n');
  }

  async dispose(): Promise<void> {
    if (this.broker?.alive()) await this.broker.kill();
    removeDir(this.dir);
  }
}

/** Runs `body` with a fresh deployment and always disposes it (and the test's clients). */
export async function withDeployment(workers: number, opts: DeploymentOptions, body: (d: Deployment, c: Clients) => Promise<void>): Promise<void> {
  const d = new Deployment(workers, opts);
  const c = new Clients();
  try {
    await body(d, c);
  } catch (err) {
    const e = err as Error;
    // Failures carry the broker's output, which usually tells why.
    e.message = `${e.message}\n[data dir ${d.dir}, broker output]\n${d.history()}`;
    throw e;
  } finally {
    await c.closeAll();
    await d.dispose();
  }
}

export const EXPIRY = 3600;

/**
 * An mqtt.js message store that survives its client: pass the same one as `incomingStore` to
 * every connection of one persistent subscriber, so QoS 2 messages it PUBREC'd on one connection
 * are released (emitted) once when the PUBREL comes on the next. (`clean: false`: end() does not
 * empty it.)
 */
export function sessionStore(): mqtt.Store {
  return new mqtt.Store({ clean: false });
}

/**
 * mqtt.js options for a persistent session: v3.1.1 clean=false; v5 Session Expiry > 0 and, when
 * `resume` is true, Clean Start 0 (on the first connection Clean Start 1 creates the session).
 */
export function persistentOpts(version: 4 | 5, clientId: string, resume: boolean, expiry = EXPIRY): mqtt.IClientOptions {
  if (version === 4) return { protocolVersion: 4, clientId, clean: false };
  return { protocolVersion: 5, clientId, clean: !resume, properties: { sessionExpiryInterval: expiry } };
}

/** The same for a raw CONNECT. */
export function persistentConnect(version: 4 | 5, clientId: string, resume: boolean, expiry = EXPIRY): Partial<mqttPacket.IConnectPacket> {
  if (version === 4) return { clientId, clean: false };
  return { clientId, clean: !resume, properties: { sessionExpiryInterval: expiry } };
}

/**
 * A durability barrier for SIGKILL tests whose subject is not the last ack before the kill: a QoS 1
 * message for an offline persistent session is in the WAL before its PUBACK, and the
 * store commits in order, so whatever the broker acknowledged before it is on disk too.
 */
export async function durableBarrier(c: Clients, port: number, base: string): Promise<void> {
  const id = `barrier-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const s = await c.mqtt(port, persistentOpts(4, id, false));
  await subscribeOk(s.client, { [`${base}/barrier`]: { qos: 1 } });
  await end(s.client);
  const p = await c.mqtt(port, { protocolVersion: 4, clientId: `${id}-pub` });
  await publish(p.client, `${base}/barrier`, 'barrier', { qos: 1 });
  await end(p.client);
}

// ---------------------------------------------------------------------------------------------
// Files

/** sha256 of every file under `dir` (relative path → hash), to prove a store was left untouched. */
export function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(dir, p), crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** Differences between two hashTree() results, as readable lines. */
export function diffTrees(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, h] of before) {
    if (!after.has(f)) out.push(`deleted: ${f}`);
    else if (after.get(f) !== h) out.push(`changed: ${f}`);
  }
  for (const f of after.keys()) if (!before.has(f)) out.push(`created: ${f}`);
  return out;
}

/** Every file under `dir`, relative. */
export function listTree(dir: string): string[] {
  return [...hashTree(dir).keys()].sort();
}
