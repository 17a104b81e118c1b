import { Args } from '@oclif/core';
import { BaseCommand } from '../../base.ts';
import { nameJson, nameOfWords, nameRows } from '../../card-format.ts';

export default class NameClaim extends BaseCommand {
  static summary = 'Claim a human-readable name for our DID (first live claim wins; renewed while the daemon runs).';
  static description = 'A name is two or more words of lowercase letters a-z and digits joined by "-", starting with a '
    + 'letter, at most 63 characters: give the words ("swift falcon") or the name ("swift-falcon"). A claim lasts 24 h '
    + 'and this daemon renews it while it runs; a name another agent holds is refused until it expires or is released.';
  static examples = ['<%= config.bin %> name claim swift falcon', '<%= config.bin %> name claim swift-falcon --json | jq -r .expiresAt'];
  static strict = false;
  static args = {
    words: Args.string({ required: true, description: 'the name\'s words ("swift falcon") or the name ("swift-falcon")' }),
  };

  async run() {
    const { argv, flags } = await this.parse(NameClaim);
    const name = await nameOfWords(argv as string[], (m) => this.usageError(m));
    const { record } = await (await this.client(flags)).a2a.claimName({ name });
    // A claim is always ours.
    this.rows(nameRows(record!, record!.did));
    return nameJson(record!);
  }
}
