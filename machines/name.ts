// The life of one name this daemon claims (e.g. `swift-falcon`), event-sourced on its own stream.
//
//   claiming ──PUBLISHED──▶ claimed ──after renewal──▶ renewing ──PUBLISHED──▶ claimed (the next round)
//      │                      │                          │
//      │ after expiry         │ renewal fired after      │ after expiry
//      ▼                      ▼ expiry (daemon was down) ▼ (renewals kept failing)
//   expired                expired                    expired
//
//   The renewal is due at record.expiresAt - renewBeforeMs; the expiry at the confirmed record's expiresAt.
//   claiming and renewing each: publishing ──PUBLISH_FAILED──▶ backoff ──after retry──▶ publishing (same record)
//   …and from claiming, claimed or renewing: RELEASE → released; LOST (another DID's earlier live claim wins the
//   name in the DHT) → lost. Both publish a release record while one of ours may still be live: a storing peer
//   keeps a live claim against any other DID's record (actors/discovery/record-guard.ts), so a lost claim must be
//   withdrawn by its owner before the winner's record can take its place there.
//   expired, released and lost are final; claiming the name again starts a new stream.
//
// Records. The machine decides what each record says; the shell (actors/discovery) signs it with the daemon's key
// (actors/discovery/records.ts `signName`) and puts it in the DHT. Every record has a new, larger `seq` (renewals
// outrank what they renew; a replay of an older one never wins the selector), `claimedAt` of the first claim,
// `issuedAt` = the `at` of the event that made it, `expiresAt` = issuedAt + ttl. A retry republishes the same
// record. `context.record` is the last record confirmed published; `context.pending` the one being published.
//
// The effect `publishRecord` resolves with PUBLISHED, PUBLISH_FAILED or LOST for its `seq`; a result for an older
// seq (an attempt since replaced) changes nothing. Renewal, retry and expiry are `after` delays computed from
// absolute times in the context minus `updatedAt` (the `at` of the transition that entered the state), so the
// runtime's persisted due time is exactly that absolute time (record.expiresAt - renewBefore, …) and a restart
// re-arms it there.
//
// Consent (another DID's live claim refuses ours) is checked by the shell before it starts this machine
// (actors/discovery/names.ts `claimRefusal`); a race lost anyway arrives as LOST.
//
// Pure: time arrives as `event.at` (the claim time as `input.at`); no I/O, no clock, no randomness.
import { setup } from 'xstate';

export interface NameInput {
  name: string;
  /** Our DID: the owner of every record. */
  owner: string;
  /** The claim time: claimedAt and issuedAt of the first record. */
  at: number;
  /** A record's lifetime (the protocol's: 24 h). */
  ttlMs: number;
  /** Renew this long before the live record expires (e.g. half the TTL). Less than ttlMs. */
  renewBeforeMs: number;
  /** Wait this long after a failed publish before trying the same record again. */
  retryMs: number;
  /**
   * The highest seq this owner used for this name before (an earlier claim, since ended): the new claim's records
   * count on from it, so they outrank our own old release still live in the DHT. 0 for a first claim.
   */
  previousSeq?: number;
}

/** What one record says, before the shell signs it (actors/discovery/records.ts signs and checks exactly this). */
export interface NameRecordParams {
  name: string;
  did: string;
  claimedAt: number;
  issuedAt: number;
  expiresAt: number;
  seq: number;
  released: boolean;
}

export interface PublishRecordParams {
  record: NameRecordParams;
}

export interface NameContext {
  name: string;
  owner: string;
  ttlMs: number;
  renewBeforeMs: number;
  retryMs: number;
  claimedAt: number;
  /** The highest seq issued so far. */
  seq: number;
  /** The last record confirmed published (null until the claim's first publish is confirmed). */
  record: NameRecordParams | null;
  /** The record being published (claim or renewal), null when none. */
  pending: NameRecordParams | null;
  /** `at` of the last transition. */
  updatedAt: number;
  lastError: string;
  /** Who holds the name instead, when it was lost. */
  lostTo: { did: string; expiresAt: number } | null;
}

export type NameEvent =
  | { type: 'PUBLISHED'; seq: number; at: number }
  | { type: 'PUBLISH_FAILED'; seq: number; error: string; at: number }
  | { type: 'LOST'; seq: number; holder: string; holderExpiresAt: number; at: number }
  | { type: 'RELEASE'; at: number };

export const NAME_STATES = ['claiming', 'claimed', 'renewing', 'expired', 'released', 'lost'] as const;
export type NameState = (typeof NAME_STATES)[number];

/** The flat state name (`{ claiming: 'backoff' }` → `claiming`). */
export function nameStateOf(value: unknown): NameState {
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as NameState;
}

const atOf = (event: unknown): number => (event as { at: number }).at;

/** The record our name currently stands on in the DHT: the pending one may already be there, so the later expiry. */
export function liveExpiry(context: NameContext): number {
  return Math.max(context.record?.expiresAt ?? 0, context.pending?.expiresAt ?? 0);
}

