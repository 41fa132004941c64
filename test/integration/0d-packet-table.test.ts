// 0d: every entry of the shared packet table (test/fixtures/packets.ts) sent to the real
// broker as raw bytes, checking the reaction the table states. After the case's bytes the test
// sends a PINGREQ: a PINGRESP proves the connection stayed open and everything before it was
// processed; a close proves the broker refused. Cases are independent connections, so they run
// concurrently (the whole table takes about one round trip when the broker behaves).
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { PACKETS, PacketCase, Reaction } from '../fixtures/packets';
import { waitUntil } from '../helpers/wait';
import { BrokerHandle } from '../helpers/broker';
import { RawClient, decodeAll, connackCode, Packet } from '../helpers/raw-client';
import { eachWorkerCount } from '../helpers/suite';

const CASE_MS = 8000;

function codeOf(p: Packet): number | undefined {
  const x = p as { reasonCode?: number; returnCode?: number; granted?: Array<number | { qos: number }> };
  if (p.cmd === 'suback') { const g = x.granted?.[0]; return typeof g === 'number' ? g : g?.qos; }
  if (p.cmd === 'connack') return connackCode(p);
  // mqtt-packet decodes a v5 UNSUBACK's reason codes into `granted`, one per filter (§3.11.3).
  if (p.cmd === 'unsuback') { const g = x.granted?.[0]; return typeof g === 'number' ? g : 0; }
  return x.reasonCode ?? x.returnCode ?? 0;
}

interface Observation { packets: Packet[]; closed: boolean; pong: boolean; parseError?: string }

/** Returns null when `obs` satisfies `r`, else what is wrong. */
function check(r: Reaction, obs: Observation, c: PacketCase): string | null {
  let rest = obs.packets.slice();
  if (r.reply) {
    const first = rest.shift();
    if (!first) return `expected ${r.reply.cmd.toUpperCase()}, got nothing`;
    if (first.cmd !== r.reply.cmd) return `expected ${r.reply.cmd.toUpperCase()}, got ${first.cmd.toUpperCase()} (code 0x${(codeOf(first) ?? 0).toString(16)})`;
    const code = codeOf(first);
    if (r.reply.codes && !r.reply.codes.includes(code ?? -1)) return `expected ${r.reply.cmd.toUpperCase()} with code in [${r.reply.codes.map((x) => '0x' + x.toString(16))}], got 0x${(code ?? -1).toString(16)}`;
  }
  if (r.after === 'open') {
    if (obs.closed) return `expected the connection to stay open, the broker closed it (after ${obs.packets.map((p) => p.cmd).join(', ') || 'nothing'})`;
    if (rest.length) return `unexpected ${rest.map((p) => p.cmd.toUpperCase()).join(', ')}`;
    return null;
  }
  if (obs.pong) return 'expected the broker to close the connection; it answered the PINGREQ sent after the packet';
  if (!obs.closed) return 'expected the broker to close the connection; still open';
  if (r.reply) return rest.length ? `unexpected ${rest.map((p) => p.cmd).join(', ')} before close` : null;
  if (rest.length > 1) return `more than one packet before close: ${rest.map((p) => p.cmd).join(', ')}`;
  if (rest.length === 1) {
    const p = rest[0];
    const allowedCmd = c.when === 'first' ? 'connack' : 'disconnect';
    if (p.cmd !== allowedCmd && !(c.version === 5 && p.cmd === 'disconnect')) return `unexpected ${p.cmd.toUpperCase()} before close`;
    const code = codeOf(p) ?? 0;
    if (r.closeCodes) {
      if (!r.closeCodes.includes(code)) return `${p.cmd.toUpperCase()} 0x${code.toString(16)} before close; allowed: ${r.closeCodes.length ? r.closeCodes.map((x) => '0x' + x.toString(16)).join(', ') : 'nothing at all'}`;
    } else if (p.cmd === 'connack' ? code === 0 : code < 0x80) {
      return `${p.cmd.toUpperCase()} with success code 0x${code.toString(16)} before close`;
    }
  }
  return null;
}

