// Pure stepping of an xstate machine, and the split of its actions into what the runtime must persist and do.
//
// xstate's initialTransition/transition execute nothing: they return the next snapshot and the actions.
// Named actions of a machine are *effects* (I/O the actor shell performs after the append); a delayed
// `xstate.raise` (an `after` transition) is a *timer* with a due time derived from the event's own timestamp;
// `xstate.cancel` removes one. Nothing else may come out of a persisted machine.
import { createActor, type AnyActorScope, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from 'xstate';

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
  const { scope, actions } = inertScope(machine);
  const snapshot = machine.getInitialSnapshot(scope, input);
  return { snapshot, accepted: true, ...splitActions(actions.splice(0), at) };
}

export function step(machine: AnyStateMachine, current: AnyMachineSnapshot, event: TimedEvent): Step {
  const { scope, actions } = inertScope(machine);
  const snapshot = machine.transition(current, event, scope);
  const executed = actions.splice(0);
  if (snapshot === current) return { snapshot, accepted: false, effects: [], timers: [] };
  return { snapshot, accepted: true, ...splitActions(executed, event.at) };
}

/**
 * xstate's `initialTransition`/`transition` do exactly this but build a throwaway actor for every call
 * (~90 µs, most of a message's CPU). One inert scope per machine, whose executor only collects actions, makes
 * a step ~15 µs. It is the same public `ActorLogic` API (`getInitialSnapshot`, `transition`) with the scope
 * xstate builds internally; xstate is pinned and test/unit/transitions.test.ts checks both agree.
 * Safe because persisted machines neither invoke nor spawn children (splitActions refuses such actions).
 */
const scopes = new WeakMap<AnyStateMachine, { scope: AnyActorScope; actions: { type: string; params?: unknown }[] }>();

function inertScope(machine: AnyStateMachine) {
  let entry = scopes.get(machine);
  if (!entry) {
    const self = createActor(machine);
    const actions: { type: string; params?: unknown }[] = [];
    const scope = {
      self,
      system: self.system,
      id: '',
      sessionId: '',
      defer: () => {},
      logger: () => {},
      stopChild: () => {},
      emit: () => {},
      actionExecutor: (action: { type: string; params?: unknown }) => void actions.push(action),
    } as unknown as AnyActorScope;
    entry = { scope, actions };
    scopes.set(machine, entry);
  }
  entry.actions.length = 0;
  return entry;
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

/**
 * One stored event, stepped: the init event (its data is the input) starts the machine, any other steps it.
 * The fold of recovery and of replay tools alike.
 */
export function stepStored(
  machine: AnyStateMachine,
  current: AnyMachineSnapshot | undefined,
  e: { type: string; at: number; data: unknown },
): Step {
  return e.type === INIT_EVENT || !current
    ? start(machine, e.data, e.at)
    : step(machine, current, { type: e.type, ...(e.data as object), at: e.at });
}

/** What a replay tool shows and what snapshots store: the JSON-able part of a snapshot. */
export function stateOf(snapshot: AnyMachineSnapshot): { value: unknown; context: unknown; status: string } {
  return { value: snapshot.value, context: snapshot.context, status: snapshot.status };
}
