import { BaseCommand, formatColumns, ms, plural } from '../base.ts';

export default class Peers extends BaseCommand {
  static summary = 'Connected peers.';
  static examples = ['<%= config.bin %> peers'];

  async run() {
    const { flags } = await this.parse(Peers);
    const { peers } = await (await this.client(flags)).diag.peers();
    if (peers.length) {
      this.log(formatColumns(peers.map((p) => [p.peerId, p.addresses[0] ?? '', p.latencyMs === undefined ? '' : ms(p.latencyMs)])));
    }
    this.log(peers.length ? `${plural(peers.length, 'peer')} total` : 'no peers connected');
    return { peers };
  }
}
