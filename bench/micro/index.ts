// `npm run bench:micro`: runs every compiled micro-benchmark next to this file (codec.js,
// native-*.js, …) in its own child process, one after another. A separate process per file keeps
// a native crash or a leaked thread in one benchmark from taking the others down, and gives each
// a cold, comparable heap. A file is a benchmark if executing it runs it.
//   npm run bench:micro -- codec      only files whose name contains "codec"
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const TIMEOUT_MS = 5 * 60 * 1000;

function main(): void {
  const filter = process.argv[2] ?? '';
  const files = fs.readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && f !== 'index.js' && f.includes(filter))
    .sort();
  if (files.length === 0) { console.error(`no micro-benchmarks matching '${filter}' in ${__dirname}`); process.exit(1); }
  let failed = 0;
  for (const f of files) {
    console.log(`\n=== ${f.replace(/\.js$/, '')} ===`);
    const r = spawnSync(process.execPath, [path.join(__dirname, f)], { stdio: 'inherit', timeout: TIMEOUT_MS });
    if (r.status !== 0) {
      failed++;
      console.error(`${f}: ${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}`);
    }
  }
  if (failed > 0) { console.error(`\n${failed} of ${files.length} micro-benchmarks failed`); process.exit(1); }
}

main();
