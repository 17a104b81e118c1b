import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { incomingLine, taskJson } from '../task-format.ts';

export default class IncomingTasks extends BaseCommand {
  static summary = 'Print tasks other agents give us, live as they arrive.';
  static description = 'One line per task: id, requester, skill and the start of its input. With --pending, tasks '
    + 'already waiting (SUBMITTED) come first. With --json, one JSON object per line (JSON Lines), like subscribe-inbox. '
    + 'Accept one with `update-task --id … --state working`.';
  static examples = ['<%= config.bin %> incoming-tasks --pending', '<%= config.bin %> incoming-tasks --skill text-generation --json | jq .id'];

  static flags = {
    skill: Flags.string({ summary: 'Only tasks of this skill.' }),
    pending: Flags.boolean({ summary: 'First print the tasks still waiting to be accepted, then go live.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(IncomingTasks);
    const json = this.jsonEnabled();
    const client = await this.client(flags);
    await client.ready();
    const stream = client.a2a.subscribeIncomingTasks({ skill: flags.skill ?? '', includePending: flags.pending });
    await this.follow(stream, 'subscribed. waiting for tasks...', ({ task }) => task && (json ? JSON.stringify(taskJson(task)) : incomingLine(task)));
  }
}
