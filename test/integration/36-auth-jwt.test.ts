// 36: JWT authentication (--jwt-secret-file / --jwt-public-key-file / --jwt-jwks-file), tokens
// signed in this test with jose over keys made by node:crypto.
//
// - HS256 (secret file), RS256 (PEM public key), RS256 and ES256 (one JWKS file): valid tokens
//   connect (v3.1.1 and v5); expired, not yet valid, wrong key, wrong algorithm, `sub` not the
//   username (--jwt-username-claim sub), alg "none" and a password that is no JWT: 0x86 / 4.
// - ACL claims: the list format decides first and falls through to the ACL file; the
//   {pub, sub} format denies what it does not list; a will the claims do not allow: 0x87.
// - When the token expires the connection is closed: v5 DISCONNECT 0xA0, v3 closed; counted.
// - --jwt-from username with --jwt-issuer, --jwt-audience and --jwt-clientid-claim: each checked.
// - SIGHUP rereads the key: old tokens refused, new ones accepted, a bad file keeps the key.
// - No token ever appears in the broker's output (not even as a username); refusals are counted
//   and logged with the address.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as jose from 'jose';
import type { IConnackPacket, IDisconnectPacket, IPubackPacket, IPublishPacket } from 'mqtt-packet';
import { launchBroker, Broker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';
import { findRecords } from '../helpers/log-lines';
import { metric } from '../helpers/metrics';

let dir: string;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-auth-jwt-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const now = () => Math.floor(Date.now() / 1000);
const id = (p: string) => `${p}-${crypto.randomBytes(4).toString('hex')}`;
/** Every token made here, to check none reaches the broker's output. */
const tokens: string[] = [];

async function sign(claims: jose.JWTPayload, key: crypto.KeyObject | Uint8Array, alg: string, kid?: string): Promise<string> {
  const t = await new jose.SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);
  tokens.push(t);
  return t;
}

/** A raw CONNECT with the token as password; the CONNACK's code. */
async function code(port: number, version: 4 | 5, username: string | undefined, token: string | undefined): Promise<number> {
  const c = await RawClient.connect(port, version);
  try {
    const ack: IConnackPacket = await c.handshake({ clientId: id(`j${version}`), username, password: token === undefined ? undefined : Buffer.from(token) });
    return (version === 5 ? ack.reasonCode : ack.returnCode) ?? -1;
  } finally { c.destroy(); }
}


function assertNoToken(b: Broker): void {
  const out = b.output();
  for (const t of tokens) {
    const sig = t.split('.')[2];
    assert.ok(!out.includes(t) && (sig === '' || !out.includes(sig)), `a token is in the broker's output:\n${out}`);
  }
}

