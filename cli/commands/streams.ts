import { Args } from '@oclif/core';
import { BaseCommand, plural } from '../base.ts';

export default class Streams extends BaseCommand {
  static summary = 'List persisted event streams (see `replay`).';
  static examples = ['<%= config.bin %> streams', '<%= config.bin %> streams outbox/'];
  static args = {
    prefix: Args.string({ description: 'only streams whose name starts with this' }),
  };

  async run() {
    const { args, flags } = await this.parse(Streams);
    const { streams } = await (await this.client(flags)).diag.listStreams({ prefix: args.prefix ?? '' });
    for (const s of streams) this.log(s);
    this.log(plural(streams.length, 'stream'));
    return { streams };
  }
}
