// packaging/fleetmq.service: systemd's own checker accepts it without a single warning (it
// reports unknown keys and bad values as warnings and still exits 0, so the warnings are what is
// checked, and a deliberately broken copy shows they are caught), it has what README.md
// "Running in production" promises, and every flag on its ExecStart line is one the broker knows.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/broker';
import { SETTINGS } from '../../src/config';

const UNIT = path.join(ROOT, 'packaging', 'fleetmq.service');
const INSTALL = 'apt-get install -y systemd';

/** `systemd-analyze verify` on `text` saved as fleetmq.service in a scratch directory. */
function verify(text: string): { status: number | null; warnings: string[] } {
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  assert.equal(which.status, 0, `systemd-analyze is not installed: ${INSTALL}`);
  const dir = makeTempDir('fleetmq-unit-');
  const file = path.join(dir, 'fleetmq.service');
  // verify checks that ExecStart's program exists: use this machine's node wherever it lives.
  fs.writeFileSync(file, text.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.error, undefined, `systemd-analyze verify: ${r.error?.message}`);
  // Lines about other units of this machine are not ours to judge.
  const warnings = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes('fleetmq.service'));
  return { status: r.status, warnings };
}

test('systemd-analyze verify accepts packaging/fleetmq.service without a warning', { timeout: 120000 }, () => {
  const r = verify(fs.readFileSync(UNIT, 'utf8'));
  assert.equal(r.status, 0, `exit ${r.status}: ${r.warnings.join('\n')}`);
  assert.deepEqual(r.warnings, []);
});

test('the check catches a bad value and an unknown key (it is not vacuous)', { timeout: 120000 }, () => {
  const broken = fs.readFileSync(UNIT, 'utf8').replace('Restart=on-failure', 'Restart=sometimes').replace('[Service]', '[Service]\nLimitNOFILES=10');
  const r = verify(broken);
  assert.ok(r.warnings.some((l) => /restart specifier/i.test(l)), `no warning for Restart=sometimes: ${r.warnings.join('\n')}`);
  assert.ok(r.warnings.some((l) => /LimitNOFILES/.test(l)), `no warning for an unknown key: ${r.warnings.join('\n')}`);
});

test('the unit runs as its own user, raises the file limit, restarts on failure, reloads with SIGHUP, and passes only known flags', () => {
  const text = fs.readFileSync(UNIT, 'utf8');
  const directive = (key: string): string => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    assert.ok(m, `no ${key}= in the unit`);
    return m[1];
  };
  assert.equal(directive('User'), 'fleetmq');
  assert.ok(Number(directive('LimitNOFILE')) >= 65536, `LimitNOFILE=${directive('LimitNOFILE')}`);
  assert.equal(directive('Restart'), 'on-failure');
  assert.equal(directive('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(directive('NoNewPrivileges'), 'yes');
  const known = new Set(SETTINGS.map((s) => s.flag));
  const flags = directive('ExecStart').split(/\s+/).filter((a) => a.startsWith('--'));
  assert.ok(flags.length > 0);
  for (const f of flags) assert.ok(known.has(f), `ExecStart passes ${f}, which fleetmq does not know`);
});
