import { Flags } from '@oclif/core';
import { BaseCommand, messageJson, messageLine } from '../base.ts';

export default class SubscribeInbox extends BaseCommand {
  static summary = 'Print inbox messages live as they arrive.';
  static description = 'One line per message. With --json, one JSON object per line (JSON Lines) instead of a single '
    + 'document: the one command where --json does not mean "exactly one document", since the output never ends by itself.';
  static examples = ['<%= config.bin %> subscribe-inbox', '<%= config.bin %> subscribe-inbox --unread --json | jq .text'];

  static flags = {
    unread: Flags.boolean({ summary: 'First print every unread message, then go live.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SubscribeInbox);
    const json = this.jsonEnabled();
    const client = await this.client(flags);
    // Fail now, with "daemon not running", rather than waiting silently.
    await client.ready();
    const stream = client.a2a.subscribeInbox({ includeUnread: flags.unread });
    await this.follow(stream, 'subscribed. waiting for messages...', ({ message: m }) => m && (json ? JSON.stringify(messageJson(m)) : messageLine(m)));
  }
}
