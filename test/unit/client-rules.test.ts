// Per-client ACL rules from an HTTP callout answer or a JWT claim (src/auth/client-rules.ts),
// the callout answer's reading (src/auth/http-callout.ts `interpret`) and the worker's decisions
// with them (workers/auth/client-acl.ts), in front of an ACL file's checker or alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { parseClientRules, ClientRulesError, fillIn } from '../../src/auth/client-rules';
import { interpret } from '../../src/auth/http-callout';
import { parseAclFile } from '../../src/auth/acl';
import { AclGate } from '../../workers/auth/acl-gate';
import { ClientAcl } from '../../workers/auth/client-acl';
import { onceEvent } from '../helpers/wait';

const noCount = () => undefined;

test('the two formats parse; bad lists are refused with a reason', () => {
  const list = parseClientRules([{ permission: 'deny', action: 'all', topic: 'eq a/#' }, { permission: 'allow', action: 'publish', topic: 'x/+' }]);
  assert.equal(list.noMatch, 'next');
  assert.deepEqual(list.rules[0], { allow: false, access: 3, topic: 'a/#', eq: true });
  const old = parseClientRules({ pub: ['p'], sub: ['s/#'], all: ['b'] });
  assert.equal(old.noMatch, 'deny');
  assert.deepEqual(old.rules.map((r) => [r.topic, r.access]), [['p', 2], ['s/#', 1], ['b', 3]]);
  // Narrowing fields are not evaluated: an allow with them grants nothing, a deny denies wider.
  const narrowed = parseClientRules([{ permission: 'allow', action: 'publish', topic: 'q', qos: [1] }, { permission: 'deny', action: 'publish', topic: 'r', retain: true }]);
  assert.deepEqual(narrowed.rules, [{ allow: false, access: 2, topic: 'r', eq: false }]);
  assert.throws(() => parseClientRules([{ permission: 'allow', action: 'all', topic: 't', when: 'always' }]), /unknown field "when"/);
  for (const bad of [[{ permission: 'maybe', action: 'all', topic: 't' }], [{ permission: 'allow', action: 'read', topic: 't' }],
    [{ permission: 'allow', action: 'all', topic: 'a/#/b' }], [{ permission: 'allow', action: 'all', topic: 'a+' }], { pub: 't' }, { write: ['t'] }, 'acl', 7,
    Array(1001).fill({ permission: 'allow', action: 'all', topic: 't' })]) {
    assert.throws(() => parseClientRules(bad), ClientRulesError, JSON.stringify(bad).slice(0, 80));
  }
});

test('placeholders: filled in; a missing username or a wildcard in an allow skips the rule', () => {
  const [r] = parseClientRules([{ permission: 'allow', action: 'all', topic: 'd/${clientid}/%u/${username}' }]).rules;
  assert.equal(fillIn(r, 'c1', 'u1'), 'd/c1/u1/u1');
  assert.equal(fillIn(r, 'c1', null), null);
  assert.equal(fillIn(r, 'c+', 'u'), null);
  const [d] = parseClientRules([{ permission: 'deny', action: 'all', topic: 'd/%c' }]).rules;
  assert.equal(fillIn(d, 'c#', 'u'), 'd/c#', 'a deny is only widened');
});

test('callout answers as EMQX reads them', () => {
  assert.deepEqual(interpret(204, ''), { result: 'allow', superuser: false, rules: null });
  assert.deepEqual(interpret(404, 'x'), { result: 'ignore' });
  assert.equal(interpret(500, '').result, 'down');
  assert.equal(interpret(200, 'not json').result, 'down');
  assert.equal(interpret(200, '{"result":"maybe"}').result, 'down');
  assert.equal(interpret(200, '{"result":"allow","acl":[{"permission":"x"}]}').result, 'down', 'a bad ACL fails closed');
  assert.deepEqual(interpret(200, '{"result":"deny","is_superuser":true}'), { result: 'deny' });
  const a = interpret(200, '{"result":"allow","is_superuser":true,"acl":{"sub":["t"]}}');
  assert.ok(a.result === 'allow' && a.superuser && a.rules?.noMatch === 'deny');
});

test('decisions: first match wins, no match falls to the ACL file (list) or is refused ({pub, sub})', async () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const gate = new AclGate({ rules: parseAclFile('pattern readwrite own/%c/#\n', 'f'), generation: 1 }, port2, 8, noCount);
    const file = gate.forClient('c1', 'u1');
    const list = new ClientAcl(parseClientRules([
      { permission: 'deny', action: 'subscribe', topic: 'news/private/#' },
      { permission: 'allow', action: 'subscribe', topic: 'news/#' },
      { permission: 'allow', action: 'publish', topic: 'up/${username}' },
      { permission: 'deny', action: 'all', topic: 'eq own/c1/#' },
    ]), 'c1', 'u1', file, 8, noCount);
    assert.equal(list.mayRead('news/a'), true);
    assert.equal(list.mayRead('news/private/a'), false);
    assert.equal(list.maySubscribe('news/#'), true, 'partly denied: granted, delivery decides');
    assert.equal(list.maySubscribe('news/private/+'), false);
    assert.equal(list.mayWrite('up/u1'), true);
    assert.equal(list.mayWrite('up/u2'), false, 'no rule: the file refuses');
    assert.equal(list.mayWrite('own/c1/x'), true, 'no rule (eq matches only the filter itself): the file allows');
    assert.equal(list.maySubscribe('own/c1/#'), false, 'eq: the filter itself is denied');
    assert.equal(list.mayRead('elsewhere'), false);
    // The ACL file reloaded (posted to the gate, as the main thread does): what fell to it follows.
    const ack = onceEvent(port1 as unknown as NodeJS.EventEmitter, 'message', 'the reload acknowledged');
    port1.postMessage({ t: 'acl', rules: parseAclFile('', 'f'), generation: 2 });
    await ack;
    assert.equal(list.mayWrite('own/c1/x'), false, 'decided by the reloaded file, not a cached answer');
    assert.equal(list.mayWrite('up/u1'), true, 'the rules still decide theirs');
    const alone = new ClientAcl(parseClientRules([{ permission: 'deny', action: 'publish', topic: 'x' }]), 'c', null, null, 8, noCount);
    assert.equal(alone.mayWrite('x'), false);
    assert.equal(alone.mayWrite('y'), true, 'no ACL file: what no rule matches is allowed');
    const old = new ClientAcl(parseClientRules({ sub: ['s/#'] }), 'c', null, file, 8, noCount);
    assert.equal(old.mayRead('s/1'), true);
    assert.equal(old.mayRead('own/c/1'), false, '{pub, sub}: no match is refused, the file is not asked');
    assert.equal(old.maySubscribe('#'), true, '# meets s/#: granted, delivery decides');
    assert.equal(old.maySubscribe('t/#'), false);
    // $ topics: wildcards at the first level do not reach them [MQTT-4.7.2-1].
    const all = new ClientAcl(parseClientRules([{ permission: 'allow', action: 'all', topic: '#' }]), 'c', null, null, 8, noCount);
    const none = new ClientAcl(parseClientRules({ all: ['#'] }), 'c', null, null, 8, noCount);
    assert.equal(all.mayRead('$SYS/x'), true, 'no match: allowed without a file');
    assert.equal(none.mayRead('$SYS/x'), false);
  } finally { port1.close(); port2.close(); }
});