describe('HS256 from a secret file, sub = username, ACL claims in front of the ACL file', () => {
  const secret = crypto.randomBytes(32);
  let b: Broker;
  before(async () => {
    const file = path.join(dir, 'secret');
    fs.writeFileSync(file, `${secret.toString('hex')}\n`);
    const acl = path.join(dir, 'acl');
    fs.writeFileSync(acl, 'pattern readwrite shared/%u/#\n');
    b = await launchBroker(2, ['--jwt-secret-file', file, '--jwt-username-claim', 'sub', '--acl-file', acl, '--durability', 'none']);
  });
  after(async () => { await b?.kill(); });
  const key = () => new Uint8Array(Buffer.from(secret.toString('hex')));

  test('valid connects; expired, not yet valid, wrong key, sub != username, alg none, no JWT: 0x86 / 4; anonymous 0x87 / 5', { timeout: 120000 }, async () => {
    assert.match(b.output(), /authentication chain jwt; anonymous clients refused/);
    const refused = await metric(b, 'fleetmq_auth_jwt_refused_total');
    const valid = await sign({ sub: 'ann', exp: now() + 600 }, key(), 'HS256');
    const expired = await sign({ sub: 'ann', exp: now() - 10 }, key(), 'HS256');
    const early = await sign({ sub: 'ann', nbf: now() + 600 }, key(), 'HS256');
    const wrongKey = await sign({ sub: 'ann' }, crypto.randomBytes(32), 'HS256');
    const hs384 = await sign({ sub: 'ann' }, key(), 'HS384');
    const none = new jose.UnsecuredJWT({ sub: 'ann' }).encode();
    tokens.push(none);
    for (const v of [4, 5] as const) {
      const bad = v === 5 ? 0x86 : 4;
      assert.equal(await code(b.port, v, 'ann', valid), 0, `v${v} valid`);
      assert.equal(await code(b.port, v, 'bob', valid), bad, `v${v} sub is not the username`);
      assert.equal(await code(b.port, v, 'ann', expired), bad, `v${v} expired`);
      assert.equal(await code(b.port, v, 'ann', early), bad, `v${v} nbf in the future`);
      assert.equal(await code(b.port, v, 'ann', wrongKey), bad, `v${v} signed with another secret`);
      assert.equal(await code(b.port, v, 'ann', hs384), bad, `v${v} HS384 not in --jwt-algorithms`);
      assert.equal(await code(b.port, v, 'ann', none), bad, `v${v} alg none`);
      assert.equal(await code(b.port, v, 'ann', 'just-a-password'), bad, `v${v} not a JWT, no other method`);
      assert.equal(await code(b.port, v, undefined, undefined), v === 5 ? 0x87 : 5, `v${v} anonymous`);
    }
    assert.ok(await metric(b, 'fleetmq_auth_jwt_refused_total') >= refused + 12, 'refusals counted');
    assert.ok(findRecords(b.output(), { msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: 'ann', reason: /^JWT refused: ERR_JWT_EXPIRED/ }).length > 0, b.output());
    assertNoToken(b);
  });

  test('MQTT 5 enhanced authentication is not offered: an Authentication Method gets 0x8C and a close, before any token check; AUTH later is 0x82', { timeout: 60000 }, async () => {
    const refused = await metric(b, 'fleetmq_auth_jwt_refused_total');
    const valid = await sign({ sub: 'ann', exp: now() + 600 }, key(), 'HS256');
    for (const method of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) {
      const c = await RawClient.connect(b.port, 5);
      try {
        // [MQTT-4.12.0-1]: an unsupported method may be refused with 0x8C, and the connection closed.
        const ack = await c.handshake({ clientId: id('scram'), username: 'ann', password: Buffer.from(valid), properties: { authenticationMethod: method, authenticationData: Buffer.from('n,,n=ann,r=abc') } });
        assert.equal(ack.reasonCode, 0x8c, method);
        assert.ok(await c.waitClosed(10000), 'closed after 0x8C');
      } finally { c.destroy(); }
    }
    // The token was never looked at (the refusal comes first).
    assert.equal(await metric(b, 'fleetmq_auth_jwt_refused_total'), refused);
    // AUTH on a connection that did not name a method: a Protocol Error (§4.12, §3.15).
    const s = await rawSession(b.port, 5, { clientId: id('auth'), username: 'ann', password: Buffer.from(valid) });
    try {
      s.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } } as never);
      const rest = await s.expectClose('the broker to close after AUTH');
      assert.deepEqual(rest.map((p) => [p.cmd, (p as { reasonCode?: number }).reasonCode]), [['disconnect', 0x82]]);
    } finally { s.destroy(); }
  });

  test('ACL claims: a rule list first, then the ACL file; {pub, sub} denies the rest; a will the claims forbid: 0x87', { timeout: 60000 }, async () => {
    const listed = await sign({
      sub: 'lis', exp: now() + 600,
      acl: [
        { permission: 'allow', action: 'subscribe', topic: 'news/#' },
        { permission: 'deny', action: 'publish', topic: 'news/#' },
        { permission: 'allow', action: 'publish', topic: 'up/${username}' },
      ],
    }, key(), 'HS256');
    const lis = await rawSession(b.port, 5, { clientId: id('lis'), username: 'lis', password: Buffer.from(listed) });
    const old = await sign({ sub: 'old', exp: now() + 600, acl: { pub: ['up/%u'], sub: ['news/#'] } }, key(), 'HS256');
    const o = await rawSession(b.port, 5, { clientId: id('old'), username: 'old', password: Buffer.from(old) });
    try {
      assert.deepEqual((await lis.subscribe('news/#', 0, 1)).granted, [0], 'list: allow subscribe news/#');
      assert.deepEqual((await lis.subscribe('shared/lis/#', 0, 2)).granted, [0], 'list: no match, the ACL file allows %u');
      assert.deepEqual((await lis.subscribe('secret/#', 0, 3)).granted, [0x87], 'list: no match, the ACL file refuses');
      const puback = async (c: RawClient, topic: string, messageId: number): Promise<number> => {
        c.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId, retain: false, dup: false } as IPublishPacket);
        const a = await c.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === messageId, `PUBACK ${messageId}`);
        return a.reasonCode ?? 0;
      };
      assert.equal(await puback(lis, 'news/x', 10), 0x87, 'list: deny publish news/#');
      assert.equal(await puback(lis, 'up/lis', 11), 0, 'list: ${username} filled in');
      assert.equal(await puback(lis, 'up/other', 12), 0x87, 'list: no match, the file refuses');
      // Delivery is checked too: lis reads news/#; o publishes up/old (allowed) and nothing it may not.
      assert.deepEqual((await o.subscribe('news/#', 0, 1)).granted, [0], 'old format: sub news/#');
      assert.deepEqual((await o.subscribe('shared/old/#', 0, 2)).granted, [0x87], 'old format: not listed = denied, the file is not asked');
      assert.equal(await puback(o, 'up/old', 13), 0, 'old format: %u filled in');
      assert.equal(await puback(o, 'news/x', 14), 0x87, 'old format: sub only');
      // A will on a topic the claims do not let the client write: refused at CONNECT.
      const c = await RawClient.connect(b.port, 5);
      try {
        const ack = await c.handshake({ clientId: id('will'), username: 'lis', password: Buffer.from(listed), will: { topic: 'news/will', payload: Buffer.from('x'), qos: 0, retain: false } });
        assert.equal(ack.reasonCode, 0x87);
      } finally { c.destroy(); }
    } finally { lis.destroy(); o.destroy(); }
    assertNoToken(b);
  });

  test('the connection is closed when the token expires: v5 DISCONNECT 0xA0, v3 closed; a token without exp stays', { timeout: 60000 }, async () => {
    const before = await metric(b, 'fleetmq_auth_token_expired_disconnects_total');
    const short = await sign({ sub: 'eve', exp: now() + 3 }, key(), 'HS256');
    const forever = await sign({ sub: 'eve' }, key(), 'HS256');
    const v5 = await rawSession(b.port, 5, { clientId: id('exp5'), username: 'eve', password: Buffer.from(short) });
    const v3 = await rawSession(b.port, 4, { clientId: id('exp3'), username: 'eve', password: Buffer.from(short) });
    const stays = await rawSession(b.port, 5, { clientId: id('stay'), username: 'eve', password: Buffer.from(forever) });
    try {
      const d = await v5.waitFor<IDisconnectPacket>((p) => p.cmd === 'disconnect', 'DISCONNECT at expiry', 20000);
      assert.equal(d.reasonCode, 0xa0, 'Maximum connect time');
      assert.ok(await v5.waitClosed(10000), 'v5 connection closed after the DISCONNECT');
      assert.ok(await v3.waitClosed(20000), 'v3 connection closed at expiry');
      assert.deepEqual(v3.packets.filter((p) => p.cmd === 'disconnect'), [], 'no DISCONNECT to a v3 client');
      await stays.ping();
      assert.equal(await metric(b, 'fleetmq_auth_token_expired_disconnects_total'), before + 2);
    } finally { v5.destroy(); v3.destroy(); stays.destroy(); }
    assertNoToken(b);
  });
});

