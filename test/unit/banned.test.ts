// The banned list (src/shared/banned.ts) and the API keys file (src/http/api-keys.ts) as pure
// modules: formats, normal forms, matching (exact, prefix, CIDR v4 / v6, IPv4-mapped addresses,
// expiry), malformed input named by line; API key checks (cache, wrong secret, reload).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BanMatcher, BannedError, normalBan, parseBannedConfig, parseBannedFile, type BanEntry } from '../../src/shared/banned';
import { ApiKeys, ApiKeysError, parseApiKeys, setApiKey } from '../../src/http/api-keys';

const entry = (kind: BanEntry['kind'], value: string, expiresAt = 0): BanEntry => ({ ...normalBan(kind, value), expiresAt, source: 'api' });

describe('banned list', () => {
  test('exact client ids and usernames, client id prefixes', () => {
    const m = new BanMatcher([entry('clientid', 'evil'), entry('username', 'mallory'), entry('clientid-prefix', 'bot-')]);
    assert.equal(m.match('evil', null, '10.0.0.1'), 'clientid');
    assert.equal(m.match('evil2', null, '10.0.0.1'), null);
    assert.equal(m.match('ok', 'mallory', '10.0.0.1'), 'username');
    assert.equal(m.match('mallory', null, '10.0.0.1'), null, 'a username ban is not a client id ban');
    assert.equal(m.match('bot-17', null, undefined), 'clientid-prefix');
    assert.equal(m.match('robot-17', null, undefined), null);
    assert.equal(new BanMatcher().match('evil', 'mallory', '10.0.0.1'), null);
  });

  test('addresses: exact, CIDR v4 and v6, IPv4-mapped IPv6 as a dual-stack socket reports it', () => {
    const m = new BanMatcher([entry('address', '203.0.113.9'), entry('address', '192.168.0.0/16'), entry('address', '2001:db8::/32')]);
    assert.equal(m.match('c', null, '203.0.113.9'), 'address');
    assert.equal(m.match('c', null, '::ffff:203.0.113.9'), 'address');
    assert.equal(m.match('c', null, '203.0.113.10'), null);
    assert.equal(m.match('c', null, '192.168.44.1'), 'address');
    assert.equal(m.match('c', null, '::ffff:192.168.44.1'), 'address');
    assert.equal(m.match('c', null, '192.169.0.1'), null);
    assert.equal(m.match('c', null, '2001:db8:1::5'), 'address');
    assert.equal(m.match('c', null, '2001:db9::5'), null);
    assert.equal(normalBan('address', '::ffff:10.1.2.3').value, '10.1.2.3');
    assert.equal(normalBan('address', '10.0.0.0/08').value, '10.0.0.0/8');
  });

  test('an expired entry no longer matches', () => {
    const now = 1_000_000;
    const m = new BanMatcher([entry('clientid', 'a', now + 1000), entry('clientid', 'b', now - 1)]);
    assert.equal(m.match('a', null, undefined, now), 'clientid');
    assert.equal(m.match('a', null, undefined, now + 1000), null);
    assert.equal(m.match('b', null, undefined, now), null);
  });

  test('the file format, and malformed lines named', () => {
    const list = parseBannedFile('# comment\n\nclientid evil\nusername  two words \naddress 10.0.0.0/8\r\nclientid-prefix bot-\n', 'f');
    assert.deepEqual(list.map((e) => [e.kind, e.value, e.source]), [['clientid', 'evil', 'file'], ['username', 'two words', 'file'], ['address', '10.0.0.0/8', 'file'], ['clientid-prefix', 'bot-', 'file']]);
    assert.throws(() => parseBannedFile('clientid a\nip 1.2.3.4\n', 'f'), (e: Error) => e instanceof BannedError && /f: line 2: unknown kind "ip"/.test(e.message));
    assert.throws(() => parseBannedFile('address 1.2.3\n', 'f'), /line 1: address: "1.2.3" is not an IP address/);
    assert.throws(() => parseBannedFile('address 1.2.3.4/33\n', 'f'), /bad prefix length/);
    assert.throws(() => parseBannedFile('clientid\n', 'f'), /expected "KIND VALUE"/);
  });

  test('the config key', () => {
    const list = parseBannedConfig({ clientIds: ['a'], usernames: ['u'], addresses: ['::1'], clientIdPrefixes: ['p'] }, 'banned');
    assert.deepEqual(list.map((e) => `${e.kind}:${e.value}:${e.source}`), ['clientid:a:config', 'username:u:config', 'address:::1:config', 'clientid-prefix:p:config']);
    assert.deepEqual(parseBannedConfig(undefined, 'banned'), []);
    assert.throws(() => parseBannedConfig({ hosts: [] }, 'banned'), /unknown key "hosts"/);
    assert.throws(() => parseBannedConfig({ clientIds: 'a' }, 'banned'), /clientIds: expected an array/);
    assert.throws(() => parseBannedConfig({ clientIds: [''] }, 'banned'), /clientIds\[0\]/);
  });
});

describe('API keys', () => {
  test('setApiKey writes a line parseApiKeys reads; the secret checks, a wrong one does not; reload', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-keys-'));
    try {
      const file = path.join(dir, 'keys');
      const { secret, what } = setApiKey(file, 'ops', 'admin');
      assert.equal(what, 'added');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const keys = new ApiKeys(file);
      const auth = (n: string, s: string) => `Basic ${Buffer.from(`${n}:${s}`).toString('base64')}`;
      assert.deepEqual(await keys.check(auth('ops', secret)), { ok: true, name: 'ops', role: 'admin' });
      assert.deepEqual(await keys.check(auth('ops', secret)), { ok: true, name: 'ops', role: 'admin' }, 'from the cache');
      assert.deepEqual(await keys.check(auth('ops', 'nope')), { ok: false, why: 'bad' });
      assert.deepEqual(await keys.check(auth('who', secret)), { ok: false, why: 'bad' });
      assert.deepEqual(await keys.check(undefined), { ok: false, why: 'none' });
      assert.deepEqual(await keys.check('Bearer x'), { ok: false, why: 'none' });
      // A new secret for the same name: the old one stops working once reloaded (the cache is dropped).
      const again = setApiKey(file, 'ops', 'read');
      assert.equal(again.what, 'replaced');
      assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 1);
      assert.equal(keys.reload().ok, true);
      assert.deepEqual(await keys.check(auth('ops', secret)), { ok: false, why: 'bad' });
      assert.deepEqual(await keys.check(auth('ops', again.secret)), { ok: true, name: 'ops', role: 'read' });
      fs.writeFileSync(file, 'broken\n');
      assert.equal(keys.reload().ok, false);
      assert.deepEqual(await keys.check(auth('ops', again.secret)), { ok: true, name: 'ops', role: 'read' }, 'a bad file keeps the previous keys');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('malformed files named by line', () => {
    assert.throws(() => parseApiKeys('a:admin\n', 'k'), (e: Error) => e instanceof ApiKeysError && /k: line 1: expected NAME:ROLE:HASH/.test(e.message));
    assert.throws(() => parseApiKeys('# x\na:root:$7$1$AAAA$BBBB\n', 'k'), /line 2: the role must be read or admin/);
    assert.throws(() => parseApiKeys('a b:read:$7$1$AAAA$BBBB\n', 'k'), /key name/);
    assert.throws(() => parseApiKeys('a:read:plain\n', 'k'), /not a \$6\$ or \$7\$ hash/);
    assert.throws(() => setApiKey('/nonexistent-dir/keys', 'x:y', 'read'), /key name/);
  });
});
