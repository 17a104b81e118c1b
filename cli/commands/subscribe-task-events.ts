import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { eventJson, eventLine } from '../task-format.ts';

export default class SubscribeTaskEvents extends BaseCommand {
  static summary = 'Print a task\'s events (tokens, tool calls, progress, artifacts) as they come, until the task ends.';
  static description = 'Stored events first (from --from-seq), then live ones, with no gap and no repeat; the command '
    + 'ends by itself once the task has ended and every event is printed. One line per event: "#seq KIND time text…". '
    + 'With --json, one JSON object per line (JSON Lines), like subscribe-inbox.';
  static examples = [
    '<%= config.bin %> subscribe-task-events --id task_01jy…',
    '<%= config.bin %> subscribe-task-events --id task_01jy… --json | jq -j \'select(.kind == "TOKEN") | .text\'',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
    'from-seq': Flags.integer({ min: 0, summary: 'Start at this event number (default 1: everything).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SubscribeTaskEvents);
    const json = this.jsonEnabled();
    const client = await this.client(flags);
    // Fail now, with "daemon not running" or "not found", rather than after the status line.
    await client.a2a.getTask({ taskId: flags.id });
    const stream = client.a2a.subscribeTaskEvents({ taskId: flags.id, fromSeq: flags['from-seq'] ?? 0 });
    const end = await this.follow(stream, `following task ${flags.id}...`, ({ event }) => event && (json ? JSON.stringify(eventJson(event)) : eventLine(event)));
    if (end === 'ended') process.stderr.write('task ended; no more events\n');
  }
}
