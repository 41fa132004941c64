// pairs and wildcard msg per broker CPU-second with a 1,000-rule ACL file (bench/acl-file.ts)
// against no ACL, fleetmq alone: the two configurations alternate ROUNDS times (so drift on
// the machine hits both alike), each round one `bench/run.js` run per configuration, then
// `bench/compare.js` prints the change per scenario and whether it exceeds the noise.
// The target: within 5% of no ACL.
//
//   node dist/bench/acl-compare.js [--rounds 2] [-- any run.js flags, e.g. --repeat 3 --workers 1]
//
// A smoke check (not a measurement): --rounds 1 -- --repeat 1 --warmup 1 --duration 1
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchAcl } from './acl-file';

const ROOT = path.resolve(__dirname, '..', '..');
const argv = process.argv.slice(2);
const dashdash = argv.indexOf('--');
const own = dashdash < 0 ? argv : argv.slice(0, dashdash);
const passOn = dashdash < 0 ? [] : argv.slice(dashdash + 1);
const roundsAt = own.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(own[roundsAt + 1]) : 2;

function run(label: string, fleetmqArgs: string, out: string): void {
  const args = [path.join(ROOT, 'dist', 'bench', 'run.js'), '--broker', 'fleetmq', '--scenario', 'pairs,wildcard',
    '--fleetmq-args', fleetmqArgs, '--label', label, '--out', out, ...passOn];
  process.stdout.write(`\n$ node ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`run.js ${label} failed (${r.status ?? r.signal})`);
}

function main(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-bench-acl-'));
  const acl = path.join(dir, 'acl-1000');
  fs.writeFileSync(acl, benchAcl(1000));
  const out = path.join(dir, 'results');
  fs.mkdirSync(out);
  for (let i = 0; i < ROUNDS; i++) {
    // Alternated, and the order flips every round.
    const pair: Array<[string, string]> = [['no-acl', '--durability none'], ['acl-1000', `--durability none --acl-file ${acl}`]];
    for (const [label, flags] of i % 2 === 0 ? pair : pair.reverse()) run(`${label}-${i}`, flags, out);
  }
  const csvs = fs.readdirSync(out).filter((f) => f.endsWith('.csv'));
  // All rounds of a configuration in one CSV, so compare.js takes the median over every repeat.
  const merged = (label: string): string => {
    const files = csvs.filter((f) => f.includes(`-${label}-`)).map((f) => fs.readFileSync(path.join(out, f), 'utf8').trimEnd().split('\n'));
    const file = path.join(dir, `${label}.csv`);
    fs.writeFileSync(file, [files[0][0], ...files.flatMap((lines) => lines.slice(1))].join('\n') + '\n');
    return file;
  };
  process.stdout.write('\nno ACL → 1,000-rule ACL (target: within 5%):\n');
  spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'compare.js'), merged('no-acl'), merged('acl-1000')], { stdio: 'inherit' });
  process.stdout.write(`\nresult files: ${out}\n`);
}

main();
