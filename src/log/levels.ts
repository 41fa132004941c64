// Log levels as pino numbers them, shared by the main thread's writer and the threads that
// send it records (a thread decides "is this level on?" from one shared Int32, log-state.ts).
import type { LogLevel } from '../config';

export const LEVELS: Readonly<Record<LogLevel, number>> = {
  trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60,
  // Above every level: nothing passes.
  silent: 1000,
};

const NAMES = new Map<number, LogLevel>(Object.entries(LEVELS).map(([k, v]) => [v, k as LogLevel]));

export function levelName(n: number): LogLevel { return NAMES.get(n) ?? 'info'; }

export function isLogLevel(s: string): s is LogLevel { return Object.prototype.hasOwnProperty.call(LEVELS, s); }
