import { Flags } from '@oclif/core';
import { BaseCommand, humanDuration, quote } from '../base.ts';
import { artifactsText, stateName, taskJson } from '../task-format.ts';
import type { MoltmeshClient } from '../../sdk/client.ts';
import { TaskEventKind, TaskState, type Task } from '../../proto/gen/moltmesh/v1/tasks.ts';

/** wait-task's exit status by outcome (1 and 2 stay the CLI's "error" and "bad usage"). */
export const WAIT_EXIT = { completed: 0, failed: 3, canceled: 4, rejected: 5, timedOut: 6, inputRequired: 7 } as const;
const EXIT_BY_STATE: Record<number, number> = {
  [TaskState.TASK_STATE_COMPLETED]: WAIT_EXIT.completed,
  [TaskState.TASK_STATE_FAILED]: WAIT_EXIT.failed,
  [TaskState.TASK_STATE_CANCELED]: WAIT_EXIT.canceled,
  [TaskState.TASK_STATE_REJECTED]: WAIT_EXIT.rejected,
  [TaskState.TASK_STATE_INPUT_REQUIRED]: WAIT_EXIT.inputRequired,
  [TaskState.TASK_STATE_AUTH_REQUIRED]: WAIT_EXIT.inputRequired,
};

export default class WaitTask extends BaseCommand {
  static summary = 'Wait until a task ends; print its outcome and output.';
  static description = 'Prints the final state and, for a completed task, its output: the text of its artifacts (or, '
    + 'when it has none, the text of its TOKEN events); for a failed, canceled or rejected one, the reason. On a '
    + 'terminal, a live status line (elapsed time, state, events so far) is shown on stderr while waiting.\n\n'
    + `Exit status: ${WAIT_EXIT.completed} completed, ${WAIT_EXIT.failed} failed, ${WAIT_EXIT.canceled} canceled, `
    + `${WAIT_EXIT.rejected} rejected, ${WAIT_EXIT.timedOut} still open when --timeout passed, ${WAIT_EXIT.inputRequired} waiting for `
    + 'your input (with --until-input); 1 error (e.g. unknown task), 2 bad usage.';
  static examples = [
    '<%= config.bin %> wait-task --id task_01jy…',
    '<%= config.bin %> wait-task --id task_01jy… --timeout 30s --json | jq -r .output',
  ];

  static flags = {
    id: Flags.string({ required: true, summary: 'Task id (task_…).' }),
    timeout: Flags.string({ summary: 'Give up after this long, e.g. "30s" (exit 6); default: wait until the task ends.' }),
    'until-input': Flags.boolean({ summary: 'Also return when the task waits for your answer (input-required, auth-required; exit 7): print the question.' }),
  };

  async run() {
    const { flags } = await this.parse(WaitTask);
    let timeoutMs = 0;
    if (flags.timeout !== undefined) {
      const { parseDuration } = await import('../../runtime/config.ts');
      const parsed = parseDuration(flags.timeout);
      if (parsed === undefined || parsed === 0) this.usageError(`--timeout: expected a duration like "30s" or "5m", got ${JSON.stringify(flags.timeout)}`);
      timeoutMs = parsed;
    }
    const client = await this.client(flags);
    const live = process.stderr.isTTY ? new StatusLine(client, flags.id) : undefined;
    const interrupt = () => {
      live?.stop();
      process.exit(130);
    };
    process.once('SIGINT', interrupt);
    let res;
    try {
      // The call's own deadline leaves the daemon time to answer "timed out" itself.
      res = await client.a2a.waitTask({ taskId: flags.id, timeoutMs, untilInputRequired: flags['until-input'] }, timeoutMs ? { timeoutMs: timeoutMs + 10_000 } : {});
    } finally {
      live?.stop();
      process.off('SIGINT', interrupt);
    }
    const task = res.task!;
    const completed = task.state === TaskState.TASK_STATE_COMPLETED;
    const output = completed ? artifactsText(task.artifacts) || (await tokenText(client, task)) : '';
    const rows: Array<[string, string]> = [];
    if (res.timedOut) {
      rows.push(['Status', `${stateName(task.state)} (still open${flags.timeout ? ` after ${flags.timeout}` : ''})`]);
    } else {
      rows.push(['Status', stateName(task.state)]);
      const asking = task.state === TaskState.TASK_STATE_INPUT_REQUIRED || task.state === TaskState.TASK_STATE_AUTH_REQUIRED;
      if (completed) rows.push(['Output', output ? quote(output) : '(none)']);
      else if (asking) rows.push(['Question', quote(task.statusMessage)]);
      else if (task.statusMessage) rows.push(['Reason', quote(task.statusMessage)]);
    }
    this.rows(rows);
    process.exitCode = res.timedOut ? WAIT_EXIT.timedOut : EXIT_BY_STATE[task.state] ?? 1;
    return { task: taskJson(task), timedOut: res.timedOut, output };
  }
}

/** The TOKEN events' text, for a completed task without text artifacts (its stream ends: the task has). */
async function tokenText(client: MoltmeshClient, task: Task): Promise<string> {
  if (!task.lastEventSeq) return '';
  let text = '';
  try {
    for await (const { event } of client.a2a.subscribeTaskEvents({ taskId: task.id, fromSeq: 1 }, { timeoutMs: 10_000 })) {
      if (event?.kind === TaskEventKind.TASK_EVENT_KIND_TOKEN) text += event.text;
    }
  } catch {
    // Best effort: the artifacts are the task's output; the tokens only stand in for them.
  }
  return text;
}

/** "⠹ 3s  WORKING  7 events" on stderr, redrawn in place, from GetTask every 200 ms. */
class StatusLine {
  readonly #client: MoltmeshClient;
  readonly #id: string;
  readonly #started = Date.now();
  readonly #timer: NodeJS.Timeout;
  #frame = 0;
  #state = '…';
  #events = 0;
  #polling = false;
  #lastPoll = 0;
  #stopped = false;

  constructor(client: MoltmeshClient, id: string) {
    this.#client = client;
    this.#id = id;
    this.#timer = setInterval(() => this.#tick(), 100);
    this.#tick();
  }

  #tick(): void {
    if (!this.#polling && Date.now() - this.#lastPoll >= 200) {
      this.#polling = true;
      this.#lastPoll = Date.now();
      this.#client.a2a.getTask({ taskId: this.#id }).then(({ task }) => {
        this.#state = stateName(task!.state);
        this.#events = task!.lastEventSeq;
      }, () => undefined).finally(() => (this.#polling = false));
    }
    const spinner = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[this.#frame++ % 10];
    const events = this.#events === 1 ? '1 event' : `${this.#events} events`;
    const ms = Date.now() - this.#started;
    const elapsed = ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : humanDuration(ms);
    process.stderr.write(`\r\x1b[2K${spinner} ${elapsed}  ${this.#state}  ${events}`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    process.stderr.write('\r\x1b[2K');
  }
}
