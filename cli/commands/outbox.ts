import { Flags } from '@oclif/core';
import { BaseCommand, clock, formatColumns, humanDuration, plural } from '../base.ts';

// OutboxState enum values as words (avoids importing the generated module at start-up; a test keeps them in step).
export const STATE = ['unspecified', 'queued', 'sending', 'retrying', 'delivered', 'expired', 'failed', 'rejected'];

export default class Outbox extends BaseCommand {
  static summary = 'Delivery state of messages we sent.';
  static examples = ['<%= config.bin %> outbox --pending', '<%= config.bin %> outbox --id msg_01jx…'];

  static flags = {
    pending: Flags.boolean({ summary: 'Only messages not yet delivered (queued, sending or retrying).' }),
    to: Flags.string({ summary: 'Only messages to this DID.' }),
    id: Flags.string({ summary: 'Only this message.' }),
    limit: Flags.integer({ min: 1, max: 1000, summary: 'At most this many entries (default 100).' }),
  };

  async run() {
    const { flags } = await this.parse(Outbox);
    const { entries } = await (await this.client(flags)).a2a.getOutbox({
      messageId: flags.id ?? '', to: flags.to ?? '', pendingOnly: flags.pending, limit: flags.limit ?? 0,
    });
    const now = Date.now();
    const rows = entries.map((e) => {
      const state = STATE[e.state] ?? String(e.state);
      let when = '';
      if (e.deliveredAtMs !== undefined) when = `at ${clock(e.deliveredAtMs)}`;
      else if (e.nextAttemptAtMs !== undefined) when = `next try in ${humanDuration(Math.max(0, e.nextAttemptAtMs - now))}`;
      const err = e.lastError ? `  last error: ${e.lastError}` : '';
      return [e.id, `to ${e.to}`, state, plural(e.attempts, 'attempt'), `${when}${err}`.trim()];
    });
    if (rows.length) this.log(formatColumns(rows));
    this.log(entries.length ? plural(entries.length, flags.pending ? 'pending message' : 'message') : 'outbox is empty');
    return { entries: entries.map((e) => ({ ...e, state: STATE[e.state] ?? String(e.state) })) };
  }
}
