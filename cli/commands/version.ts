import { BaseCommand } from '../base.ts';

export default class Version extends BaseCommand {
  static summary = "CLI version, and the daemon's if it is running.";
  static examples = ['<%= config.bin %> version'];

  async run() {
    const { flags } = await this.parse(Version);
    const client = { version: this.config.version, runtime: `node ${process.version}` };
    let daemon: { version: string; apiVersion: string; runtime: string } | null = null;
    let why = '';
    let address = '';
    try {
      const c = await this.client(flags);
      address = c.address;
      daemon = await c.diag.version({}, { timeoutMs: 3_000 });
    } catch (e) {
      why = (e as { code?: string }).code === 'UNAVAILABLE' ? `not running at ${address}` : (e as Error).message;
    }
    this.rows([
      ['Client', `${client.version} (${client.runtime})`],
      ['Daemon', daemon ? `${daemon.version} (${daemon.apiVersion}, ${daemon.runtime})` : why],
    ]);
    return { client, daemon };
  }
}
