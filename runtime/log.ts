// Structured logs: one JSON object per line on stdout, so `start` output can be piped into any log tool.
export type Level = 'debug' | 'info' | 'warn' | 'error';

export type Logger = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export function jsonLogger(options: { verbose: boolean; write?: (line: string) => void }): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  return (level, msg, fields = {}) => {
    if (level === 'debug' && !options.verbose) return;
    write(JSON.stringify({ level, msg, ...fields, time: new Date().toISOString() }));
  };
}