function issue(context: NameContext, at: number, released = false): NameRecordParams {
  return {
    name: context.name,
    did: context.owner,
    claimedAt: context.claimedAt,
    issuedAt: at,
    // A release stays until the last of our records has expired, so it outranks each of them.
    expiresAt: released ? liveExpiry(context) : at + context.ttlMs,
    seq: context.seq + 1,
    released,
  };
}

const nameSetup = setup({
  types: {
    context: {} as NameContext,
    input: {} as NameInput,
    events: {} as NameEvent,
  },
  actions: {
    // Effect: sign the record with our key and put it in the DHT; then check the name's winner there.
    // Resolves with PUBLISHED / PUBLISH_FAILED / LOST for params.record.seq.
    publishRecord: (_, _params: PublishRecordParams) => {},
  },
  guards: {
    // A result about the record we are publishing now, not one we have since replaced.
    current: ({ context, event }) => (event as { seq?: number }).seq === context.seq,
    // The renewal fired after the record had already expired (the daemon was down): too late to renew.
    lapsed: ({ context, event }) => atOf(event) >= liveExpiry(context),
  },
  delays: {
    renewal: ({ context }) => Math.max(0, context.record!.expiresAt - context.renewBeforeMs - context.updatedAt),
    // The confirmed record's expiry (the first record's while claiming): a renewal not yet confirmed may never have
    // been stored.
    expiry: ({ context }) => Math.max(0, (context.record ?? context.pending)!.expiresAt - context.updatedAt),
    retry: ({ context }) => context.retryMs,
  },
});

const stamp = nameSetup.assign(({ event }) => ({ updatedAt: atOf(event) }));

const publishPending = nameSetup.enqueueActions(({ context, enqueue }) => {
  if (context.pending) enqueue({ type: 'publishRecord', params: { record: context.pending } });
});

const issueRenewal = nameSetup.assign(({ context, event }) => {
  const pending = issue(context, atOf(event));
  return { pending, seq: pending.seq, updatedAt: atOf(event) };
});

const confirm = nameSetup.assign(({ context, event }) => ({ record: context.pending, pending: null, updatedAt: atOf(event), lastError: '' }));

/** Withdraw our claim: a release record that outlives every record of ours (nothing when none is live). */
const withdraw = nameSetup.enqueueActions(({ context, event, enqueue }) => {
  if (atOf(event) >= liveExpiry(context)) return;
  const record = issue(context, atOf(event), true);
  enqueue.assign({ seq: record.seq, pending: null });
  enqueue({ type: 'publishRecord', params: { record } });
});

const LOST = {
  guard: 'current',
  target: '#name.lost',
  actions: [
    nameSetup.assign(({ event }) => {
      const e = event as Extract<NameEvent, { type: 'LOST' }>;
      return { lostTo: { did: e.holder, expiresAt: e.holderExpiresAt }, updatedAt: e.at };
    }),
    withdraw,
  ],
} as const;

const RELEASE = { target: '#name.released', actions: [stamp, withdraw] } as const;

/** claiming and renewing: publish the pending record until it is confirmed, lost, or our name expires. */
const publishing = {
  initial: 'publishing',
  after: { expiry: { target: '#name.expired', actions: stamp } },
  on: {
    PUBLISHED: { guard: 'current', target: '#name.claimed', actions: confirm },
    LOST,
    RELEASE,
  },
  states: {
    publishing: {
      entry: publishPending,
      on: {
        PUBLISH_FAILED: {
          guard: 'current',
          target: 'backoff',
          actions: nameSetup.assign(({ event }) => ({ lastError: (event as { error: string }).error, updatedAt: atOf(event) })),
        },
      },
    },
    backoff: { after: { retry: { target: 'publishing', actions: stamp } } },
  },
} as const;

export const nameMachine = nameSetup.createMachine({
  id: 'name',
  context: ({ input }) => {
    const seq = (input.previousSeq ?? 0) + 1;
    const first: NameRecordParams = {
      name: input.name,
      did: input.owner,
      claimedAt: input.at,
      issuedAt: input.at,
      expiresAt: input.at + input.ttlMs,
      seq,
      released: false,
    };
    return {
      name: input.name,
      owner: input.owner,
      ttlMs: input.ttlMs,
      renewBeforeMs: input.renewBeforeMs,
      retryMs: input.retryMs,
      claimedAt: input.at,
      seq,
      record: null,
      pending: first,
      updatedAt: input.at,
      lastError: '',
      lostTo: null,
    };
  },
  initial: 'claiming',
  states: {
    claiming: publishing,
    claimed: {
      after: {
        renewal: [
          { guard: 'lapsed', target: 'expired', actions: stamp },
          { target: 'renewing', actions: issueRenewal },
        ],
      },
      on: { LOST, RELEASE },
    },
    renewing: publishing,
    expired: { type: 'final' },
    released: { type: 'final' },
    lost: { type: 'final' },
  },
});

export type NameSnapshot = ReturnType<typeof nameMachine.getInitialSnapshot>;
