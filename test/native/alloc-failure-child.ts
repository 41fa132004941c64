// Child process for test/native/alloc-failure.test.ts: lowers its own address-space limit just
// above what it uses, so the next large native allocation fails with std::bad_alloc, then
// checks that each N-API entry point turns it into a JS error and that the trie still works.
// Prints one JSON line with what it saw.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { native } from '../../src/native';

const STRING_BYTES = 128 << 20; // copied by the addon (Utf8Value): must not fit
// What V8 (a GC, the error objects) may still map, well below the copy that must fail: 48 MiB
// once left V8 itself short during a GC on a loaded machine (SIGABRT).
const HEADROOM = 80 << 20;

const id = native.trieCreate();
native.trieSubscribe(id, 'a/b', 1, 1, 0);
native.trieSubscribe(id, '$share/g/a/b', 3, 1, 0);
// The buffer stays referenced to the end: freed under the limit, it would hand the process the
// very room the copy must not find.
const source = Buffer.alloc(STRING_BYTES, 0x61);
const big = source.toString('latin1');
const vmBytes = Number(/VmSize:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
execFileSync('prlimit', ['--pid', String(process.pid), `--as=${vmBytes + HEADROOM}:`]);

const errors: Record<string, string> = {};
const calls: [string, () => unknown][] = [
  ['trieSubscribe', () => native.trieSubscribe(id, big, 2, 1, 0)],
  ['trieUnsubscribe', () => native.trieUnsubscribe(id, big, 2)],
  ['validateTopic', () => native.validateTopic(big, false)],
];
for (const [name, call] of calls) {
  try {
    call();
    errors[name] = 'no error';
  } catch (err) {
    errors[name] = `${(err as NodeJS.ErrnoException).code}: ${(err as Error).message}`;
  }
}
// Back under the limit's reach only for small things: the trie is usable and consistent.
const added = native.trieSubscribe(id, 'a/+', 2, 1, 0);
const out = new Uint32Array(64);
const words = native.trieMatch(id, Buffer.from('a/b'), new Uint32Array([0, 3]), 1, out);
const matched = Array.from(out.subarray(0, Math.max(0, words)));
const removed = [native.trieUnsubscribe(id, 'a/+', 2), native.trieUnsubscribe(id, 'a/b', 1), native.trieUnsubscribe(id, '$share/g/a/b', 3)];
// A pin left behind by the failed calls (their epoch::Guard) would keep this above 0.
const pending = native.epochPending();
process.stdout.write(JSON.stringify({ errors, added, matched, removed, pending, stats: native.trieStats(id), kept: source.length }) + '\n');
