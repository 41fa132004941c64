// Writes a 1,000-rule ACL file that lets the bench clients (anonymous, bench/scenarios.ts) do
// what every pub/sub scenario needs, among ~930 rules they never match, and prints the command
// lines that compare fleetmq with and without it (run them alternated, on a quiet machine):
//
//   node dist/bench/acl-file.js [FILE]      (default: $TMPDIR/fleetmq-bench-acl-1000)
//
// The rules a bench client matches sit among literal siblings (bench/noise/...) and deny rules
// under the same prefixes, so a decision walks a realistic trie. The deny rules sit inside the
// wildcard subscribers' filters (bench/wc/NN/secret/# meets bench/wc/NN/+), so those
// subscriptions are partial and every delivery is checked (the narrow checker,
// workers/auth/acl-gate.ts); the pairs subscriptions read whole (deliveries skip the check).
// Publishers are checked per PUBLISH: a wildcard publisher's 625 topics are more than the
// default --acl-cache-entries (256), so its figure includes the cache misses.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAclFile, ruleCount } from '../src/auth/acl';

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export function benchAcl(total = 1000): string {
  const lines = ['# fleetmq bench: anonymous clients (the load generator sends no username)'];
  for (let p = 0; p < 16; p++) {
    lines.push(`topic readwrite bench/pair/${pad(p, 2)}`, `topic readwrite bench/wc/${pad(p, 2)}/#`, `topic read bench/wc/${pad(p, 2)}x/#`,
      `topic deny bench/wc/${pad(p, 2)}/secret/#`, `topic readwrite bench/pp/${pad(p, 2)}`);
  }
  lines.push('topic readwrite bench/in/#', 'topic readwrite bench/out/#', 'topic read $SYS/#');
  for (let i = 0; lines.length - 1 < total; i++) lines.push(i % 10 === 9 ? `topic deny bench/noise/${pad(i, 4)}/#` : `topic readwrite bench/noise/${pad(i, 4)}/+/x`);
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  const file = process.argv[2] ?? path.join(os.tmpdir(), 'fleetmq-bench-acl-1000');
  const text = benchAcl();
  fs.writeFileSync(file, text);
  process.stdout.write(`wrote ${file}: ${ruleCount(parseAclFile(text, file))} rules\n` +
    'compare (alternate the two, repeat):\n' +
    '  npm run bench -- --broker fleetmq --scenario pairs,wildcard --fleetmq-args "--durability none"\n' +
    `  npm run bench -- --broker fleetmq --scenario pairs,wildcard --fleetmq-args "--durability none --acl-file ${file}"\n`);
}
