import { Flags } from '@oclif/core';
import { BaseCommand, formatColumns, plural } from '../base.ts';
import { roleOfFlag, STATE_FLAGS, stateOfFlag, taskCells, taskJson } from '../task-format.ts';

export default class ListTasks extends BaseCommand {
  static summary = 'Tasks we asked for and tasks we do, newest first.';
  static description = 'One line per task: id, state, skill, the other party, age. A page holds 50 tasks unless --limit '
    + 'says otherwise; "more: --page-token …" continues.';
  static examples = [
    '<%= config.bin %> list-tasks',
    '<%= config.bin %> list-tasks --role assignee --state submitted --state working',
    '<%= config.bin %> list-tasks --page-token task_01jy…   # the next page, as printed after "more:"',
  ];

  static flags = {
    role: Flags.option({ options: ['requester', 'assignee'] as const, summary: 'Only tasks we asked for (requester) or do (assignee).' })(),
    state: Flags.option({ options: STATE_FLAGS, multiple: true, summary: 'Only tasks in this state (repeat for several).' })(),
    skill: Flags.string({ summary: 'Only tasks of this skill.' }),
    peer: Flags.string({ summary: 'Only tasks with this DID as the other party.' }),
    limit: Flags.integer({ min: 1, max: 1000, summary: 'At most this many tasks (default 50).' }),
    'page-token': Flags.string({ summary: 'Continue after a previous page (the value printed after "more:"; nextPageToken in --json).' }),
  };

  async run() {
    const { flags } = await this.parse(ListTasks);
    const res = await (await this.client(flags)).a2a.listTasks({
      role: flags.role ? roleOfFlag(flags.role) : 0,
      states: (flags.state ?? []).map(stateOfFlag),
      skill: flags.skill ?? '',
      peer: flags.peer ?? '',
      pageSize: flags.limit ?? 0,
      pageToken: flags['page-token'] ?? '',
    });
    const now = Date.now();
    if (res.tasks.length) this.log(formatColumns(res.tasks.map((t) => taskCells(t, now))));
    this.log(plural(res.tasks.length, 'task'));
    if (res.nextPageToken) this.log(`more: --page-token ${res.nextPageToken}`);
    return { tasks: res.tasks.map(taskJson), nextPageToken: res.nextPageToken };
  }
}
