// binding.gyp (node-gyp, what `npm install` uses) and native/CMakeLists.txt (sanitizer and fuzz
// builds) must compile the same sources, and every native/*.cc must be in both.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ROOT } from '../helpers/paths';

function gypSources(): string[] {
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { target_name: string; sources: string[] }[] };
  const target = gyp.targets.find((t) => t.target_name === 'fleetmq');
  assert.ok(target, 'binding.gyp has a fleetmq target');
  return target.sources.map((s) => {
    assert.ok(s.startsWith('native/'), `${s} is under native/`);
    return s.slice('native/'.length);
  }).sort();
}

function cmakeSources(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'native', 'CMakeLists.txt'), 'utf8');
  const m = /set\(FLEETMQ_SOURCES\s+([^)]*)\)/.exec(text);
  assert.ok(m, 'CMakeLists.txt has set(FLEETMQ_SOURCES ...)');
  return m[1]!.split(/\s+/).filter((s) => s && !s.startsWith('#')).sort();
}

test('binding.gyp and native/CMakeLists.txt list the same sources', () => {
  const gyp = gypSources();
  assert.ok(gyp.length > 0);
  assert.deepEqual(cmakeSources(), gyp);
});

test('every native/*.cc is compiled', () => {
  const onDisk = fs.readdirSync(path.join(ROOT, 'native')).filter((f) => f.endsWith('.cc')).sort();
  assert.deepEqual(gypSources(), onDisk);
});
