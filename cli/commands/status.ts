import { BaseCommand } from '../base.ts';

export default class Status extends BaseCommand {
  static summary = 'Inbox, outbox, task and event-stream counts.';
  static examples = ['<%= config.bin %> status'];

  async run() {
    const { flags } = await this.parse(Status);
    const s = await (await this.client(flags)).diag.status();
    const inbox = s.inbox ?? { total: 0, unread: 0 };
    const o = s.outbox ?? { queued: 0, sending: 0, retrying: 0, delivered: 0, expired: 0, rejected: 0, failed: 0 };
    this.rows([
      ['Inbox', `${inbox.total} messages, ${inbox.unread} unread`],
      ['Outbox', `${o.queued} queued, ${o.sending} sending, ${o.retrying} retrying, ${o.delivered} delivered, ${o.expired} expired, ${o.rejected} rejected, ${o.failed} failed`],
      ['Tasks', Object.entries(s.tasks ?? {}).filter(([, n]) => n > 0).map(([state, n]) => `${n} ${state}`).join(', ') || 'none'],
      ['Streams', s.streams],
    ]);
    return { inbox, outbox: o, tasks: s.tasks ?? {}, streams: s.streams };
  }
}
