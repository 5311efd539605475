// Process logs (pino JSON). One root logger per thread; workers bind their index.

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/types.js';

export function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
