import { Flags } from '@oclif/core';
import { BaseCommand, quote } from '../base.ts';
import { stateName, taskJson } from '../task-format.ts';

export default class CancelTask extends BaseCommand {
  static summary = 'Cancel a task we asked for (the assignee is told through the outbox).';
  static examples = ['<%= config.bin %> cancel-task --id task_01jy… --reason "no longer needed"'];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
    reason: Flags.string({ summary: 'Why, for the assignee (default "canceled by the requester").' }),
  };

  async run() {
    const { flags } = await this.parse(CancelTask);
    const { task } = await (await this.client(flags)).a2a.cancelTask({ taskId: flags.id, reason: flags.reason ?? '' });
    this.rows([['Task ID', task!.id], ['Status', stateName(task!.state)], ['Reason', quote(task!.statusMessage)]]);
    return { task: taskJson(task!) };
  }
}
