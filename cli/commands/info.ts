import { BaseCommand, humanDuration, tildify } from '../base.ts';

export default class Info extends BaseCommand {
  static summary = "The running daemon's identity, addresses and peers.";
  static examples = ['<%= config.bin %> info'];

  async run() {
    const { flags } = await this.parse(Info);
    const info = await (await this.client(flags)).diag.info();
    this.rows([
      ['DID', `${info.did} (you)`],
      ['Peer ID', info.peerId],
      ['Addresses', info.addresses.length ? info.addresses.join('\n') : '(not listening)'],
      ['Peers', `${info.peers} connected`],
      ['Uptime', humanDuration(info.uptimeMs)],
      ['Data dir', tildify(info.dataDir)],
      ['gRPC', info.grpcAddr],
      ['Version', info.version],
    ]);
    return info;
  }
}
