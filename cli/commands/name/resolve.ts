import { Args } from '@oclif/core';
import { BaseCommand } from '../../base.ts';
import { nameJson, nameOfWords, nameRows } from '../../card-format.ts';

export default class NameResolve extends BaseCommand {
  static summary = 'Who holds a name: its DID and when the claim expires.';
  static examples = ['<%= config.bin %> name resolve swift-falcon', '<%= config.bin %> name resolve swift-falcon --json | jq -r .did'];
  static strict = false;
  static args = {
    words: Args.string({ required: true, description: 'the name ("swift-falcon") or its words ("swift falcon")' }),
  };

  async run() {
    const { argv, flags } = await this.parse(NameResolve);
    const name = await nameOfWords(argv as string[], (m) => this.usageError(m));
    const client = await this.client(flags);
    const [{ record }, self] = await Promise.all([
      client.a2a.resolveName({ name }),
      client.a2a.getIdentity().then((r) => r.did, () => ''),
    ]);
    this.rows(nameRows(record!, self));
    return nameJson(record!);
  }
}
