import { Args } from '@oclif/core';
import { BaseCommand, clock } from '../base.ts';

export default class Replay extends BaseCommand {
  static summary = 'A persisted event log, with the state after each event.';
  static description = 'Each line: sequence number, event type, time, the state after the event, and the effects and '
    + 'timers the event scheduled (run once when it happened, never on replay); for a stream without a state machine '
    + '(task-events/…), the event itself; for a thread\'s consensus log (thread-raft/…, thread-tm/…), what each step '
    + 'made durable, in words. --json prints an array of steps.';
  static examples = ['<%= config.bin %> replay outbox/msg_01jx…', '<%= config.bin %> replay task/task_01jy…', '<%= config.bin %> replay thread-raft/thr_01jz…', '<%= config.bin %> streams'];
  static args = {
    stream: Args.string({ required: true, description: 'stream name, as listed by `streams`' }),
  };

  async run() {
    const { args, flags } = await this.parse(Replay);
    const json = this.jsonEnabled();
    const steps: unknown[] = [];
    for await (const s of (await this.client(flags)).diag.replayStream({ stream: args.stream })) {
      const state = parse(s.stateJson);
      if (json) {
        steps.push({ seq: s.seq, type: s.type, atMs: s.atMs, event: parse(s.eventJson), state, context: parse(s.contextJson), effects: s.effects, timers: s.timers });
      } else {
        const effects = s.effects.length ? `  effects: ${s.effects.join(', ')}` : '';
        const timers = s.timers.length ? `  timers: ${s.timers.join(', ')}` : '';
        // A stream no machine folds (task-events/…): the event itself says more than a null state — or its
        // summary, for the streams the daemon describes (a thread's consensus log).
        const after = state === null ? summaryOf(s.eventJson) ?? shorten(s.eventJson) : `→ ${stateName(state)}`;
        this.log(`#${s.seq}  ${s.type}  at ${clock(s.atMs)}  ${after}${effects}${timers}`);
      }
    }
    return json ? steps : undefined;
  }
}

function summaryOf(json: string): string | undefined {
  const event = parse(json) as { summary?: unknown } | null;
  return typeof event?.summary === 'string' ? event.summary : undefined;
}

/** Compact event JSON on one line, cut at 160 characters. */
const shorten = (json: string): string => (json.length > 160 ? `${json.slice(0, 159)}…` : json);

function parse(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** An xstate state value as one word: "retrying", or "sending.awaitingAck" for nested states. */
function stateName(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    return Object.entries(v).map(([k, child]) => (child && (typeof child === 'string' || typeof child === 'object') ? `${k}.${stateName(child)}` : k)).join(', ');
  }
  return String(v);
}
