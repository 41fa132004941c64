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

// The addon's N-API defines and its exception setting must match between the two builds: the
// sanitizer build is only worth running if it is the same code (src/README.md, "Measured", native/addon.cc
// Guarded: C++ exceptions on, caught at every export, never thrown by node-addon-api).
test('binding.gyp and native/CMakeLists.txt agree on the addon defines and C++ exceptions', () => {
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: Record<string, unknown>[] };
  const target = gyp.targets.find((t) => t.target_name === 'fleetmq')!;
  const gypDefines = (target.defines as string[]).slice().sort();
  const text = fs.readFileSync(path.join(ROOT, 'native', 'CMakeLists.txt'), 'utf8');
  const m = /target_compile_definitions\(fleetmq PRIVATE([^)]*)\)/.exec(text);
  assert.ok(m, 'CMakeLists.txt has target_compile_definitions(fleetmq PRIVATE ...)');
  const cmakeDefines = m[1]!.split(/\s+/).filter((d) => d && d !== 'BUILDING_NODE_EXTENSION').sort();
  assert.deepEqual(cmakeDefines, gypDefines);
  for (const d of ['NAPI_DISABLE_CPP_EXCEPTIONS', 'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS']) assert.ok(gypDefines.includes(d), d);
  // node-gyp's common.gypi adds -fno-exceptions; the fleetmq target removes it.
  assert.ok((target['cflags_cc!'] as string[] | undefined)?.includes('-fno-exceptions'), 'binding.gyp must remove -fno-exceptions');
  assert.ok(!JSON.stringify(target['cflags_cc'] ?? []).includes('-fno-exceptions'));
  assert.match(text, /target_compile_options\(fleetmq_core PUBLIC -fexceptions\)/);
  assert.doesNotMatch(text.replace(/#.*$/gm, ''), /-fno-exceptions/);
});
