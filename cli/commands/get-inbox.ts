import { Flags } from '@oclif/core';
import { BaseCommand, messageJson, messageLine, plural } from '../base.ts';

export default class GetInbox extends BaseCommand {
  static summary = 'Read the inbox, oldest first.';
  static examples = [
    '<%= config.bin %> get-inbox --unread',
    '<%= config.bin %> get-inbox --from did:key:z6MkAbc… --since 1h --limit 20',
    '<%= config.bin %> get-inbox --cursor msg_01jx…   # the next page, as printed after "more:"',
  ];

  static flags = {
    unread: Flags.boolean({ summary: 'Only unread messages.' }),
    from: Flags.string({ summary: 'Only messages from this DID.' }),
    since: Flags.string({ summary: 'Only messages received since a time ("2026-05-30T12:00:00Z") or for a duration ("1h").' }),
    limit: Flags.integer({ min: 1, max: 1000, summary: 'At most this many messages (default 100; a page also stops at ~3 MiB).' }),
    cursor: Flags.string({ summary: 'Continue after a previous page (the value printed after "more:"; nextCursor in --json).' }),
  };

  async run() {
    const { flags } = await this.parse(GetInbox);
    const sinceMs = flags.since === undefined ? 0 : await this.parseSince(flags.since);
    const res = await (await this.client(flags)).a2a.getInbox({
      unreadOnly: flags.unread, from: flags.from ?? '', sinceMs, limit: flags.limit ?? 0, cursor: flags.cursor ?? '',
    });
    const n = res.messages.length;
    this.log(flags.unread ? plural(n, 'unread message') : `${plural(n, 'message')} (${res.unread} unread in inbox)`);
    for (const m of res.messages) this.log(messageLine(m));
    if (res.nextCursor) this.log(`more: --cursor ${res.nextCursor}`);
    return { unread: res.unread, messages: res.messages.map(messageJson), nextCursor: res.nextCursor };
  }

  private async parseSince(text: string): Promise<number> {
    const { parseDuration } = await import('../../runtime/config.ts');
    const ago = parseDuration(text);
    if (ago !== undefined) return Date.now() - ago;
    const at = Date.parse(text);
    if (Number.isNaN(at)) this.usageError(`--since: expected a time like 2026-05-30T12:00:00Z or a duration like "1h", got ${JSON.stringify(text)}`);
    return at;
  }
}
