import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { entryJson, entryLine } from '../thread-format.ts';

export default class GetThreadEntries extends BaseCommand {
  static summary = 'A thread\'s committed entries, in chain order, a page at a time.';
  static description = 'One line per entry: "#height.index  author  kind  payload" (JSON compact, text quoted, '
    + 'long payloads cut). A page holds 100 entries unless --limit says otherwise; "more: --page-token …" continues. '
    + 'With --json each entry\'s payload is `payload` (parsed JSON), `text` (text/*) or `payloadBase64`.';
  static examples = [
    '<%= config.bin %> get-thread-entries --id thr_01jz… --since 10',
    '<%= config.bin %> get-thread-entries --id thr_01jz… --json | jq \'.entries[] | select(.kind == "decision") | .payload\'',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
    since: Flags.integer({ min: 0, summary: 'From this block height on (default: the first).' }),
    limit: Flags.integer({ min: 1, max: 1000, summary: 'At most this many entries (default 100).' }),
    'page-token': Flags.string({ summary: 'Continue after a previous page (the value printed after "more:"; nextPageToken in --json).' }),
  };

  async run() {
    const { flags } = await this.parse(GetThreadEntries);
    const res = await (await this.client(flags)).a2a.getThreadEntries({
      threadId: flags.id, sinceHeight: flags.since ?? 0, pageSize: flags.limit ?? 0, pageToken: flags['page-token'] ?? '',
    });
    if (res.entries.length) this.log(res.entries.map(entryLine).join('\n'));
    else this.log('no entries');
    if (res.nextPageToken) this.log(`more: --page-token ${res.nextPageToken}`);
    return { entries: res.entries.map(entryJson), nextPageToken: res.nextPageToken };
  }
}
