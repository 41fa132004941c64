// An independent measurement to check bench/run.ts against (the tool's Mosquitto
// figures must land within 20% of one). Nothing is shared with the load generator: clients are
// the `mqtt` npm library (one process, one thread, a library-encoded packet per message), the
// rate is counted in its 'message' events, and Mosquitto's CPU time comes from GNU time's
// rusage at exit rather than from /proc samples.
//
//   node dist/bench/validate/independent.js [--rate 20000] [--duration 10] [--pairs 16]
//
// Compare with: npm run bench -- --broker mosquitto --scenario pairs-fixed --rate 20000 --duration 10
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import { freePort } from '../brokers/process';
import { hasTaskset, pinSelf } from '../proc';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Mosquitto { port: number; cpu: Promise<{ user: number; system: number }>; stop(): void }

/** Mosquitto under GNU time on CPU 0; resolves its user/system CPU seconds when it exits. */
async function startMosquitto(): Promise<Mosquitto> {
  const port = await freePort();
  const conf = path.join(os.tmpdir(), `fleetmq-validate-${process.pid}.conf`);
  fs.writeFileSync(conf, `${fs.readFileSync(path.join(ROOT, 'bench', 'brokers', 'mosquitto.conf'), 'utf8')}\nlistener ${port} 127.0.0.1\n`);
  const report = path.join(os.tmpdir(), `fleetmq-validate-${process.pid}.time`);
  const cmd = ['/usr/bin/time', '-o', report, '-f', '%U %S', 'mosquitto', '-c', conf];
  const child = hasTaskset() ? spawn('taskset', ['-c', '0', ...cmd], { stdio: 'inherit' }) : spawn(cmd[0], cmd.slice(1), { stdio: 'inherit' });
  const cpu = new Promise<{ user: number; system: number }>((resolve) => child.once('exit', () => {
    const [user, system] = fs.readFileSync(report, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    fs.rmSync(report, { force: true });
    fs.rmSync(conf, { force: true });
    resolve({ user, system });
  }));
  await sleep(500);
  // SIGTERM goes to mosquitto itself (time's child), so time records its rusage and exits.
  const stop = () => {
    const kids = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    for (const pid of kids) process.kill(pid, 'SIGTERM');
  };
  return { port, cpu, stop };
}

async function main(): Promise<void> {
  const rate = arg('rate', 20000);
  const seconds = arg('duration', 10);
  const pairs = arg('pairs', 16);
  if (hasTaskset() && os.cpus().length > 1) pinSelf([1]);
  const broker = await startMosquitto();
  const url = `mqtt://127.0.0.1:${broker.port}`;
  let received = 0;
  const subs = await Promise.all(Array.from({ length: pairs }, (_, i) => mqtt.connectAsync(url, { clientId: `v-sub-${i}` })));
  await Promise.all(subs.map((s, i) => s.subscribeAsync(`bench/pair/${String(i).padStart(2, '0')}`, { qos: 0 })));
  for (const s of subs) s.on('message', () => { received++; });
  const pubs = await Promise.all(Array.from({ length: pairs }, (_, i) => mqtt.connectAsync(url, { clientId: `v-pub-${i}` })));
  const payload = Buffer.alloc(64);
  let sent = 0;
  const t0 = performance.now();
  const tick = setInterval(() => {
    const due = Math.min(Math.floor(((performance.now() - t0) / 1000) * rate), rate * seconds) - sent;
    for (let k = 0; k < due; k++) pubs[(sent + k) % pairs].publish(`bench/pair/${String((sent + k) % pairs).padStart(2, '0')}`, payload, { qos: 0 });
    sent += Math.max(0, due);
  }, 1);
  await sleep(seconds * 1000);
  clearInterval(tick);
  const publishMs = performance.now() - t0;
  for (let i = 0; i < 100 && received < sent; i++) await sleep(20);
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all([...pubs, ...subs].map((c) => c.endAsync()));
  broker.stop();
  const cpu = await broker.cpu;
  const cpuSeconds = cpu.user + cpu.system;
  console.log(JSON.stringify({
    tool: 'mqtt.js 16 pairs, fixed rate', offered: rate, seconds: publishMs / 1000, sent, received,
    deliveredPerSecond: Math.round(received / (publishMs / 1000)), lost: sent - received,
    mosquittoCpuSeconds: cpuSeconds, mosquittoCpuPct: Math.round((cpuSeconds / elapsed) * 100),
    messagesPerCpuSecond: Math.round(received / cpuSeconds),
  }, null, 1));
}

main().catch((err) => { console.error(err); process.exit(1); });