async function runCase(broker: BrokerHandle, c: PacketCase): Promise<void> {
  const raw = await RawClient.open(broker, c.version === 3 ? 4 : c.version);
  try {
    if (c.when === 'connected') {
      const ack = await raw.handshake({ protocolVersion: c.version, protocolId: c.version === 3 ? 'MQIsdp' : 'MQTT' });
      assert.equal(connackCode(ack), 0, 'setup CONNECT refused');
      raw.packets.length = 0;
    }
    raw.write(c.bytes);
    raw.write([0xc0, 0x00]); // PINGREQ
    // The case may itself be a PINGREQ: then the PINGRESP proving "still open" is the second one.
    const wantPongs = c.expect.reply?.cmd === 'pingresp' ? 2 : 1;
    const pongs = () => raw.packets.filter((p) => p.cmd === 'pingresp').length;
    try {
      await waitUntil(() => raw.closed || pongs() >= wantPongs || !!raw.parseError, 'close or PINGRESP', CASE_MS);
    } catch {
      assert.fail(`${c.name}: within ${CASE_MS} ms the broker neither closed the connection nor answered a PINGREQ sent after the packet; received ${raw.describe()}`);
    }
    if (raw.parseError && !raw.closed) await waitUntil(() => raw.closed, 'close after unparseable reply', 2000).catch(() => undefined);
    const pong = pongs() >= wantPongs;
    // The spec orders acknowledgements among themselves, not against PINGRESP: a PUBACK that
    // waits for the store may come after the PINGRESP. So when a reply is expected, wait for it too.
    const replyCmds = [c.expect.reply?.cmd, c.expect.alt?.reply?.cmd].filter((x): x is NonNullable<typeof x> => !!x && x !== 'pingresp');
    if (pong && replyCmds.length) {
      await waitUntil(() => raw.closed || raw.packets.some((p) => replyCmds.includes(p.cmd)), `a ${replyCmds.join('/')}`, CASE_MS).catch(() => undefined);
    }
    // Our PINGRESP is not part of the observation (for a PINGREQ case, one of the two is).
    const packets = raw.packets.slice();
    if (pong) { let drop = 1; for (let i = packets.length - 1; i >= 0 && drop > 0; i--) if (packets[i].cmd === 'pingresp') { packets.splice(i, 1); drop--; } }
    const obs: Observation = { packets, closed: raw.closed && !pong, pong };
    if (raw.parseError) assert.fail(`${c.name}: broker sent bytes that mqtt-packet cannot parse: ${raw.parseError.message} (${raw.describe()})`);
    const err = check(c.expect, obs, c);
    const altErr = err && c.expect.alt ? check(c.expect.alt, obs, c) : err;
    if (err && altErr) assert.fail(`${c.name}${c.spec ? ` ${c.spec}` : ''}: ${err}${c.expect.alt ? ` (alternative: ${altErr})` : ''}; received ${raw.describe()}`);
  } finally {
    raw.destroy();
  }
}

describe('0d fixture table: self-consistency', () => {
  it('names are unique', () => {
    const seen = new Set<string>();
    for (const c of PACKETS) { assert.ok(!seen.has(c.name), `duplicate name ${c.name}`); seen.add(c.name); }
  });
  for (const c of PACKETS.filter((x) => x.decoded)) {
    it(`decodes with mqtt-packet: ${c.name}`, () => {
      const [p] = decodeAll(c.bytes, c.version === 3 ? 4 : c.version);
      assertSubset(p, c.decoded, c.name);
    });
  }
});

function assertSubset(actual: unknown, expected: unknown, where: string): void {
  if (Buffer.isBuffer(expected)) { assert.ok(Buffer.isBuffer(actual) && actual.equals(expected), `${where}: ${String(actual)} != ${expected.toString()}`); return; }
  if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${where}: not an object`);
    for (const [k, v] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[k], v, `${where}.${k}`);
    return;
  }
  assert.equal(actual, expected, where);
}

/**
 * Isolation: a refused or malformed packet on one connection must not affect any other
 * connection. Cases run one
 * at a time here so the first case that breaks the broker for others is named.
 */
async function checkIsolation(broker: BrokerHandle): Promise<void> {
  const healthy = await RawClient.open(broker, 5);
  try {
    assert.equal(connackCode(await healthy.handshake({})), 0, 'healthy client connects');
    for (const c of PACKETS.filter((x) => x.expect.after === 'closed')) {
      const bad = await RawClient.open(broker, c.version === 3 ? 4 : c.version);
      try {
        if (c.when === 'connected') await bad.handshake({ protocolVersion: c.version }).catch(() => undefined);
        bad.write(c.bytes);
        await bad.expectClose(`the broker to close after "${c.name}"`, CASE_MS).catch(() => undefined);
      } finally { bad.destroy(); }
      await healthy.ping().catch((e: Error) => assert.fail(`after "${c.name}" on another connection, an established client stopped working: ${e.message}`));
      for (const v of [4, 5] as const) {
        const fresh = await RawClient.open(broker, v);
        try {
          const ack = await fresh.handshake({}).catch((e: Error) => assert.fail(`after "${c.name}" on another connection, a valid v${v} CONNECT failed: ${e.message}`));
          assert.equal(connackCode(ack), 0, `after "${c.name}" on another connection, a valid v${v} CONNECT got CONNACK 0x${connackCode(ack).toString(16)}`);
        } finally { fresh.destroy(); }
      }
    }
  } finally { healthy.destroy(); }
}

eachWorkerCount('0d packet table: isolation', (broker) => {
  it('a refused or malformed packet never affects other connections (established or new) on the same broker', () => checkIsolation(broker()));
}, { workers: [1] });

eachWorkerCount('0d packet table against the broker', (broker) => {
  describe('cases', { concurrency: true }, () => {
    for (const c of PACKETS) {
      it(`${c.when === 'first' ? '[first packet] ' : ''}v${c.version} ${c.name}`, () => runCase(broker(), c));
    }
  });
});
