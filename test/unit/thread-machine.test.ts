// The thread machine (machines/thread.ts): who is invited, when the creator's thread becomes active, joining,
// declining, failing — and the runtime steps it exactly as xstate does.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { start, step, type TimedEvent } from '../../runtime/transitions.ts';
import { faultRule, maxFaults, quorum, threadMachine, type ThreadEvent, type ThreadInput } from '../../machines/thread.ts';
import { startBoth, stepBoth } from '../support/same-as-xstate.ts';

const [A, B, C, D] = ['did:key:z6MkA', 'did:key:z6MkB', 'did:key:z6MkC', 'did:key:z6MkD'];
const T0 = 1_780_000_000_000;
const ev = (e: ThreadEvent) => e as TimedEvent;
const input = (over: Partial<ThreadInput> = {}): ThreadInput => ({
  id: 'thr_01JZ0000000000000000000000', backend: 'raft', replicas: [A!, B!, C!], creator: A!, self: A!, f: 1, createdAt: T0, ...over,
});

describe('thread machine', () => {
  it('a creator invites every other replica and is active once a quorum has joined', () => {
    const s0 = start(threadMachine, input(), T0);
    expect(s0.snapshot.value).toBe('inviting');
    expect(s0.effects).toEqual([{ type: 'invite', params: { to: B } }, { type: 'invite', params: { to: C } }]);
    const outsider = step(threadMachine, s0.snapshot, ev({ type: 'JOINED', did: D!, at: T0 + 1 }));
    expect(outsider.accepted).toBe(false);
    const s1 = step(threadMachine, s0.snapshot, ev({ type: 'JOINED', did: C!, at: T0 + 2 }));
    expect(s1.snapshot.value).toBe('active'); // A and C: a majority of 3
    const s2 = step(threadMachine, s1.snapshot, ev({ type: 'JOINED', did: B!, at: T0 + 3 }));
    expect(s2.snapshot.context.joined).toEqual([A, C, B]);
    expect(step(threadMachine, s2.snapshot, ev({ type: 'JOINED', did: B!, at: T0 + 4 })).accepted).toBe(false);
  });

  it('f = 0: a thread of one is active at once, inviting nobody', () => {
    const s = start(threadMachine, input({ replicas: [A!], f: 0 }), T0);
    expect(s.snapshot.value).toBe('active');
    expect(s.effects).toEqual([]);
  });

  it('tendermint waits for 2f+1 of 3f+1', () => {
    let s = start(threadMachine, input({ backend: 'tendermint', replicas: [A!, B!, C!, D!] }), T0).snapshot;
    s = step(threadMachine, s, ev({ type: 'JOINED', did: B!, at: T0 })).snapshot;
    expect(s.value).toBe('inviting');
    s = step(threadMachine, s, ev({ type: 'JOINED', did: D!, at: T0 })).snapshot;
    expect(s.value).toBe('active');
  });

  it('an invited replica joins (telling the creator) or declines; FAIL ends it with the reason', () => {
    const invited = start(threadMachine, input({ self: B! }), T0);
    expect(invited.snapshot.value).toBe('invited');
    expect(invited.effects).toEqual([]);
    const joined = step(threadMachine, invited.snapshot, ev({ type: 'JOIN', at: T0 + 5 }));
    expect(joined.snapshot.value).toBe('active');
    expect(joined.effects).toEqual([{ type: 'announceJoin', params: { to: A } }]);
    expect(step(threadMachine, invited.snapshot, ev({ type: 'DECLINE', at: T0 + 5 })).snapshot.value).toBe('declined');
    const failed = step(threadMachine, joined.snapshot, ev({ type: 'FAIL', reason: 'raft actor crashed 4 times in 60 s', at: T0 + 9 }));
    expect(failed.snapshot.value).toBe('failed');
    expect(failed.snapshot.context.failureReason).toBe('raft actor crashed 4 times in 60 s');
    expect(step(threadMachine, failed.snapshot, ev({ type: 'JOIN', at: T0 + 10 })).accepted).toBe(false);
  });

  it('the rule for n and f, stated', () => {
    expect(faultRule('raft', 3, 1)).toBeNull();
    expect(faultRule('raft', 2, 1)).toBe('raft needs n ≥ 2f+1 replicas: tolerating 1 crashed replica takes 3, and there are 2');
    expect(faultRule('tendermint', 3, 1)).toBe('tendermint needs n ≥ 3f+1 validators: tolerating 1 Byzantine validator takes 4, and there are 3');
    expect([maxFaults('raft', 5), maxFaults('tendermint', 7), maxFaults('raft', 1)]).toEqual([2, 2, 0]);
    expect([quorum('raft', 5, 2), quorum('tendermint', 4, 1)]).toEqual([3, 3]);
  });

  it('the runtime steps it exactly as xstate does (property)', () => {
    const event = fc.oneof(
      fc.constantFrom(A!, B!, C!, D!).map((did) => ({ type: 'JOINED', did })),
      fc.constant({ type: 'JOIN' }), fc.constant({ type: 'DECLINE' }), fc.constant({ type: 'FAIL', reason: 'x' }),
    );
    fc.assert(
      fc.property(fc.constantFrom(A!, B!), fc.constantFrom<'raft' | 'tendermint'>('raft', 'tendermint'), fc.array(event, { maxLength: 8 }), (self, backend, events) => {
        let both = startBoth(threadMachine, input({ self, backend, replicas: backend === 'raft' ? [A!, B!, C!] : [A!, B!, C!, D!] }), T0);
        events.forEach((e, i) => (both = stepBoth(threadMachine, both, { ...e, at: T0 + i } as TimedEvent)));
      }),
      { numRuns: 200 },
    );
  });
});
