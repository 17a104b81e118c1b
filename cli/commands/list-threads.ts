import { Flags } from '@oclif/core';
import { BaseCommand, formatColumns, plural } from '../base.ts';
import { threadCells, threadJson } from '../thread-format.ts';

export default class ListThreads extends BaseCommand {
  static summary = 'Threads this daemon replicates (or is invited to), oldest first.';
  static description = 'One line per thread: id, backend, state, replicas, height, age. A page holds 50 threads unless '
    + '--limit says otherwise; "more: --page-token …" continues.';
  static examples = ['<%= config.bin %> list-threads', '<%= config.bin %> list-threads --json | jq -r \'.threads[] | select(.state == "invited") | .id\''];

  static flags = {
    limit: Flags.integer({ min: 1, max: 1000, summary: 'At most this many threads (default 50).' }),
    'page-token': Flags.string({ summary: 'Continue after a previous page (the value printed after "more:"; nextPageToken in --json).' }),
  };

  async run() {
    const { flags } = await this.parse(ListThreads);
    const res = await (await this.client(flags)).a2a.listThreads({ pageSize: flags.limit ?? 0, pageToken: flags['page-token'] ?? '' });
    const now = Date.now();
    if (res.threads.length) this.log(formatColumns(res.threads.map((t) => threadCells(t, now))));
    this.log(plural(res.threads.length, 'thread'));
    if (res.nextPageToken) this.log(`more: --page-token ${res.nextPageToken}`);
    return { threads: res.threads.map(threadJson), nextPageToken: res.nextPageToken };
  }
}
