import { Args } from '@oclif/core';
import { BaseCommand } from '../base.ts';

export default class Disconnect extends BaseCommand {
  static summary = 'Close the connections to a peer.';
  static examples = ['<%= config.bin %> disconnect did:key:z6MkAbc…'];
  static args = {
    target: Args.string({ required: true, description: 'DID or peer id' }),
  };

  async run() {
    const { args, flags } = await this.parse(Disconnect);
    await (await this.client(flags)).diag.disconnect({ target: args.target });
    this.rows([['Disconnected', args.target]]);
    return { target: args.target, disconnected: true };
  }
}
