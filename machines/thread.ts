// A thread's lifecycle and membership on one replica, event-sourced on `thread/<id>`. The chain and its consensus
// (Raft or Tendermint) live beside it; this machine says whether the thread runs here at all.
//
//   creator:  inviting ──JOINED (quorum reached)──▶ active ──FAIL──▶ failed
//                 └── a quorum of one (f = 0): active at once
//   invited:  invited ──JOIN──▶ active            invited ──DECLINE──▶ declined
//
// Creating sends a signed invite to every other replica (effect `invite`, through the outbox: delivered across
// restarts and offline peers). A replica that joins tells the creator (`announceJoin`); the creator is `inviting`
// until enough replicas have joined for the backend to make progress (Raft: a majority, Tendermint: 2f+1 of
// 3f+1), then `active`. Entries may be appended while inviting: they commit once a quorum runs. FAIL (a consensus
// actor past its crash budget) marks the thread failed here, with the reason; other threads carry on.
//
// Pure: time arrives as `event.at` (the creation time as `input.createdAt`); no I/O, no clock, no randomness.
import { setup } from 'xstate';

export type ThreadBackend = 'raft' | 'tendermint';

export interface ThreadInput {
  id: string;
  backend: ThreadBackend;
  /** Every replica's DID, the creator's included, in the thread's order (Tendermint's proposer order). */
  replicas: string[];
  creator: string;
  /** The DID of this replica. */
  self: string;
  /** Faults tolerated: Raft n ≥ 2f+1, Tendermint n ≥ 3f+1 (checked by the shell with `faultRule`). */
  f: number;
  createdAt: number;
}

export interface ThreadContext extends ThreadInput {
  /** Replicas known to have joined (the creator knows; others know only themselves and the creator). */
  joined: string[];
  failureReason: string;
  updatedAt: number;
}

export type ThreadEvent =
  | { type: 'JOIN'; at: number }
  | { type: 'DECLINE'; at: number }
  | { type: 'JOINED'; did: string; at: number }
  | { type: 'FAIL'; reason: string; at: number };

export const THREAD_STATES = ['inviting', 'invited', 'active', 'declined', 'failed'] as const;
export type ThreadState = (typeof THREAD_STATES)[number];

/** Replicas that must run for the backend to commit: Raft a majority (n - f), Tendermint 2f+1 (n - f at n = 3f+1). */
export function quorum(backend: ThreadBackend, n: number, f: number): number {
  return backend === 'raft' ? Math.floor(n / 2) + 1 : n - f;
}

/** Why `n` replicas cannot tolerate `f` faults on `backend`, or null when they can. */
export function faultRule(backend: ThreadBackend, n: number, f: number): string | null {
  const need = backend === 'raft' ? 2 * f + 1 : 3 * f + 1;
  if (n >= need) return null;
  return backend === 'raft'
    ? `raft needs n ≥ 2f+1 replicas: tolerating ${f} crashed replica${f === 1 ? '' : 's'} takes ${need}, and there ${n === 1 ? 'is' : 'are'} ${n}`
    : `tendermint needs n ≥ 3f+1 validators: tolerating ${f} Byzantine validator${f === 1 ? '' : 's'} takes ${need}, and there ${n === 1 ? 'is' : 'are'} ${n}`;
}

/** The most faults `n` replicas tolerate on `backend`. */
export function maxFaults(backend: ThreadBackend, n: number): number {
  return backend === 'raft' ? Math.floor((n - 1) / 2) : Math.floor((n - 1) / 3);
}

const atOf = (event: unknown): number => (event as { at: number }).at;

const threadSetup = setup({
  types: {
    context: {} as ThreadContext,
    input: {} as ThreadInput,
    events: {} as ThreadEvent,
  },
  actions: {
    // Effect: a signed invite to `to`, through the outbox.
    invite: (_, _params: { to: string }) => {},
    // Effect: tell the creator we joined, through the outbox.
    announceJoin: (_, _params: { to: string }) => {},
  },
  guards: {
    quorate: ({ context }) => context.joined.length >= quorum(context.backend, context.replicas.length, context.f),
    // A replica of this thread we had not counted yet.
    newMember: ({ context, event }) => {
      const did = (event as { did?: string }).did ?? '';
      return context.replicas.includes(did) && !context.joined.includes(did);
    },
    joinsQuorum: ({ context, event }) =>
      context.joined.length + 1 >= quorum(context.backend, context.replicas.length, context.f) &&
      context.replicas.includes((event as { did: string }).did) && !context.joined.includes((event as { did: string }).did),
    isCreator: ({ context }) => context.self === context.creator,
  },
});

const countJoin = threadSetup.assign(({ context, event }) => ({
  joined: [...context.joined, (event as { did: string }).did],
  updatedAt: atOf(event),
}));

const FAIL = {
  target: '#thread.failed',
  actions: threadSetup.assign(({ event }) => ({ failureReason: (event as { reason: string }).reason, updatedAt: atOf(event) })),
} as const;

export const threadMachine = threadSetup.createMachine({
  id: 'thread',
  context: ({ input }) => ({
    ...input,
    replicas: [...input.replicas],
    joined: input.self === input.creator ? [input.creator] : [],
    failureReason: '',
    updatedAt: input.createdAt,
  }),
  initial: 'starting',
  states: {
    starting: {
      always: [
        {
          guard: 'isCreator',
          target: 'inviting',
          actions: threadSetup.enqueueActions(({ context, enqueue }) => {
            for (const to of context.replicas) if (to !== context.self) enqueue({ type: 'invite', params: { to } });
          }),
        },
        { target: 'invited' },
      ],
    },
    inviting: {
      always: { guard: 'quorate', target: 'active' },
      on: {
        JOINED: [
          { guard: 'joinsQuorum', target: 'active', actions: countJoin },
          { guard: 'newMember', actions: countJoin },
        ],
        FAIL,
      },
    },
    invited: {
      on: {
        JOIN: {
          target: 'active',
          actions: [
            threadSetup.assign(({ context, event }) => ({ joined: [context.creator, context.self], updatedAt: atOf(event) })),
            threadSetup.enqueueActions(({ context, enqueue }) => enqueue({ type: 'announceJoin', params: { to: context.creator } })),
          ],
        },
        DECLINE: { target: 'declined', actions: threadSetup.assign(({ event }) => ({ updatedAt: atOf(event) })) },
        FAIL,
      },
    },
    active: {
      on: {
        // Late joiners still count (GetThread shows who has joined).
        JOINED: { guard: 'newMember', actions: countJoin },
        FAIL,
      },
    },
    declined: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type ThreadSnapshot = ReturnType<typeof threadMachine.getInitialSnapshot>;

/** The flat state name. */
export function threadStateOf(value: unknown): ThreadState {
  return value as ThreadState;
}
