// Where things are, from the compiled test files (dist/test/<dir>/x.js).
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'fleetmq.js');
