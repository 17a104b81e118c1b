import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { threadJson, threadSummaryRows } from '../thread-format.ts';

export default class JoinThread extends BaseCommand {
  static summary = 'Take part in a thread we are invited to (needed only when [threads] auto_join is off).';
  static description = 'Our daemon starts replicating the thread and tells its creator. Joining a thread already '
    + 'joined changes nothing; a declined or failed one cannot be joined.';
  static examples = ['<%= config.bin %> join-thread --id thr_01jz…'];

  static flags = {
    id: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
  };

  async run() {
    const { flags } = await this.parse(JoinThread);
    const client = await this.client(flags);
    const [{ thread }, self] = await Promise.all([
      client.a2a.joinThread({ threadId: flags.id }),
      client.a2a.getIdentity().then((r) => r.did, () => ''),
    ]);
    this.rows(threadSummaryRows(thread!, self));
    return { thread: threadJson(thread!) };
  }
}
