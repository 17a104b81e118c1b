import { Args } from '@oclif/core';
import { BaseCommand } from '../base.ts';

export default class Ack extends BaseCommand {
  static summary = 'Mark an inbox message read.';
  static examples = ['<%= config.bin %> ack msg_01jx…'];
  static args = {
    'message-id': Args.string({ required: true, description: 'msg_… id from get-inbox' }),
  };

  async run() {
    const { args, flags } = await this.parse(Ack);
    const id = args['message-id'];
    const { alreadyRead } = await (await this.client(flags)).a2a.ackMessage({ messageId: id });
    this.rows([['Message ID', id], ['Read', alreadyRead ? 'true (already read)' : 'true']]);
    return { messageId: id, alreadyRead };
  }
}
