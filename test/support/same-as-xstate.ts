// The runtime steps machines through one reused inert scope (runtime/transitions.ts) instead of xstate's own
// initialTransition()/transition(); each machine's tests pin, through these, that both agree: same snapshots, the
// same named actions as effects, the same timers set and cancelled, the same refusals.
import { expect } from 'vitest';
import { initialTransition, transition, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { start, step, type Step, type TimedEvent } from '../../runtime/transitions.ts';

type Actions = readonly { type: string; params?: unknown }[];
const named = (actions: Actions) => actions.filter((a) => !a.type.startsWith('xstate.')).map((a) => ({ type: a.type, params: a.params }));
const timerIds = (actions: Actions) =>
  actions.filter((a) => a.type === 'xstate.raise' || a.type === 'xstate.cancel')
    .map((a) => (a.params as { id?: string; sendId?: string }).id ?? (a.params as { sendId: string }).sendId);

function expectSame(ours: Step, official: AnyMachineSnapshot, actions: Actions): void {
  expect(ours.snapshot.value).toEqual(official.value);
  expect(ours.snapshot.context).toEqual(official.context);
  expect(ours.snapshot.status).toEqual(official.status);
  if (!ours.accepted) return;
  expect(ours.effects).toEqual(named(actions));
  expect(ours.timers.map((t) => t.id)).toEqual(timerIds(actions));
}

/** Both start `machine` from `input`; asserts they agree. The pair of snapshots to step on. */
export function startBoth(machine: AnyStateMachine, input: unknown, at: number): { official: AnyMachineSnapshot; ours: AnyMachineSnapshot } {
  const [official, actions] = initialTransition(machine, input);
  const ours = start(machine, input, at);
  expectSame(ours, official, actions);
  return { official, ours: ours.snapshot };
}

/** Both step `event`; asserts they agree, refusals included. The next pair. */
export function stepBoth(
  machine: AnyStateMachine, both: { official: AnyMachineSnapshot; ours: AnyMachineSnapshot }, event: TimedEvent,
): { official: AnyMachineSnapshot; ours: AnyMachineSnapshot } {
  const [official, actions] = transition(machine, both.official, event as never);
  const ours = step(machine, both.ours, event);
  expect(ours.accepted).toBe(official !== both.official);
  expectSame(ours, official, actions);
  return { official, ours: ours.snapshot };
}
