import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { blockJson, blockText } from '../thread-format.ts';

export default class SubscribeThread extends BaseCommand {
  static summary = 'Print a thread\'s committed blocks: history from --since, then live as they commit.';
  static description = 'No gap and no repeat between history and live blocks. One line per block '
    + '("Height h  Hash …  n entries  proposer did…"), its entries indented under it; Ctrl-C ends it. With --json, one '
    + 'JSON object per block per line (JSON Lines), like subscribe-inbox.';
  static examples = [
    '<%= config.bin %> subscribe-thread --id thr_01jz… --since 10',
    '<%= config.bin %> subscribe-thread --id thr_01jz… --json | jq -c \'.entries[] | {kind, payload}\'',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
    since: Flags.integer({ min: 0, summary: 'First block height to print (default 1: the whole chain).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SubscribeThread);
    const json = this.jsonEnabled();
    const client = await this.client(flags);
    // Fail now, with "daemon not running" or "not found", rather than after the status line.
    await client.a2a.getThread({ threadId: flags.id });
    const since = Math.max(1, flags.since ?? 1);
    const stream = client.a2a.subscribeThread({ threadId: flags.id, sinceHeight: since });
    await this.follow(stream, `following thread ${flags.id} from height ${since}...`, ({ block }) => block && (json ? JSON.stringify(blockJson(block)) : blockText(block)));
  }
}
