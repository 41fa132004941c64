// The password file (src/auth/password-file.ts) and the refusal log (src/auth/refusal-log.ts):
// a line mosquitto_passwd 2.0.11 wrote verifies, malformed lines are named by number and never
// show hash material, `setPassword` keeps the rest of the file, the log is rate-limited.
import { BaseLogger, type Fields } from '../../src/log/thread-log';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parsePasswordFile, verify, setPassword, readPasswordFile, PasswordFileError } from '../../src/auth/password-file';
import { RefusalLog } from '../../src/auth/refusal-log';

// Written by `mosquitto_passwd -c -b file alice secret` (Mosquitto 2.0.11).
const MOSQUITTO_LINE = 'alice:$7$101$EpAAu1ufw24HtYFL$Sy70/l06sk9qybnR1WCcph+P+82ZtqXEcCCY6dLA6OkRDyAGsaa45ALIgHBkOvJd9WG2Wr9x3/QVvl1SapJPfQ==';

describe('parsePasswordFile', () => {
  test('reads a mosquitto_passwd line, comments, blank lines and CRLF', () => {
    const users = parsePasswordFile(`# users\n\n${MOSQUITTO_LINE}\r\n`, 'f');
    assert.deepEqual([...users.keys()], ['alice']);
    const e = users.get('alice')!;
    assert.equal(e.kind, 7);
    assert.equal(e.iterations, 101);
    assert.equal(e.salt.length, 12);
    assert.ok(verify(e, Buffer.from('secret')));
    assert.ok(!verify(e, Buffer.from('secret ')));
    assert.ok(!verify(e, Buffer.from('')));
  });

  test('names the line and what is wrong, never the hash', () => {
    const hash = MOSQUITTO_LINE.split('$')[4];
    const cases: Array<[string, RegExp]> = [
      ['alice', /line 2: expected user:hash/],
      [':$7$1$AAAA$AAAA', /line 2: expected user:hash/],
      [`bob:plain-text`, /line 2: the password is not a \$6\$ or \$7\$ hash/],
      [`bob:$7$0$EpAAu1ufw24HtYFL$${hash}`, /line 2: the iteration count/],
      [`bob:$7$101$EpAAu1ufw24HtYFL`, /line 2: a \$7\$ hash has the form/],
      [`bob:$7$101$EpAA!!!!$${hash}`, /line 2: the salt is not base64/],
      [`bob:$7$101$EpAAu1ufw24HtYFL$${hash.slice(0, 40)}`, /line 2: the hash is not base64|line 2: the hash must be 64 bytes/],
      [`bob:$6$EpAAu1ufw24HtYFL$AAAA`, /line 2: the hash must be 64 bytes/],
      [MOSQUITTO_LINE, /line 2: user "alice" appears twice/],
    ];
    for (const [line, re] of cases) {
      assert.throws(() => parsePasswordFile(`${MOSQUITTO_LINE}\n${line}\n`, 'pw'), (err: Error) => {
        assert.ok(err instanceof PasswordFileError, `${line}: ${err}`);
        assert.match(err.message, re, line);
        assert.ok(err.message.startsWith('pw: '), err.message);
        assert.ok(!err.message.includes(hash.slice(0, 20)), `hash material in: ${err.message}`);
        return true;
      });
    }
  });
});

describe('setPassword', () => {
  test('adds, updates in place, keeps comments and other users', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-pw-unit-'));
    try {
      const file = path.join(dir, 'pw');
      fs.writeFileSync(file, `# keep me\n${MOSQUITTO_LINE}\n`);
      assert.equal(setPassword(file, 'bob', Buffer.from('b1'), 50), 'added');
      assert.equal(setPassword(file, 'alice', Buffer.from('a2'), 50), 'updated');
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      assert.equal(lines[0], '# keep me');
      assert.match(lines[1], /^alice:\$7\$50\$/);
      assert.match(lines[2], /^bob:\$7\$50\$/);
      const users = readPasswordFile(file);
      assert.ok(verify(users.get('alice')!, Buffer.from('a2')));
      assert.ok(verify(users.get('bob')!, Buffer.from('b1')));
      assert.throws(() => setPassword(file, 'x:y', Buffer.from('p')), /cannot contain ":"/);
      fs.appendFileSync(file, 'broken\n');
      assert.throws(() => setPassword(file, 'carol', Buffer.from('p')), /line 4: expected user:hash/);
      assert.deepEqual(fs.readdirSync(dir), ['pw'], 'a temp file was left behind');
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
});

/** Records what it is given, as the broker's logger would write them. */
class Captured extends BaseLogger {
  readonly records: { msg: string; fields: Fields }[] = [];
  constructor(private readonly onRecord: (msg: string) => void) { super(); }
  enabled(): boolean { return true; }
  protected emit(_level: number, msg: string, fields: Fields | undefined): void {
    this.records.push({ msg, fields: fields ?? {} });
    this.onRecord(msg);
  }
}

describe('RefusalLog', () => {
  test('logs up to its limit per window, then one record counting the rest', async () => {
    let flushed: () => void = () => {};
    const suppressedLine = new Promise<void>((resolve) => { flushed = resolve; });
    const out = new Captured((m) => { if (/suppressed/.test(m)) flushed(); });
    const lines = out.records;
    const log = new RefusalLog(out, 3, 50);
    for (let i = 0; i < 10; i++) log.refused(`127.0.0.1:${1000 + i}`, i % 2 ? `u${i}` : null, 'bad username or password');
    assert.equal(lines.length, 3);
    assert.equal(lines[0].msg, 'auth: refused');
    assert.deepEqual(lines[0].fields, { kind: 'auth-refused', address: '127.0.0.1:1000', username: null, reason: 'bad username or password' });
    assert.deepEqual(lines[1].fields, { kind: 'auth-refused', address: '127.0.0.1:1001', username: 'u1', reason: 'bad username or password' });
    const keepAlive = setInterval(() => {}, 1000); // the log's own timer is unref'd, as in the broker
    try { await suppressedLine; } finally { clearInterval(keepAlive); }
    assert.match(lines[3].msg, /^7 more "auth-refused" records suppressed/);
    assert.equal(lines[3].fields.suppressed, 7);
    log.refused('127.0.0.1:2000', '"\n'.repeat(40), 'x');
    assert.equal(lines.length, 5);
    assert.ok(String(lines[4].fields.username).length <= 65, 'a username was not cut');
    log.close();
  });
});