describe('RS256 from a PEM public key; RS256 and ES256 from a JWKS file', () => {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

  test('a PEM public key: RS256 signed by its private key connects, another key or alg is refused', { timeout: 60000 }, async () => {
    const pem = path.join(dir, 'rsa.pem');
    fs.writeFileSync(pem, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    const b = await launchBroker(1, ['--jwt-public-key-file', pem, '--durability', 'none']);
    try {
      assert.equal(await code(b.port, 5, 'r', await sign({ sub: 'r', exp: now() + 600 }, rsa.privateKey, 'RS256')), 0, 'RS256');
      assert.equal(await code(b.port, 4, 'r', await sign({ sub: 'r', exp: now() + 600 }, rsa.privateKey, 'RS256')), 0, 'RS256 v3.1.1');
      assert.equal(await code(b.port, 5, 'r', await sign({ sub: 'r' }, ec.privateKey, 'ES256')), 0x86, 'ES256 by a key that is not the PEM');
      assert.equal(await code(b.port, 5, 'r', await sign({ sub: 'r' }, rsa.privateKey, 'PS256')), 0x86, 'PS256 not in the default algorithms');
      assertNoToken(b);
    } finally { await b.kill(); }
  });

  test('a JWKS file: RS256 and ES256 by kid connect; a key not in it is refused', { timeout: 60000 }, async () => {
    const jwks = path.join(dir, 'jwks.json');
    const jwk = (k: crypto.KeyObject, kid: string, alg: string) => ({ ...k.export({ format: 'jwk' }), kid, alg, use: 'sig' });
    fs.writeFileSync(jwks, JSON.stringify({ keys: [jwk(rsa.publicKey, 'rsa-1', 'RS256'), jwk(ec.publicKey, 'ec-1', 'ES256')] }));
    const b = await launchBroker(1, ['--jwt-jwks-file', jwks, '--durability', 'none']);
    try {
      assert.equal(await code(b.port, 5, 'j', await sign({ exp: now() + 600 }, rsa.privateKey, 'RS256', 'rsa-1')), 0, 'RS256 from the JWKS');
      assert.equal(await code(b.port, 5, 'j', await sign({ exp: now() + 600 }, ec.privateKey, 'ES256', 'ec-1')), 0, 'ES256 from the JWKS');
      assert.equal(await code(b.port, 4, 'j', await sign({ exp: now() + 600 }, ec.privateKey, 'ES256', 'ec-1')), 0, 'ES256 v3.1.1');
      assert.equal(await code(b.port, 5, 'j', await sign({ exp: now() + 600 }, other.privateKey, 'ES256', 'ec-1')), 0x86, 'ES256 by another key under a known kid');
      assert.equal(await code(b.port, 5, 'j', await sign({ exp: now() + 600 }, other.privateKey, 'ES256', 'nope')), 0x86, 'unknown kid');
      assertNoToken(b);
    } finally { await b.kill(); }
  });

  test('bad key files stop the start with one line', { timeout: 60000 }, async () => {
    const { runCli } = await import('../helpers/broker');
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a key\n');
    const r = await runCli(['--port', '0', '--jwt-public-key-file', junk, '--durability', 'none']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /junk\.pem: not a PEM public key/);
    const both = await runCli(['--port', '0', '--jwt-public-key-file', junk, '--jwt-secret-file', junk]);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /give one of --jwt-secret-file, --jwt-public-key-file, --jwt-jwks-file/);
    // JWT is authentication: a non-loopback --host needs nothing more (the secure default).
    const secret = path.join(dir, 'exposed-secret');
    fs.writeFileSync(secret, 'exposed');
    const exposed = await runCli(['--port', '0', '--host', '0.0.0.0', '--workers', '1', '--jwt-secret-file', secret, '--durability', 'none']);
    assert.ok(exposed.listened, `did not start on 0.0.0.0 with JWT: ${exposed.stderr}`);
    assert.match(exposed.stdout, /authentication chain jwt; anonymous clients refused/);
    const chain = await runCli(['--port', '0', '--jwt-secret-file', secret, '--auth-chain', 'jwt,file']);
    assert.equal(chain.code, 2);
    assert.match(chain.stderr, /--auth-chain names file, which is not configured/);
  });
});

