import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { stateName, taskJson } from '../task-format.ts';

export default class CreateTask extends BaseCommand {
  static summary = 'Ask another agent to do a task (delivered through the outbox, like a message).';
  static description = 'Prints the task id and its state (SUBMITTED until the assignee accepts). With --wait-accept the '
    + 'command also waits up to that long for the assignee to pick the task up and shows the move, e.g. '
    + '"SUBMITTED → WORKING". Follow the task with wait-task, get-task or subscribe-task-events.';
  static examples = [
    '<%= config.bin %> create-task --to did:key:z6MkAbc… --skill text-generation --input "Summarise OpenMolt in one line"',
    '<%= config.bin %> create-task --to did:key:z6MkAbc… --skill summarize --meta \'{"lang":"en"}\' --deadline 5m --wait-accept 1s',
  ];

  static flags = {
    to: Flags.string({ required: true, summary: 'Assignee DID (did:key:z6Mk…).' }),
    skill: Flags.string({ required: true, summary: 'Capability name, e.g. text-generation (or a2a:v1:cap:text-generation).' }),
    meta: Flags.string({ summary: 'Metadata: a JSON object, e.g. \'{"lang":"en"}\'.' }),
    input: Flags.string({ multiple: true, summary: 'A text part of the input (repeat for several parts).' }),
    deadline: Flags.string({ summary: 'Fail the task if not finished by then: a duration from now ("5m") or a time ("2026-05-30T12:00:00Z").' }),
    'task-id': Flags.string({ summary: 'Choose the id (task_<ULID>): re-running with the same id never creates a second task.' }),
    'wait-accept': Flags.string({ summary: 'Then wait up to this long (e.g. "1s") for the assignee to move the task on; default: do not wait.' }),
  };

  async run() {
    const { flags } = await this.parse(CreateTask);
    const { parseDuration } = await import('../../runtime/config.ts');
    const metadataJson = flags.meta === undefined ? '' : this.metaJson(flags.meta);
    let deadlineMs: number | undefined;
    if (flags.deadline !== undefined) {
      const rel = parseDuration(flags.deadline);
      const abs = rel === undefined ? Date.parse(flags.deadline) : Date.now() + rel;
      if (Number.isNaN(abs)) this.usageError(`--deadline: expected a duration like "5m" or a time like 2026-05-30T12:00:00Z, got ${JSON.stringify(flags.deadline)}`);
      deadlineMs = abs;
    }
    let waitMs = 0;
    if (flags['wait-accept'] !== undefined) {
      const parsed = parseDuration(flags['wait-accept']);
      if (parsed === undefined) this.usageError(`--wait-accept: expected a duration like "1s" or "500ms", got ${JSON.stringify(flags['wait-accept'])}`);
      waitMs = parsed;
    }

    const client = await this.client(flags);
    const { task } = await client.a2a.createTask({
      to: flags.to,
      skill: flags.skill,
      metadataJson,
      input: (flags.input ?? []).map((text) => ({ text })),
      deadlineMs,
      taskId: flags['task-id'] ?? '',
    });
    let now = task!;
    if (waitMs > 0) {
      // The assignee's answer arrives as a state change; GetTask is cheap, so poll it briefly.
      const until = Date.now() + waitMs;
      while (now.state === task!.state && Date.now() < until) {
        await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, until - Date.now()))));
        now = (await client.a2a.getTask({ taskId: task!.id })).task!;
      }
    }
    const status = now.state === task!.state ? stateName(task!.state) : `${stateName(task!.state)} → ${stateName(now.state)}`;
    this.rows([['Task ID', now.id], ['Status', status]]);
    return { task: taskJson(now) };
  }

  private metaJson(text: string): string {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      this.usageError(`--meta: not valid JSON (${(e as Error).message}): ${text}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.usageError(`--meta: expected a JSON object like '{"lang":"en"}', got ${text}`);
    return JSON.stringify(v);
  }
}
