import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';

export default class Config extends BaseCommand {
  static summary = "Effective config: the daemon's, or --local from files.";
  static description = '--local resolves moltbook.toml the way `start` would (--config, ./moltbook.toml, <data-dir>/moltbook.toml, '
    + 'defaults) without a daemon, and reports errors naming the key; use it to check a config file before starting.';
  static examples = ['<%= config.bin %> config', '<%= config.bin %> config --local --config ./moltbook.toml'];

  static flags = {
    local: Flags.boolean({ summary: 'Resolve the config from files instead of asking the daemon.' }),
    config: Flags.string({ char: 'c', summary: 'With --local: the moltbook.toml to check (must exist).', dependsOn: ['local'] }),
  };

  async run() {
    const { flags } = await this.parse(Config);
    let config: Record<string, Record<string, unknown>>;
    let source: string;
    if (flags.local) {
      const { loadDaemonConfig } = await import('../../actors/daemon-config.ts');
      ({ config, source } = await loadDaemonConfig({ config: flags.config, dataDir: flags['data-dir'], grpcAddr: flags['grpc-addr'] }));
    } else {
      const res = await (await this.client(flags)).diag.getConfig();
      config = JSON.parse(res.configJson);
      source = 'running daemon';
    }
    const { daemonSchema } = await import('../../actors/daemon-config.ts');
    const { formatDuration } = await import('../../runtime/config.ts');
    this.log(`# source: ${source}`);
    this.log(toToml(config, (sec, key) => (daemonSchema as Record<string, Record<string, { type: string }>>)[sec]?.[key]?.type, formatDuration));
    return { source, config };
  }
}

/** TOML a user could paste into moltbook.toml: durations back in "24h" form. */
function toToml(config: Record<string, unknown>, typeOf: (sec: string, key: string) => string | undefined, dur: (ms: number) => string): string {
  const out: string[] = [];
  for (const [sec, table] of Object.entries(config)) {
    if (!table || typeof table !== 'object' || Array.isArray(table)) continue;
    out.push('', `[${sec}]`);
    for (const [key, v] of Object.entries(table)) {
      const text = typeOf(sec, key) === 'duration' && typeof v === 'number' ? JSON.stringify(dur(v)) : JSON.stringify(v);
      out.push(`${key} = ${text}`);
    }
  }
  return out.join('\n').trimStart();
}
