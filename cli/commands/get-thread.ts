import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { threadJson, threadRows } from '../thread-format.ts';

export default class GetThread extends BaseCommand {
  static summary = 'One thread: backend, state, replicas (joined, leader), height and chain head.';
  static examples = ['<%= config.bin %> get-thread --id thr_01jz…', '<%= config.bin %> get-thread --id thr_01jz… --json | jq .thread.height'];

  static flags = {
    id: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
  };

  async run() {
    const { flags } = await this.parse(GetThread);
    const client = await this.client(flags);
    const [{ thread }, self] = await Promise.all([
      client.a2a.getThread({ threadId: flags.id }),
      client.a2a.getIdentity().then((r) => r.did, () => ''),
    ]);
    this.rows(threadRows(thread!, self));
    return { thread: threadJson(thread!) };
  }
}
