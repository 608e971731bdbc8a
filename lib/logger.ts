/**
 * Where Courier reports what it cannot throw to anyone: failed casts, dropped replies,
 * rejected messages. Pass your own to `start({ logger })`; the default writes warnings
 * and errors to stderr (set COURIER_LOG=debug|info|warn|error|silent to change it).
 */
export interface Logger {
  debug(message: string, ...extra: unknown[]): void;
  info(message: string, ...extra: unknown[]): void;
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
type Level = (typeof LEVELS)[number];

export function consoleLogger(level: Level = envLevel()): Logger {
  const min = LEVELS.indexOf(level);
  const at = (l: Level, write: (...a: unknown[]) => void) =>
    LEVELS.indexOf(l) >= min ? (message: string, ...extra: unknown[]) => write(`[courier] ${l}: ${message}`, ...extra) : () => {};
  return {
    debug: at('debug', console.error),
    info: at('info', console.error),
    warn: at('warn', console.error),
    error: at('error', console.error),
  };
}

function envLevel(): Level {
  const v = process.env.COURIER_LOG;
  return (LEVELS as readonly string[]).includes(v ?? '') ? (v as Level) : 'warn';
}
