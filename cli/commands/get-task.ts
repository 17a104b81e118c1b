import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { taskJson, taskRows } from '../task-format.ts';

export default class GetTask extends BaseCommand {
  static summary = 'One task: parties, skill, state, input, artifacts.';
  static examples = ['<%= config.bin %> get-task --id task_01jy…', '<%= config.bin %> get-task --id task_01jy… --json | jq .task.state'];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
  };

  async run() {
    const { flags } = await this.parse(GetTask);
    const { task } = await (await this.client(flags)).a2a.getTask({ taskId: flags.id });
    this.rows(taskRows(task!));
    return { task: taskJson(task!) };
  }
}
