import { Args } from '@oclif/core';
import { BaseCommand } from '../base.ts';

export default class Connect extends BaseCommand {
  static summary = 'Dial a peer by multiaddr.';
  static examples = ['<%= config.bin %> connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…'];
  static args = {
    multiaddr: Args.string({ required: true, description: 'multiaddr ending in /p2p/<peer id>' }),
  };

  async run() {
    const { args, flags } = await this.parse(Connect);
    const res = await (await this.client(flags)).diag.connect({ multiaddr: args.multiaddr });
    this.rows([['Connected', res.peerId], ['DID', res.did]]);
    return res;
  }
}
