// The ACL file (src/auth/acl.ts): Mosquitto's acl_file syntax, its precedence (as
// mosquitto_acl_check_default in Mosquitto's src/security_default.c decides), %c / %u patterns,
// $ topics, the SUBSCRIBE check (a filter is refused only when it can read nothing), and
// malformed files named by line.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAclFile, readAclFile, ruleCount, Acl, AclFileError, READ, WRITE, DENY, intersect, covers } from '../../src/auth/acl';

const FILE = [
  '# anonymous clients: the lines before any `user` line',
  'topic read public/#',
  '',
  '   topic deny public/secret',
  'user alice',
  'topic readwrite alice/#',
  'topic read shared/+/status',
  'topic deny alice/private',
  'topic write shared/cmd',
  'topic read $SYS/broker/#',
  'user bob',
  'topic read #',
  'topic bob/free',
  'pattern readwrite clients/%c/#',
  'pattern read users/%u/inbox',
  'pattern deny clients/%c/locked',
  '',
].join('\r\n');

const acl = new Acl(parseAclFile(FILE, 'acl'));

describe('parseAclFile', () => {
  test('sections, access words, default readwrite, CRLF, comments and blank lines', () => {
    const r = parseAclFile(FILE, 'acl');
    assert.deepEqual(r.anonymous!.map((x) => [x.topic, x.access, x.line]), [['public/#', READ, 2], ['public/secret', DENY, 4]]);
    assert.deepEqual(r.users.map(([u, l]) => [u, l.length]), [['alice', 5], ['bob', 2]]);
    assert.deepEqual(r.users[1][1][1], { topic: 'bob/free', access: READ | WRITE, line: 13 });
    assert.deepEqual(r.patterns.map((x) => x.access), [READ | WRITE, READ, DENY]);
    assert.equal(ruleCount(r), 2 + 7 + 3);
  });

  test('as Mosquitto: the topic is the rest of the line, a username may hold spaces, a user section may come back', () => {
    const r = parseAclFile('user bob smith\ntopic read a b/c\nuser x\ntopic y\nuser bob smith\ntopic write z\n', 'f');
    assert.deepEqual(r.users.map(([u, l]) => [u, l.map((x) => x.topic)]), [['bob smith', ['a b/c', 'z']], ['x', ['y']]]);
    assert.equal(r.anonymous, null);
  });

  test('names the file, the line and what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['topic read a\ntopic\n', /^f: line 2: `topic` needs a topic$/],
      ['\n\ntopic readonly a/b\n', /^f: line 3: access must be read, write, readwrite or deny, got "readonly"$/],
      ['topic read a/#/b\n', /^f: line 1: invalid topic "a\/#\/b": # must be a whole level and the last one$/],
      ['pattern write a+/b\n', /^f: line 1: invalid topic "a\+\/b": \+ must be a whole level$/],
      ['user\n', /^f: line 1: `user` needs a username$/],
      ['topic a\nallow a\n', /^f: line 2: expected "topic", "pattern" or "user", got "allow"$/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseAclFile(text, 'f'), (e: Error) => e instanceof AclFileError && re.test(e.message), text);
  });

  test('readAclFile: a missing file is one clear line', () => {
    const f = path.join(os.tmpdir(), `fleetmq-no-such-acl-${process.pid}`);
    assert.throws(() => readAclFile(f), (e: Error) => e instanceof AclFileError && e.message === `${f}: cannot read: ENOENT`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-acl-'));
    try {
      fs.writeFileSync(path.join(dir, 'acl'), 'topic read a\n');
      assert.equal(ruleCount(readAclFile(path.join(dir, 'acl'))), 1);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
});

// [client id, username (null: anonymous), access, topic, allowed]
type Case = [string, string | null, number, string, boolean];
const CASES: Case[] = [
  // Anonymous section.
  ['c1', null, READ, 'public/news', true],
  ['c1', null, READ, 'public', true], // 'public/#' matches its parent [MQTT-4.7.1-2]
  ['c1', null, WRITE, 'public/news', false],
  ['c1', null, READ, 'public/secret', false], // deny wins, though written after the allow
  ['c1', null, READ, 'public/secret/x', true], // the deny covers that one topic only
  ['c1', null, READ, 'elsewhere', false], // nothing matches: refused
  // Patterns apply to anonymous clients too, %u patterns do not.
  ['c1', null, WRITE, 'clients/c1/up', true],
  ['c1', null, WRITE, 'clients/c2/up', false],
  ['c1', null, READ, 'clients/c1/locked', false], // deny pattern
  ['c1', null, READ, 'users//inbox', false],
  // A user's own section; the anonymous section does not apply to users.
  ['a1', 'alice', READ, 'alice/x', true],
  ['a1', 'alice', WRITE, 'alice/x/y', true],
  ['a1', 'alice', READ, 'alice', true],
  ['a1', 'alice', READ, 'alice/private', false],
  ['a1', 'alice', WRITE, 'alice/private', false],
  ['a1', 'alice', READ, 'shared/dev1/status', true],
  ['a1', 'alice', WRITE, 'shared/dev1/status', false],
  ['a1', 'alice', WRITE, 'shared/cmd', true],
  ['a1', 'alice', READ, 'shared/cmd', false],
  ['a1', 'alice', READ, 'public/news', false],
  ['a1', 'alice', READ, 'users/alice/inbox', true], // %u
  ['a1', 'alice', WRITE, 'users/alice/inbox', false],
  ['a1', 'alice', READ, 'users/bob/inbox', false],
  ['a1', 'alice', WRITE, 'clients/a1/x', true], // %c
  // $ topics match only rules starting with $ [MQTT-4.7.2-1].
  ['a1', 'alice', READ, '$SYS/broker/uptime', true],
  ['b1', 'bob', READ, '$SYS/broker/uptime', false], // 'topic read #' does not reach $SYS
  // A user's own allow is decided before the patterns: bob reads everything, even a pattern's deny.
  ['b1', 'bob', READ, 'clients/b1/locked', true],
  // ... but a write his section does not grant falls through to them, and there the deny wins.
  ['b1', 'bob', WRITE, 'clients/b1/locked', false],
  ['b1', 'bob', WRITE, 'clients/b1/x', true],
  ['b1', 'bob', WRITE, 'bob/free', true],
  ['b1', 'bob', WRITE, 'alice/x', false],
  // A user without a section: patterns only.
  ['k1', 'carol', READ, 'public/news', false],
  ['k1', 'carol', WRITE, 'clients/k1/x', true],
  ['k1', 'carol', READ, 'users/carol/inbox', true],
  // A client id or username holding + or # gets nothing from patterns (it could widen them)...
  ['c+', null, WRITE, 'clients/c+/x', false],
  ['k1', 'car#', READ, 'users/car#/inbox', false],
  // ... while its own section still applies.
  ['x#', 'alice', READ, 'alice/x', true],
  ['x#', 'alice', WRITE, 'clients/x#/x', false],
  // Substitution is textual, as Mosquitto's: a / in the client id adds a level.
  ['a/b', null, WRITE, 'clients/a/b/x', true],
];

describe('Acl decisions (Mosquitto precedence)', () => {
  for (const [id, user, access, topic, want] of CASES) {
    test(`${user ?? '(anonymous)'} [${id}] ${access === READ ? 'read' : 'write'} ${topic} -> ${want ? 'allowed' : 'refused'}`, () => {
      assert.equal(acl.forClient(id, user).allows(topic, access), want);
    });
  }

  test('an empty file refuses everything; patterns without %c / %u apply to everyone', () => {
    assert.equal(new Acl(parseAclFile('', 'f')).forClient('c', null).allows('a', READ), false);
    const a = new Acl(parseAclFile('pattern read x/#\n', 'f'));
    assert.equal(a.forClient('c', null).allows('x/1', READ), true);
    assert.equal(a.forClient('c', 'u').allows('x/1', READ), true);
    assert.equal(a.forClient('c', 'u').allows('x/1', WRITE), false);
  });
});

// [client id, username, filter, may subscribe]
type SubCase = [string, string | null, string, boolean];
const SUB_CASES: SubCase[] = [
  ['c1', null, 'public/#', true],
  ['c1', null, 'public/+', true],
  ['c1', null, '#', true], // reads public/... at least; delivery withholds the rest
  ['c1', null, 'public/secret', false], // a deny covers it whole
  ['c1', null, 'elsewhere/#', false], // no rule lets it read anything there
  ['c1', null, 'clients/c1/#', true],
  ['c1', null, 'clients/+/x', true], // clients/c1/x at least
  ['c1', null, 'clients/c1/locked', false], // the deny pattern covers it
  ['c1', null, '$SYS/#', false],
  ['a1', 'alice', 'alice/private', false],
  ['a1', 'alice', 'alice/private/x', true],
  ['a1', 'alice', 'alice/+', true],
  ['a1', 'alice', 'shared/cmd', false], // write only
  ['a1', 'alice', 'shared/+/+', true],
  ['a1', 'alice', '$SYS/broker/load/#', true],
  ['a1', 'alice', '$SYS/other', false],
  ['b1', 'bob', 'clients/b1/locked', true], // his section reads it before the pattern's deny
  ['b1', 'bob', '$SYS/#', false],
  ['k1', 'carol', 'users/carol/inbox', true],
  ['k1', 'carol', 'users/+/inbox', true],
  ['k1', 'carol', 'users/bob/inbox', false],
];

describe('maySubscribe', () => {
  for (const [id, user, filter, want] of SUB_CASES) {
    test(`${user ?? '(anonymous)'} [${id}] subscribe ${filter} -> ${want ? 'granted' : 'refused'}`, () => {
      assert.equal(acl.forClient(id, user).maySubscribe(filter), want);
    });
  }

  test('never refuses a filter that matches a readable topic (exhaustive over a small universe)', () => {
    const words = ['a', 'b', '$s'];
    const topics: string[] = [];
    const grow = (prefix: string[], depth: number): void => {
      if (prefix.length > 0) topics.push(prefix.join('/'));
      if (depth === 0) return;
      for (const w of words) if (prefix.length === 0 || w !== '$s') grow([...prefix, w], depth - 1);
    };
    grow([], 3);
    const filters: string[] = [];
    const growF = (prefix: string[], depth: number): void => {
      if (prefix.length > 0) filters.push(prefix.join('/'));
      if (depth === 0 || prefix[prefix.length - 1] === '#') return;
      for (const w of ['a', 'b', '$s', '+', '#']) if (prefix.length === 0 || w !== '$s') growF([...prefix, w], depth - 1);
    };
    growF([], 3);
    const files = [
      'topic read a/#\ntopic deny a/b\n',
      'topic read +/+\ntopic deny a/+\npattern read b/#\npattern deny b/%c\n',
      'topic read #\ntopic deny +/a/#\ntopic read $s/#\n',
      'pattern read %c/#\npattern deny a/a\ntopic write a/#\n',
    ];
    let checked = 0;
    for (const text of files) {
      const client = new Acl(parseAclFile(text, 'f')).forClient('a', null);
      for (const f of filters) {
        const fl = f.split('/');
        const readable = topics.some((t) => covers(fl, t.split('/')) && client.allows(t, READ));
        if (readable) assert.equal(client.maySubscribe(f), true, `${JSON.stringify(text)}: ${f} matches a readable topic`);
        checked++;
      }
    }
    assert.ok(checked > 100);
  });

  test('filter intersection and cover', () => {
    const s = (x: string) => x.split('/');
    assert.deepEqual(intersect(s('a/+/c'), s('a/b/#')), ['a', 'b', 'c']);
    assert.deepEqual(intersect(s('a/#'), s('a')), ['a']);
    assert.equal(intersect(s('a/b'), s('a/c')), null);
    assert.equal(intersect(s('#'), s('$SYS/x')), null);
    assert.deepEqual(intersect(s('$SYS/+'), s('$SYS/#')), ['$SYS', '+']);
    assert.equal(covers(s('a/#'), s('a')), true);
    assert.equal(covers(s('a/+'), s('a/#')), false);
    assert.equal(covers(s('+/b'), s('a/b')), true);
    assert.equal(covers(s('#'), s('$SYS/#')), false);
  });
});
