import { Flags } from '@oclif/core';
import { BaseCommand, quote } from '../base.ts';
import { stateName, stateOfFlag, taskJson } from '../task-format.ts';

export default class UpdateTask extends BaseCommand {
  static summary = 'Move a task: accept, reject, ask for input, complete or fail it (assignee); answer a question (requester).';
  static description = 'Give the state the task should be in. The assignee accepts (working), rejects, asks for input '
    + '(input-required) or auth (auth-required), completes or fails; the requester answers input-required or '
    + 'auth-required by moving the task back to working with --part. The daemon decides who may make which move '
    + 'from where, and says why when it refuses. --message is the reason, question or answer that goes with it.';
  static examples = [
    '<%= config.bin %> update-task --id task_01jy… --state working',
    '<%= config.bin %> update-task --id task_01jy… --state input-required --message "Which language?"',
    '<%= config.bin %> update-task --id task_01jy… --state working --part English   # the requester answers',
    '<%= config.bin %> update-task --id task_01jy… --state completed --artifact-text "OpenMolt Network is…" --artifact-name summary',
    '<%= config.bin %> update-task --id task_01jy… --state failed --message "model unavailable"',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
    state: Flags.option({
      options: ['working', 'input-required', 'auth-required', 'completed', 'failed', 'rejected'] as const, required: true,
      summary: 'The state to move the task to (to cancel, use cancel-task).',
    })(),
    message: Flags.string({ char: 'm', summary: 'Reason, question or answer accompanying the move.' }),
    part: Flags.string({ multiple: true, summary: 'A text part: the requester\'s answer to input-required/auth-required (repeat for several).' }),
    'artifact-text': Flags.string({ multiple: true, summary: 'With --state completed: a text part of the output artifact (repeat for several).' }),
    'artifact-name': Flags.string({ summary: 'Name of the output artifact (with --artifact-text).' }),
  };

  async run() {
    const { flags } = await this.parse(UpdateTask);
    const texts = flags['artifact-text'] ?? [];
    if (flags['artifact-name'] !== undefined && !texts.length) this.usageError('--artifact-name needs --artifact-text');
    const { task } = await (await this.client(flags)).a2a.updateTask({
      taskId: flags.id,
      state: stateOfFlag(flags.state),
      message: flags.message ?? '',
      parts: (flags.part ?? []).map((text) => ({ text })),
      artifacts: texts.length ? [{ name: flags['artifact-name'] ?? '', parts: texts.map((text) => ({ text })) }] : [],
    });
    const rows: Array<[string, string]> = [['Task ID', task!.id], ['Status', stateName(task!.state)]];
    if (task!.statusMessage) rows.push(['Message', quote(task!.statusMessage)]);
    this.rows(rows);
    return { task: taskJson(task!) };
  }
}
