import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { KIND_FLAGS, kindOfFlag } from '../task-format.ts';

export default class PublishEvent extends BaseCommand {
  static summary = 'Assignee: add an event to a working task\'s stream (a token, tool call, progress, artifact or status note).';
  static description = 'Events are numbered from 1 per task and reach the requester live (subscribe-task-events). '
    + 'Prints the event\'s number.';
  static examples = [
    '<%= config.bin %> publish-event --id task_01jy… --kind token --text "OpenMolt "',
    '<%= config.bin %> publish-event --id task_01jy… --kind progress --progress 0.5 --text "halfway"',
    '<%= config.bin %> publish-event --id task_01jy… --kind tool-call --data \'{"tool":"search","query":"libp2p"}\'',
    '<%= config.bin %> publish-event --id task_01jy… --kind artifact --artifact-text "draft…" --artifact-name draft',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
    kind: Flags.option({ options: KIND_FLAGS, required: true, summary: 'What the event is.' })(),
    text: Flags.string({ summary: 'Text: the token, or a note.' }),
    data: Flags.string({ summary: 'A JSON document (e.g. a tool call and its result).' }),
    progress: Flags.string({ summary: 'With --kind progress: how far along, 0 to 1 (e.g. 0.5).' }),
    'artifact-text': Flags.string({ multiple: true, summary: 'With --kind artifact: a text part of the artifact (repeat for several).' }),
    'artifact-name': Flags.string({ summary: 'With --kind artifact: its name.' }),
  };

  async run() {
    const { flags } = await this.parse(PublishEvent);
    let progress = 0;
    if (flags.progress !== undefined) {
      if (flags.kind !== 'progress') this.usageError('--progress goes with --kind progress');
      progress = Number(flags.progress);
      if (flags.progress.trim() === '' || !Number.isFinite(progress) || progress < 0 || progress > 1) {
        this.usageError(`--progress: expected a number from 0 to 1, got ${JSON.stringify(flags.progress)}`);
      }
    }
    let dataJson = '';
    if (flags.data !== undefined) {
      try {
        dataJson = JSON.stringify(JSON.parse(flags.data));
      } catch (e) {
        this.usageError(`--data: not valid JSON (${(e as Error).message}): ${flags.data}`);
      }
    }
    const texts = flags['artifact-text'] ?? [];
    if (flags.kind === 'artifact' && !texts.length) this.usageError('--kind artifact needs --artifact-text');
    if (flags.kind !== 'artifact' && (texts.length || flags['artifact-name'] !== undefined)) this.usageError('--artifact-text and --artifact-name go with --kind artifact');
    const { seq } = await (await this.client(flags)).a2a.publishTaskEvent({
      taskId: flags.id,
      kind: kindOfFlag(flags.kind),
      text: flags.text ?? '',
      dataJson,
      progress,
      artifact: texts.length ? { name: flags['artifact-name'] ?? '', parts: texts.map((text) => ({ text })) } : undefined,
    });
    this.rows([['Seq', seq]]);
    return { seq };
  }
}
