// The banned list as the main thread keeps it: entries from the config file's `banned` key,
// from --banned-file (read at start and on SIGHUP; a file that does not parse leaves the previous
// entries in force) and added through the admin API (kept in memory until removed, expired or
// the broker stops). Every change is posted to every worker (src/shared/banned.ts says why
// posted); a worker started later gets the list in force with its first message.
import type { BrokerConfig } from '../config';
import { BanEntry, BanKind, BannedError, MAX_BANS, MAX_CIDRS, MAX_PREFIXES, normalBan, parseBannedConfig, parseBannedFile } from '../shared/banned';
import { readTextFile } from '../shared/operator-files';

/** How often expired API entries are dropped from the list (they stop matching at once anyway). */
const PRUNE_MS = 10_000;

export function readBannedFile(file: string): BanEntry[] {
  return parseBannedFile(readTextFile(file, BannedError), file);
}

export class BannedService {
  private readonly fromConfig: BanEntry[];
  private fromFile: BanEntry[] = [];
  /** kind + '\0' + value → entry. */
  private readonly fromApi = new Map<string, BanEntry>();
  /** Runs only while an API entry has an expiry. */
  private timer: NodeJS.Timeout | null = null;

  /** Throws BannedError (a bad `banned` key or --banned-file) before any thread starts. */
  /** `broadcast` resolves once every worker checks CONNECTs against the list given. */
  constructor(private readonly config: BrokerConfig, private readonly broadcast: (entries: BanEntry[]) => Promise<void>) {
    this.fromConfig = parseBannedConfig(config.banned, 'banned');
    if (config.bannedFile) this.fromFile = readBannedFile(config.bannedFile);
    this.check(this.all());
  }

  /** Every entry in force. */
  all(now = Date.now()): BanEntry[] {
    return [...this.fromConfig, ...this.fromFile, ...[...this.fromApi.values()].filter((e) => e.expiresAt === 0 || e.expiresAt > now)];
  }

  /** SIGHUP: reads --banned-file again and posts the list; `applied` once every worker holds it. */
  reload(): { ok: boolean; line: string; applied: Promise<void> } {
    const file = this.config.bannedFile;
    if (!file) return { ok: true, line: 'no --banned-file to reload', applied: Promise.resolve() };
    try {
      const entries = readBannedFile(file);
      this.check([...this.fromConfig, ...entries, ...this.fromApi.values()]);
      this.fromFile = entries;
    } catch (err) {
      return { ok: false, line: `banned file not reloaded, the previous entries stay in force: ${(err as Error).message}`, applied: Promise.resolve() };
    }
    const applied = this.broadcast(this.all());
    return { ok: true, applied, line: `banned file reloaded: ${this.fromFile.length} entr${this.fromFile.length === 1 ? 'y' : 'ies'}` };
  }

  /**
   * Adds (or renews) an API entry; `ttlSeconds` 0 = until removed. Throws BannedError on bad
   * input or a full list. Resolves once every worker refuses it.
   */
  async add(kind: string, value: unknown, ttlSeconds: number): Promise<BanEntry> {
    const n = normalBan(kind, value);
    const entry: BanEntry = { ...n, expiresAt: ttlSeconds > 0 ? Date.now() + ttlSeconds * 1000 : 0, source: 'api' };
    const key = `${n.kind}\0${n.value}`;
    const next = new Map(this.fromApi).set(key, entry);
    this.check([...this.fromConfig, ...this.fromFile, ...next.values()]);
    this.fromApi.set(key, entry);
    const applied = this.broadcast(this.all());
    if (entry.expiresAt !== 0 && this.timer === null) {
      this.timer = setInterval(() => this.prune(), PRUNE_MS);
      this.timer.unref();
    }
    await applied;
    return entry;
  }

  /** Removes an API entry; false if there is none (config and file entries are removed by editing them). */
  async remove(kind: BanKind, value: string): Promise<boolean> {
    let v = value;
    try { v = normalBan(kind, value).value; } catch { return false; }
    if (!this.fromApi.delete(`${kind}\0${v}`)) return false;
    await this.broadcast(this.all());
    return true;
  }

  /** The API entries in force (what another cluster member adds or a joining one takes over). */
  apiEntries(now = Date.now()): Array<{ kind: BanKind; value: string; expiresAt: number }> {
    return [...this.fromApi.values()].filter((e) => e.expiresAt === 0 || e.expiresAt > now).map((e) => ({ kind: e.kind, value: e.value, expiresAt: e.expiresAt }));
  }

  /**
   * An API entry added on another cluster member, as it is there (same absolute expiry); throws
   * BannedError on bad input or a full list. Resolves once every worker refuses it.
   */
  async put(kind: string, value: unknown, expiresAt: number): Promise<void> {
    const n = normalBan(kind, value);
    const key = `${n.kind}\0${n.value}`;
    const entry: BanEntry = { ...n, expiresAt, source: 'api' };
    const next = new Map(this.fromApi).set(key, entry);
    this.check([...this.fromConfig, ...this.fromFile, ...next.values()]);
    this.fromApi.set(key, entry);
    this.watchExpiry();
    await this.broadcast(this.all());
  }

  /**
   * The API entries become `entries` (a node joining a cluster takes over its peers' list);
   * entries that do not check out are left out. Resolves once every worker holds the list.
   */
  async replaceApi(entries: ReadonlyArray<{ kind: string; value: unknown; expiresAt: number }>): Promise<void> {
    const next = new Map<string, BanEntry>();
    for (const e of entries) {
      try {
        const n = normalBan(e.kind, e.value);
        next.set(`${n.kind}\0${n.value}`, { ...n, expiresAt: e.expiresAt, source: 'api' });
      } catch { /* a bad entry from a peer is not taken */ }
    }
    try { this.check([...this.fromConfig, ...this.fromFile, ...next.values()]); } catch { return; }
    this.fromApi.clear();
    for (const [k, e] of next) this.fromApi.set(k, e);
    this.watchExpiry();
    await this.broadcast(this.all());
  }

  private watchExpiry(): void {
    if (this.timer !== null || ![...this.fromApi.values()].some((e) => e.expiresAt !== 0)) return;
    this.timer = setInterval(() => this.prune(), PRUNE_MS);
    this.timer.unref();
  }

  private check(entries: readonly BanEntry[]): void {
    if (entries.length > MAX_BANS) throw new BannedError(`too many banned entries (${entries.length}, at most ${MAX_BANS})`);
    const prefixes = entries.filter((e) => e.kind === 'clientid-prefix').length;
    if (prefixes > MAX_PREFIXES) throw new BannedError(`too many client id prefixes (${prefixes}, at most ${MAX_PREFIXES}): each is checked on every CONNECT`);
    const cidrs = entries.filter((e) => e.kind === 'address' && e.value.includes('/')).length;
    if (cidrs > MAX_CIDRS) throw new BannedError(`too many CIDR blocks (${cidrs}, at most ${MAX_CIDRS}): each is checked on every CONNECT`);
  }

  private prune(): void {
    const now = Date.now();
    let gone = 0;
    for (const [k, e] of this.fromApi) if (e.expiresAt !== 0 && e.expiresAt <= now) { this.fromApi.delete(k); gone++; }
    if (gone) void this.broadcast(this.all());
    if (![...this.fromApi.values()].some((e) => e.expiresAt !== 0)) this.close();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
