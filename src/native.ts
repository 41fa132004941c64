// The single loader for the addon (as better-sqlite3 does): every thread requires this module and
// gets the same process-wide native state (DESIGN.md §3).
import * as path from 'node:path';

export interface NativeAddon {
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  [name: string]: unknown;
}

function load(): NativeAddon {
  const root = path.resolve(__dirname, '..', '..');
  const candidates = [
    path.join(root, 'build', 'Release', 'fleetmq.node'),
    path.join(root, 'build', 'Debug', 'fleetmq.node'),
  ];
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message}`);
    }
  }
  throw new Error(`fleetmq native addon not built; run \`npm install\` (or \`npm run build\`).\n${errors.join('\n')}`);
}

export const native: NativeAddon = load();
