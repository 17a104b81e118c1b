import { Args } from '@oclif/core';
import { BaseCommand, clock } from '../base.ts';

export default class Replay extends BaseCommand {
  static summary = 'A persisted event log, with the state after each event.';
  static description = 'Each line: sequence number, event type, time, the state after the event, and the effects the event '
    + 'scheduled (run once when it happened, never on replay). --json prints an array of steps.';
  static examples = ['<%= config.bin %> replay outbox/msg_01jx…', '<%= config.bin %> streams'];
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
        steps.push({ seq: s.seq, type: s.type, atMs: s.atMs, event: parse(s.eventJson), state, context: parse(s.contextJson), effects: s.effects });
      } else {
        const effects = s.effects.length ? `  effects: ${s.effects.join(', ')}` : '';
        this.log(`#${s.seq}  ${s.type}  at ${clock(s.atMs)}  → ${stateName(state)}${effects}`);
      }
    }
    return json ? steps : undefined;
  }
}

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
