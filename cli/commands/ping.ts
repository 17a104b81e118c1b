import { Args } from '@oclif/core';
import { BaseCommand, ms } from '../base.ts';

export default class Ping extends BaseCommand {
  static summary = 'Round-trip latency to a peer.';
  static examples = ['<%= config.bin %> ping did:key:z6MkAbc…', '<%= config.bin %> ping /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…'];
  static args = {
    target: Args.string({ required: true, description: 'DID, peer id or multiaddr' }),
  };

  async run() {
    const { args, flags } = await this.parse(Ping);
    const { latencyMs } = await (await this.client(flags)).diag.ping({ target: args.target });
    this.rows([['Reachable', 'true'], ['Latency', ms(latencyMs)]]);
    return { target: args.target, reachable: true, latencyMs };
  }
}