describe('SIGHUP rereads the JWT key', () => {
  test('a new secret: old tokens refused, new ones accepted, connected clients stay; a bad file keeps the key', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'rotating-secret');
    const first = crypto.randomBytes(32);
    const second = crypto.randomBytes(32);
    fs.writeFileSync(file, first);
    const b = await launchBroker(1, ['--jwt-secret-file', file, '--durability', 'none']);
    try {
      const old = await sign({ sub: 'rot' }, new Uint8Array(first), 'HS256');
      const fresh = await sign({ sub: 'rot' }, new Uint8Array(second), 'HS256');
      const stays = await rawSession(b.port, 5, { clientId: id('stays'), username: 'rot', password: Buffer.from(old) });
      try {
        assert.equal(await code(b.port, 5, 'rot', fresh), 0x86, 'the new secret before the reload');
        fs.writeFileSync(file, second);
        b.proc.kill('SIGHUP');
        await b.waitForOutput(/SIGHUP: jwt key reloaded/);
        assert.equal(await code(b.port, 5, 'rot', old), 0x86, 'the old secret after the reload');
        assert.equal(await code(b.port, 5, 'rot', fresh), 0, 'the new secret after the reload');
        await stays.ping();
        fs.writeFileSync(file, '');
        b.proc.kill('SIGHUP');
        await b.waitForOutput(/SIGHUP: jwt key not reloaded, the previous one stays in force: .*the secret is empty/);
        assert.equal(await code(b.port, 5, 'rot', fresh), 0, 'the previous key stays');
      } finally { stays.destroy(); }
      assertNoToken(b);
    } finally { await b.kill(); }
  });
});

