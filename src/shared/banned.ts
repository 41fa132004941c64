// The banned list: client ids (exact, or a prefix), usernames and peer addresses (exact, or a
// CIDR block) that may not connect. The main thread owns the list (src/main/banned-service.ts:
// the config file's `banned` key, --banned-file, and what the admin API adds); every worker holds
// its own BanMatcher built from the entries the main thread posts on every change. Posted, not
// shared memory: the list changes rarely (a reload, an API call), while a table of strings in a
// SharedArrayBuffer would need its own encoding and locking; a structured clone per change costs
// nothing on the CONNECT path, where a check is a few Set lookups plus a short CIDR list.
import * as net from 'node:net';

export type BanKind = 'clientid' | 'clientid-prefix' | 'username' | 'address';
export const BAN_KINDS: readonly BanKind[] = ['clientid', 'clientid-prefix', 'username', 'address'];

/** One entry. `expiresAt`: ms since the epoch, 0 = never. `source`: where it came from. */
export interface BanEntry {
  kind: BanKind;
  value: string;
  expiresAt: number;
  source: 'config' | 'file' | 'api';
}

export class BannedError extends Error {}

/** Bounds: a banned list is for a handful of abusers, not a firewall. */
export const MAX_BANS = 100_000;
export const MAX_PREFIXES = 256;
export const MAX_CIDRS = 1024;

/** IPv4-mapped IPv6 (::ffff:1.2.3.4, what a dual-stack socket reports) as plain IPv4. */
export function plainAddress(addr: string): string {
  return addr.startsWith('::ffff:') && net.isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

/** Checks one entry's value; returns its normal form or throws BannedError naming the problem. */
export function normalBan(kind: string, value: unknown): { kind: BanKind; value: string } {
  if (!BAN_KINDS.includes(kind as BanKind)) throw new BannedError(`unknown kind ${JSON.stringify(kind)} (expected one of ${BAN_KINDS.join(', ')})`);
  if (typeof value !== 'string' || value === '' || value.length > 65535 || /[\r\n]/.test(value)) {
    throw new BannedError(`${kind}: expected a non-empty one-line string, got ${JSON.stringify(value)}`);
  }
  if (kind !== 'address') return { kind: kind as BanKind, value };
  const slash = value.indexOf('/');
  const ip = plainAddress(slash < 0 ? value : value.slice(0, slash));
  const family = net.isIP(ip);
  if (family === 0) throw new BannedError(`address: ${JSON.stringify(value)} is not an IP address or CIDR block`);
  if (slash < 0) return { kind: 'address', value: ip };
  const bits = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) throw new BannedError(`address: ${JSON.stringify(value)} has a bad prefix length`);
  return { kind: 'address', value: `${ip}/${Number(bits)}` };
}

/**
 * `--banned-file`: one entry per line, `KIND VALUE`, KIND one of clientid, clientid-prefix,
 * username, address (an IP or a CIDR block); `#` comments and blank lines are ignored. Throws
 * BannedError naming the line.
 */
export function parseBannedFile(text: string, name: string): BanEntry[] {
  const out: BanEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const sp = line.search(/\s/);
    if (sp < 0) throw new BannedError(`${name}: line ${i + 1}: expected "KIND VALUE" (KIND: ${BAN_KINDS.join(', ')})`);
    try {
      out.push({ ...normalBan(line.slice(0, sp), line.slice(sp).trim()), expiresAt: 0, source: 'file' });
    } catch (err) {
      throw new BannedError(`${name}: line ${i + 1}: ${(err as Error).message}`);
    }
  });
  return out;
}

/**
 * The config file's `banned` key: {"clientIds": [...], "clientIdPrefixes": [...], "usernames":
 * [...], "addresses": [...]}, every field optional.
 */
export function parseBannedConfig(v: unknown, where: string): BanEntry[] {
  if (v === undefined) return [];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BannedError(`${where}: expected an object with clientIds, clientIdPrefixes, usernames, addresses`);
  const fields: Record<string, BanKind> = { clientIds: 'clientid', clientIdPrefixes: 'clientid-prefix', usernames: 'username', addresses: 'address' };
  const out: BanEntry[] = [];
  for (const [k, list] of Object.entries(v as Record<string, unknown>)) {
    const kind = fields[k];
    if (!kind) throw new BannedError(`${where}: unknown key ${JSON.stringify(k)} (expected ${Object.keys(fields).join(', ')})`);
    if (!Array.isArray(list)) throw new BannedError(`${where}.${k}: expected an array of strings`);
    list.forEach((x, i) => {
      try { out.push({ ...normalBan(kind, x), expiresAt: 0, source: 'config' }); } catch (err) { throw new BannedError(`${where}.${k}[${i}]: ${(err as Error).message}`); }
    });
  }
  return out;
}

/** What a worker checks each CONNECT against. */
export class BanMatcher {
  private readonly clientIds = new Map<string, number>();
  private readonly usernames = new Map<string, number>();
  private readonly addresses = new Map<string, number>();
  private readonly prefixes: { value: string; expiresAt: number }[] = [];
  private readonly cidrs: { list: net.BlockList; family: 'ipv4' | 'ipv6'; expiresAt: number }[] = [];

  constructor(entries: readonly BanEntry[] = []) {
    for (const e of entries) {
      switch (e.kind) {
        case 'clientid': this.clientIds.set(e.value, e.expiresAt); break;
        case 'username': this.usernames.set(e.value, e.expiresAt); break;
        case 'clientid-prefix': this.prefixes.push({ value: e.value, expiresAt: e.expiresAt }); break;
        case 'address': {
          const slash = e.value.indexOf('/');
          if (slash < 0) { this.addresses.set(e.value, e.expiresAt); break; }
          const ip = e.value.slice(0, slash);
          const family = net.isIPv4(ip) ? 'ipv4' : 'ipv6';
          const list = new net.BlockList();
          list.addSubnet(ip, Number(e.value.slice(slash + 1)), family);
          this.cidrs.push({ list, family, expiresAt: e.expiresAt });
          break;
        }
      }
    }
  }

  get empty(): boolean {
    return this.clientIds.size === 0 && this.usernames.size === 0 && this.addresses.size === 0 && this.prefixes.length === 0 && this.cidrs.length === 0;
  }

  /** The kind of the first ban that matches (null: none). Exact kinds are a Map lookup each. */
  match(clientId: string, username: string | null, address: string | undefined, now = Date.now()): BanKind | null {
    if (this.empty) return null;
    const live = (at: number | undefined) => at !== undefined && (at === 0 || at > now);
    if (live(this.clientIds.get(clientId))) return 'clientid';
    if (username !== null && live(this.usernames.get(username))) return 'username';
    for (const p of this.prefixes) if (clientId.startsWith(p.value) && live(p.expiresAt)) return 'clientid-prefix';
    if (address) {
      const a = plainAddress(address);
      if (live(this.addresses.get(a))) return 'address';
      if (this.cidrs.length) {
        const family = net.isIPv4(a) ? 'ipv4' : 'ipv6';
        for (const c of this.cidrs) if (c.family === family && live(c.expiresAt) && c.list.check(a, family)) return 'address';
      }
    }
    return null;
  }
}

/**
 * main → worker: the banned list changed; check new CONNECTs against `entries` and close
 * connected clients it names. The worker answers BannedApplied with the same `seq`.
 */
export interface BannedUpdate { t: 'banned'; seq: number; entries: BanEntry[] }
/** worker → main: every CONNECT from now on is checked against list `seq`. */
export interface BannedApplied { t: 'banned-applied'; seq: number }
