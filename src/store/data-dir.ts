// The data directory, checked and created before RocksDB sees it, with one clear error per
// problem: a file in the way, no write permission, a kernel pseudo filesystem (/proc, /sys).
//
// Why not `fs.mkdir(dir, { recursive: true })`: under /proc it never returns. procfs answers
// ENOENT to mkdir of a missing entry even though the parent exists, and Node's recursive mkdir
// then retries the parent and the child forever, spinning a threadpool thread at ~100% CPU. In
// a worker thread that request also keeps the thread (and process.exit()) from ever finishing.
// Here each missing level is created with a plain mkdir, which fails at once.
import { promises as fs, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from './errors';

/** statfs f_type of filesystems that hold no files: kernel views and control files. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'], [0x74726163, 'tracefs'], [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'], [0x62656570, 'configfs'], [0x6165676c, 'pstore'],
]);
const PSEUDO_ROOTS = ['/proc', '/sys'];

const fail = (dir: string, why: string, cause?: unknown) =>
  new StoreError('DATA_DIR', dir, `data directory ${dir}: ${why}; point --data-dir at a writable directory on a real filesystem`, cause);

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/**
 * Resolves `dir`, checks it (or, if missing, its nearest existing parent) and creates the
 * missing levels one by one. Returns the absolute path. StoreError code 'DATA_DIR' on any problem.
 */
export async function prepareDataDir(dir: string): Promise<string> {
  const location = path.resolve(dir);
  const under = PSEUDO_ROOTS.find((r) => location === r || location.startsWith(r + '/'));
  if (under) throw fail(location, `${under} is a kernel pseudo filesystem, not storage`);

  // Walk up to the nearest path that exists.
  const missing: string[] = [];
  let existing = location;
  for (;;) {
    try {
      const st = await fs.stat(existing);
      if (!st.isDirectory()) {
        throw fail(location, existing === location ? 'is not a directory' : `${existing} is a file, not a directory, and is in the way`);
      }
      break;
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const code = codeOf(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fail(location, `cannot inspect ${existing}: ${code ?? (err as Error).message}`, err);
      const parent = path.dirname(existing);
      if (parent === existing) throw fail(location, 'no part of the path exists');
      missing.push(existing);
      existing = parent;
    }
  }

  // A symlink or bind mount can still lead onto a pseudo filesystem.
  try {
    const type = PSEUDO_FS.get(Number((await fs.statfs(existing)).type));
    if (type) throw fail(location, `${existing} is on ${type}, a kernel pseudo filesystem, not storage`);
  } catch (err) {
    if (err instanceof StoreError) throw err; // statfs itself failing is left to the checks below
  }

  const need = missing.length ? fsc.W_OK | fsc.X_OK : fsc.R_OK | fsc.W_OK | fsc.X_OK;
  try {
    await fs.access(existing, need);
  } catch (err) {
    throw fail(location, `${existing === location ? 'is' : `${existing} is`} not writable by this user (${codeOf(err)})`, err);
  }

  for (const level of missing.reverse()) {
    try {
      await fs.mkdir(level);
    } catch (err) {
      if (codeOf(err) === 'EEXIST' && (await fs.stat(level).catch(() => null))?.isDirectory()) continue;
      throw fail(location, `cannot create ${level}: ${codeOf(err) ?? (err as Error).message}`, err);
    }
  }
  return location;
}

/**
 * `work` or, if it has not settled after `ms`, a StoreError 'TIMEOUT' for `dir`. What `work`
 * was doing is not cancelled (a hung filesystem call cannot be): the caller is expected to
 * report and exit (see src/cli.ts, which exits without waiting for stuck threads).
 */
export function withOpenTimeout<T>(work: Promise<T>, dir: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError('TIMEOUT', path.resolve(dir),
      `store at ${path.resolve(dir)} did not open within ${ms} ms (--store-open-timeout-ms): its filesystem may be hung ` +
      'or very slow; check the disk or mount, or raise the timeout if a large store needs longer to verify')), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
