// The real Mosquitto for compatibility tests: its mosquitto_passwd writes password files we
// must read, and its broker must accept the files `fleetmq passwd` writes. Missing binaries
// fail the test with the install line; they are never skipped.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, watchBroker, Watched } from './broker';

const INSTALL = 'apt-get install mosquitto mosquitto-clients';
const SEARCH = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];

/** The path of a Mosquitto binary; throws with the install line when it is missing. */
export function mosquittoBinary(name: 'mosquitto' | 'mosquitto_passwd' | 'mosquitto_pub' | 'mosquitto_sub'): string {
  for (const dir of SEARCH) {
    const p = path.join(dir, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  throw new Error(`${name} not found: ${INSTALL}`);
}

/** `mosquitto_passwd -b [-c] file user password`: adds a user as Mosquitto's own tool does. */
export function mosquittoPasswd(file: string, user: string, password: string, create = !fs.existsSync(file)): void {
  const r = spawnSync(mosquittoBinary('mosquitto_passwd'), [...(create ? ['-c'] : []), '-b', file, user, password], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`mosquitto_passwd failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
}

export interface Mosquitto {
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `mosquitto -c` on 127.0.0.1 and a free port with the given extra config lines (e.g.
 * password_file, allow_anonymous false); resolves once it says it is running.
 */
export async function startMosquitto(lines: string[]): Promise<Mosquitto> {
  const bin = mosquittoBinary('mosquitto');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-mosquitto-'));
  // Started as root, Mosquitto drops to its own user, who cannot read a 0600 file of ours.
  const asRoot = process.getuid?.() === 0 ? ['user root'] : [];
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = path.join(dir, 'mosquitto.conf');
    fs.writeFileSync(conf, [...asRoot, `listener ${port} 127.0.0.1`, ...lines, ''].join('\n'));
    const proc: ChildProcess = spawn(bin, ['-c', conf, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const w: Watched = watchBroker(proc);
    try {
      await w.waitForOutput(/mosquitto version \S+ running/, 20000);
    } catch (err) {
      if (w.alive()) proc.kill('SIGKILL');
      await w.exited;
      lastOutput = (err as Error).message;
      if (/Address already in use/.test(w.output())) continue; // the free port was taken meanwhile
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return {
      port,
      output: w.output,
      async stop() {
        if (w.alive()) proc.kill('SIGTERM');
        try { await w.waitExit(10000, 'SIGTERM'); } catch { proc.kill('SIGKILL'); await w.exited; }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`mosquitto could not get a free port: ${lastOutput}`);
}
