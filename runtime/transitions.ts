// Pure stepping of an xstate machine, and the split of its actions into what the runtime must persist and do.
//
// xstate's initialTransition/transition execute nothing: they return the next snapshot and the actions.
// Named actions of a machine are *effects* (I/O the actor shell performs after the append); a delayed
// `xstate.raise` (an `after` transition) is a *timer* with a due time derived from the event's own timestamp;
// `xstate.cancel` removes one. Nothing else may come out of a persisted machine.
import { initialTransition, transition, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from 'xstate';

export interface Effect {
  type: string;
  params: unknown;
}

export type TimerOp =
  | { op: 'set'; id: string; due: number; event: EventObject }
  | { op: 'cancel'; id: string };

export interface Step {
  snapshot: AnyMachineSnapshot;
  effects: Effect[];
  timers: TimerOp[];
  /** false when the current state does not handle the event: nothing is appended. */
  accepted: boolean;
}

/** The event as the machine sees it: the stored fields plus the timestamp. */
export type TimedEvent = EventObject & { at: number };

export const INIT_EVENT = 'xstate.init';

export function start(machine: AnyStateMachine, input: unknown, at: number): Step {
  const [snapshot, actions] = initialTransition(machine, input);
  return { snapshot, accepted: true, ...splitActions(actions, at) };
}

export function step(machine: AnyStateMachine, current: AnyMachineSnapshot, event: TimedEvent): Step {
  const [snapshot, actions] = transition(machine, current, event);
  if (snapshot === current) return { snapshot, accepted: false, effects: [], timers: [] };
  return { snapshot, accepted: true, ...splitActions(actions, event.at) };
}

function splitActions(actions: readonly { type: string; params?: unknown }[], at: number): Pick<Step, 'effects' | 'timers'> {
  const effects: Effect[] = [];
  const timers: TimerOp[] = [];
  for (const a of actions) {
    if (a.type === 'xstate.raise') {
      const p = a.params as { event: EventObject; id?: string; delay?: number };
      if (p.delay === undefined) throw new Error('immediate raise reached the runtime; xstate should have handled it');
      timers.push({ op: 'set', id: p.id ?? p.event.type, due: at + p.delay, event: p.event });
    } else if (a.type === 'xstate.cancel') {
      timers.push({ op: 'cancel', id: (a.params as { sendId: string }).sendId });
    } else if (a.type.startsWith('xstate.')) {
      throw new Error(`action ${a.type} is not supported in a persisted machine`);
    } else {
      effects.push({ type: a.type, params: a.params ?? null });
    }
  }
  return { effects, timers };
}

/** What a replay tool shows and what snapshots store: the JSON-able part of a snapshot. */
export function stateOf(snapshot: AnyMachineSnapshot): { value: unknown; context: unknown; status: string } {
  return { value: snapshot.value, context: snapshot.context, status: snapshot.status };
}
