import { Args } from '@oclif/core';
import { BaseCommand } from '../../base.ts';
import { nameOfWords } from '../../card-format.ts';

export default class NameRelease extends BaseCommand {
  static summary = 'Give up a name this daemon holds (others may claim it at once).';
  static examples = ['<%= config.bin %> name release swift-falcon'];
  static strict = false;
  static args = {
    words: Args.string({ required: true, description: 'the name ("swift-falcon") or its words ("swift falcon")' }),
  };

  async run() {
    const { argv, flags } = await this.parse(NameRelease);
    const name = await nameOfWords(argv as string[], (m) => this.usageError(m));
    await (await this.client(flags)).a2a.releaseName({ name });
    this.log(`released ${name}`);
    return { released: name };
  }
}
