// Replay a stream for people debugging: each persisted event with the state right after it and the effects
// and timers it asked for — computed purely, so replaying performs nothing.
import type { AnyMachineSnapshot, AnyStateMachine } from 'xstate';
import type { EventStore } from './event-store.ts';
import { stateOf, stepStored, type Step } from './transitions.ts';

export interface ReplayStep {
  seq: number;
  type: string;
  at: number;
  event: unknown;
  /** The machine state after the event, or null for a stream without a machine. */
  state: unknown;
  context: unknown;
  effects: string[];
  timers: string[];
}

/**
 * `machine` folds the stream (state after each event); a stream without one may have `describe`, which turns an
 * event's data (and type) into what a person reads (e.g. bytes decoded, with a `summary` line).
 */
export function* replayStream(store: EventStore, stream: string, machine: AnyStateMachine | undefined, describe?: (data: unknown, type: string) => unknown): Generator<ReplayStep> {
  let snapshot: AnyMachineSnapshot | undefined;
  for (const e of store.read(stream)) {
    let s: Step | undefined;
    if (machine) {
      s = stepStored(machine, snapshot, e);
      snapshot = s.snapshot;
    }
    const state = snapshot ? stateOf(snapshot) : undefined;
    yield {
      seq: e.seq,
      type: e.type,
      at: e.at,
      event: describe ? describe(e.data, e.type) : e.data,
      state: state?.value ?? null,
      context: state?.context ?? null,
      effects: s?.effects.map((x) => x.type) ?? [],
      timers: s?.timers.map((t) => (t.op === 'set' ? `set ${t.id} @ ${new Date(t.due).toISOString()}` : `cancel ${t.id}`)) ?? [],
    };
  }
}
