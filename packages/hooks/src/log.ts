export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * JSON lines: info on `out`, warnings and errors on `err`. Fields go through JSON.stringify, so
 * untrusted text is escaped; callers pass key names and never secret values.
 */
export function createLogger(fields: Record<string, unknown> = {}, out: (line: string) => void = (l) => process.stdout.write(l), err: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const line = (level: string, msg: string, extra?: Record<string, unknown>) => `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields, ...extra })}\n`;
  return {
    info: (msg, extra) => out(line('info', msg, extra)),
    warn: (msg, extra) => err(line('warn', msg, extra)),
    error: (msg, extra) => err(line('error', msg, extra)),
  };
}

export const SILENT: Logger = Object.freeze({ info: () => undefined, warn: () => undefined, error: () => undefined });