describe('the token in the username, iss, aud and a client id claim', () => {
  test('each claim checked; refusals logged without the username (it is the token)', { timeout: 60000 }, async () => {
    const file = path.join(dir, 'secret-u');
    const secret = crypto.randomBytes(24);
    fs.writeFileSync(file, secret);
    const b = await launchBroker(1, ['--jwt-secret-file', file, '--jwt-from', 'username', '--jwt-issuer', 'fleet-issuer',
      '--jwt-audience', 'mqtt', '--jwt-clientid-claim', 'cid', '--durability', 'none']);
    try {
      const k = new Uint8Array(secret);
      const asUser = async (claims: jose.JWTPayload, clientId: string): Promise<number> => {
        const t = await sign({ iss: 'fleet-issuer', aud: 'mqtt', exp: now() + 600, ...claims }, k, 'HS256');
        const c = await RawClient.connect(b.port, 5);
        try { return (await c.handshake({ clientId, username: t })).reasonCode ?? -1; } finally { c.destroy(); }
      };
      assert.equal(await asUser({ cid: 'dev-1' }, 'dev-1'), 0, 'all claims hold, no password at all');
      assert.equal(await asUser({ cid: 'dev-1' }, 'dev-2'), 0x86, 'client id claim differs');
      assert.equal(await asUser({ cid: 'dev-1', iss: 'someone-else' }, 'dev-1'), 0x86, 'wrong iss');
      assert.equal(await asUser({ cid: 'dev-1', aud: 'web' }, 'dev-1'), 0x86, 'wrong aud');
      assert.ok(findRecords(b.output(), { msg: 'auth: refused', address: /^127\.0\.0\.1:\d+$/, username: '(a token)', reason: /^JWT refused/ }).length > 0, b.output());
      assertNoToken(b);
    } finally { await b.kill(); }
  });
});
