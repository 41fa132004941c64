// No C++ exception crosses into N-API: a std::bad_alloc inside an export becomes a JS Error
// (code ERR_FLEETMQ_NATIVE_OOM) and the trie stays usable (native/README.md, "Allocation
// failure"). Provoked for real in a child process that lowers its own RLIMIT_AS (prlimit) just
// above its current size and then hands the addon a 128 MiB string to copy. Before every entry
// point was wrapped, the exception unwound into Node's frames and the process aborted.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const CHILD = path.join(__dirname, 'alloc-failure-child.js');
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
// ASAN reserves terabytes of shadow memory (no RLIMIT_AS possible) and aborts on a failed
// malloc by default: this test is for the normal build.
const sanitized = !!process.env.FLEETMQ_NATIVE || /asan/.test(process.env.LD_PRELOAD ?? '');

test('an allocation failure in an export is a JS error, not an abort, and the trie keeps working',
  { skip: !hasPrlimit ? 'no prlimit (util-linux)' : sanitized ? 'sanitizer build' : false, timeout: 60000 }, () => {
    const r = spawnSync(process.execPath, [CHILD], { encoding: 'utf8', timeout: 50000 });
    assert.equal(r.signal, null, `child died of ${r.signal} (an exception reached N-API?); stderr: ${r.stderr}`);
    assert.equal(r.status, 0, `child exit ${r.status}; stderr: ${r.stderr}`);
    const seen = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      errors: Record<string, string>; added: number; matched: number[]; removed: boolean[]; pending: number;
      stats: { subscriptions: number; filters: number; sharedGroups: number };
    };
    for (const [name, e] of Object.entries(seen.errors)) {
      assert.match(e, /^ERR_FLEETMQ_NATIVE_OOM: fleetmq native: out of memory$/, `${name}: ${e}`);
    }
    assert.equal(seen.added, 1);
    // a/b: subscriber 1 (a/b) and 2 (a/+), and one pick of group g (3, options | 0x80).
    assert.equal(seen.matched[0], 3, `matched: ${seen.matched}`);
    const triples = [0, 1, 2].map((i) => seen.matched.slice(1 + 3 * i, 4 + 3 * i)).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(triples, [[1, 1, 0], [2, 1, 0], [3, 0x81, 0]]);
    assert.deepEqual(seen.removed, [true, true, true]);
    assert.equal(seen.pending, 0, 'retired memory still waiting: a failed call left its epoch pinned');
    assert.deepEqual(seen.stats, { subscriptions: 0, filters: 0, sharedGroups: 0 });
  });
