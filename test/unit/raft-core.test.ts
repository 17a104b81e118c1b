// The Raft core (machines/raft) replica by replica, in scripted scenarios: each test drives a hand-held cluster
// (test/sim/raft-harness.ts) message by message, so what it asserts is exactly what the core did.
import { describe, expect, it } from 'vitest';
import { RaftCore, type Message, type Ready } from '../../machines/raft/index.ts';
import { RaftHarness } from '../sim/raft-harness.ts';

const T = 10;

/** A cluster of `ids` whose first replica has campaigned and won (no tick needed), everything delivered. */
function electedCluster(ids = ['a', 'b', 'c'], config: ConstructorParameters<typeof RaftHarness>[1] = () => ({})) {
  const h = new RaftHarness<string>(ids, config);
  h.core(ids[0]).campaign();
  h.deliver();
  expect(h.core(ids[0]).status().role).toBe('leader');
  return h;
}

const involves = (id: string) => (m: Message<unknown>) => m.from === id || m.to === id;

describe('raft core: bootstrap and proposals', () => {
  it('f = 0: a single replica elects itself and commits a proposal with no tick and no network', () => {
    const h = new RaftHarness<string>(['solo']);
    const solo = h.core('solo');
    solo.campaign();
    h.drive();
    expect(solo.status()).toMatchObject({ role: 'leader', term: 1, lead: 'solo' });

    const r = h.propose('solo', 'x');
    expect(r).toEqual({ ok: true, via: 'appended', index: 2, term: 1 });
    expect(h.applied('solo')).toEqual(['x']);
    expect(h.queue).toEqual([]);
    expect(h.delivered).toEqual([]);

    // Exactly two Readies for the proposal: persist the entry; then, only once that is acknowledged, commit it.
    const readies = h.readies.get('solo')!;
    const [persist, commit] = readies.slice(-2);
    expect(persist.entries.map((e) => e.data)).toEqual(['x']);
    expect(persist.committed).toEqual([]);
    expect(persist.mustSync).toBe(true);
    expect(commit.entries).toEqual([]);
    expect(commit.committed.map((e) => e.data)).toEqual(['x']);
    expect(commit.hardState).toEqual({ term: 1, vote: 'solo', commit: 2 });
    expect(commit.mustSync).toBe(false);
  });

  it('f = 0: a restarted single replica leads again at once and commits, still with no tick', () => {
    const h = new RaftHarness<string>(['solo']);
    h.drive();
    expect(h.core('solo').status()).toMatchObject({ role: 'leader', term: 1 }); // on creation, no campaign() needed
    h.propose('solo', 'x');
    h.crash('solo');
    h.restart('solo');
    expect(h.core('solo').status()).toMatchObject({ role: 'leader', term: 2 });
    h.propose('solo', 'y');
    expect(h.applied('solo')).toEqual(['x', 'y']);
  });

  it('f = 0: the entry is not committed until the shell says it is persisted (advance)', () => {
    const solo = new RaftCore<string>({ id: 's', peers: ['s'], electionTicks: T, heartbeatTicks: 1, random: () => 0 });
    solo.campaign();
    solo.advance(solo.ready());
    solo.advance(solo.ready()); // the leader's empty entry, committed
    solo.propose('x');
    const rd = solo.ready();
    expect(rd.entries.map((e) => e.data)).toEqual(['x']);
    expect(solo.status().commit).toBe(1);
    expect(solo.hasReady()).toBe(false); // one Ready at a time
    expect(() => solo.ready()).toThrow(/advance/);
    solo.advance(rd);
    expect(solo.status().commit).toBe(2);
    expect(solo.ready().committed.map((e) => e.data)).toEqual(['x']);
  });

  it('the creator campaigns at once: a new cluster elects it and commits the first proposal without waiting a timeout', () => {
    const h = new RaftHarness<string>(['a', 'b', 'c']);
    // Before the campaign nobody leads and nobody can propose.
    expect(h.core('b').propose('early')).toEqual({ ok: false, reason: 'no-leader' });
    h.core('a').campaign();
    h.deliver();
    expect(h.core('a').status()).toMatchObject({ role: 'leader', term: 1 });
    for (const id of ['b', 'c']) expect(h.core(id).status()).toMatchObject({ role: 'follower', term: 1, lead: 'a' });

    h.propose('a', 'first');
    h.deliver();
    for (const id of ['a', 'b', 'c']) expect(h.applied(id)).toEqual(['first']);
    // No replica ever ticked: the election was the explicit campaign, not a timeout.
    expect(h.delivered.filter((m) => m.type === 'heartbeat')).toEqual([]);
    // The creator skipped the pre-vote round: a new cluster has no leader to protect.
    expect(h.delivered.filter((m) => m.type === 'preVote')).toEqual([]);
  });

  it('a follower forwards proposals to the leader (coalesced into one message per Ready); without a leader it drops them with a reason', () => {
    const h = electedCluster();
    const b = h.core('b');
    expect(b.propose('x')).toEqual({ ok: true, via: 'forwarded', to: 'a' });
    expect(b.propose('y')).toEqual({ ok: true, via: 'forwarded', to: 'a' });
    h.drive();
    const props = h.queue.filter((m) => m.type === 'prop');
    expect(props).toEqual([{ type: 'prop', from: 'b', to: 'a', term: 0, data: ['x', 'y'] }]);
    h.deliver();
    for (const id of ['a', 'b', 'c']) expect(h.applied(id)).toEqual(['x', 'y']);

    // A leaderless replica (here: isolated until its leader is forgotten) says so instead of losing the proposal.
    h.crash('a');
    h.tickAll(2 * T); // b and c time out (15 ticks) and pre-campaign: they have no leader
    expect(h.core('c').status().lead).toBe(null);
    expect(h.core('c').propose('z')).toEqual({ ok: false, reason: 'no-leader' });
  });

  it('a forwarded proposal that reaches a replica that no longer leads is dropped, not forwarded again', () => {
    const h = electedCluster();
    h.core('b').propose('x');
    h.drive();
    const prop = h.queue.find((m) => m.type === 'prop')!;
    h.queue = [];
    h.core('c').step({ ...prop, to: 'c' });
    h.drive();
    expect(h.queue).toEqual([]);
  });

  it('batching: proposals made between two Readies go out as one append per follower and one write', () => {
    const h = electedCluster();
    const a = h.core('a');
    for (const p of ['p1', 'p2', 'p3', 'p4', 'p5']) a.propose(p);
    h.drive();
    const writes = h.readies.get('a')!.filter((rd) => rd.entries.length > 0);
    expect(writes.at(-1)!.entries.map((e) => e.data)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    const apps = h.queue.filter((m) => m.type === 'app');
    expect(apps.map((m) => [m.to, m.type === 'app' && m.entries.length])).toEqual([
      ['b', 5],
      ['c', 5],
    ]);
    h.deliver();
    for (const id of ['a', 'b', 'c']) expect(h.applied(id)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
  });
});

describe('raft core: replication', () => {
  it('a new commit index reaches a follower that holds every entry as a `commit` message, which it does not answer', () => {
    const h = electedCluster();
    h.propose('a', 'x');
    // Deliver the appends and their answers, but hold the leader's next messages to look at them.
    h.deliver((m) => (m.from === 'a' && m.type !== 'app' ? 'hold' : 'deliver'));
    expect(h.applied('a')).toEqual(['x']);
    const news = h.queue.filter((m) => m.from === 'a');
    expect(news.map((m) => [m.type, m.to])).toEqual([['commit', 'b'], ['commit', 'c']]);
    expect(news[0]).toMatchObject({ prevIndex: 2, prevTerm: 1, commit: 2 });
    const before = h.delivered.length;
    h.deliver();
    for (const id of ['b', 'c']) expect(h.applied(id)).toEqual(['x']);
    // Nothing came back: the followers had nothing new to say.
    expect(h.delivered.slice(before).filter((m) => m.to === 'a')).toEqual([]);
  });

  it('a `commit` message commits nothing the follower cannot vouch for (a log that does not match there)', () => {
    const f = new RaftCore<string>({ id: 'f', peers: ['l', 'f', 'x'], electionTicks: T, heartbeatTicks: 1, random: () => 0 });
    f.step({ type: 'commit', from: 'l', to: 'f', term: 1, prevIndex: 3, prevTerm: 1, commit: 3 });
    expect(f.status()).toMatchObject({ commit: 0, lead: 'l', term: 1 });
    f.step({ type: 'app', from: 'l', to: 'f', term: 1, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 1, data: 'a' }, { index: 2, term: 1, data: 'b' }], commit: 0 });
    f.step({ type: 'commit', from: 'l', to: 'f', term: 1, prevIndex: 1, prevTerm: 1, commit: 2 });
    expect(f.status().commit).toBe(1);
  });

  it('maxBytesPerMessage: appends are cut by payload size, but always carry at least one entry', () => {
    const h = electedCluster(['a', 'b', 'c'], () => ({ maxBytesPerMessage: 10, entrySize: (d: string) => d.length }));
    for (const p of ['aaaa', 'bbbb', 'cccc', 'dddddddddddddddd', 'e']) h.core('a').propose(p);
    h.drive();
    const toB = h.queue.filter((m) => m.type === 'app' && m.to === 'b');
    expect(toB.map((m) => (m.type === 'app' ? m.entries.map((e) => e.data) : []))).toEqual([
      ['aaaa', 'bbbb'],
      ['cccc'],
      ['dddddddddddddddd'],
      ['e'],
    ]);
    h.deliver();
    for (const id of ['a', 'b', 'c']) expect(h.applied(id)).toEqual(['aaaa', 'bbbb', 'cccc', 'dddddddddddddddd', 'e']);
  });

  it('pipelining: the leader streams several appends to a follower before any answer, within the in-flight window', () => {
    const h = electedCluster(['a', 'b', 'c'], () => ({ maxEntriesPerMessage: 2, maxInflight: 3 }));
    const a = h.core('a');
    for (let i = 1; i <= 10; i++) a.propose(`p${i}`);
    h.drive();
    const toB = h.queue.filter((m) => m.type === 'app' && m.to === 'b');
    // Three messages of two entries each are out at once (the window), none acknowledged yet.
    expect(toB.map((m) => (m.type === 'app' ? m.entries.map((e) => e.data) : []))).toEqual([
      ['p1', 'p2'],
      ['p3', 'p4'],
      ['p5', 'p6'],
    ]);
    expect(toB.map((m) => (m.type === 'app' ? m.prevIndex : -1))).toEqual([1, 3, 5]);

    // Answers free the window and the rest follows; everything commits.
    h.deliver();
    for (const id of ['a', 'b', 'c']) expect(h.applied(id)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i + 1}`));
  });

  it('pipelining across Readies: a second proposal is sent before the first is acknowledged', () => {
    const h = electedCluster();
    h.propose('a', 'x');
    h.propose('a', 'y');
    const apps = h.queue.filter((m) => m.type === 'app' && m.to === 'b');
    expect(apps.map((m) => (m.type === 'app' ? [m.prevIndex, m.entries.map((e) => e.data)] : []))).toEqual([
      [1, ['x']],
      [2, ['y']],
    ]);
  });

  it("the leader's own entry counts toward the quorum only once it has persisted it", () => {
    const h = electedCluster();
    h.crash('c'); // a and b are the quorum: a's own copy is needed
    const a = h.core('a');
    a.propose('x');
    const rd = a.ready(); // taken, not yet persisted
    // Let b receive the append anyway (as if sent early) and answer.
    for (const m of rd.messages) if (m.to === 'b') h.core('b').step(m);
    h.drive(); // b persists and answers; a has a Ready outstanding, so the drive leaves a alone
    for (const m of h.queue.splice(0)) if (m.to === 'a') a.step(m);
    expect(a.status().commit).toBe(1); // b has it, a has not persisted it: 1 of 2 needed
    h.disk('a').persist(rd);
    a.advance(rd);
    expect(a.status().commit).toBe(2);
    h.drive();
    expect(h.applied('a')).toEqual(['x']);
  });

  it('a vote or an acknowledgement is only ever sent in a Ready that persists what it promises', () => {
    const h = new RaftHarness<string>(['a', 'b', 'c']);
    h.core('a').campaign();
    h.deliver();
    h.propose('a', 'x');
    h.deliver();
    for (const id of ['b', 'c']) {
      const readies = h.readies.get(id)!;
      let disk = { term: 0, vote: null as string | null, last: 0 };
      for (const rd of readies) {
        if (rd.hardState) disk = { ...disk, term: rd.hardState.term, vote: rd.hardState.vote };
        if (rd.entries.length) disk.last = rd.entries.at(-1)!.index;
        for (const m of rd.messages) {
          if (m.type === 'voteResp' && !m.reject) expect(disk).toMatchObject({ term: m.term, vote: m.to });
          if (m.type === 'appResp' && !m.reject) expect(disk.last).toBeGreaterThanOrEqual(m.index);
        }
      }
    }
  });

  it('restart: a replica recovers term, vote and log from its disk, and a lagging follower catches up in one rejection', () => {
    const h = electedCluster();
    h.crash('c');
    for (let i = 1; i <= 20; i++) h.propose('a', `p${i}`);
    h.deliver();
    expect(h.applied('a')).toHaveLength(20);
    expect(h.applied('c')).toEqual([]);

    const before = h.disk('c').hardState;
    h.restart('c');
    expect(h.core('c').status()).toMatchObject({ role: 'follower', term: before.term, vote: before.vote, lastIndex: 1, persistedIndex: 1 });
    const seen = h.delivered.length;
    h.tick('a'); // a heartbeat: c answers, a probes where c's log should end
    h.deliver();
    const rejections = h.delivered.slice(seen).filter((m) => m.type === 'appResp' && m.reject);
    expect(rejections.length).toBeLessThanOrEqual(1);
    expect(h.applied('c')).toEqual(h.applied('a'));
    expect(h.core('c').entries()).toEqual(h.core('a').entries());
  });

  it('restart: a follower with a conflicting uncommitted suffix is backtracked a whole term per round trip and overwritten', () => {
    // a leads term 1 and appends six entries nobody else gets, then crashes.
    const h = electedCluster();
    for (let i = 1; i <= 6; i++) h.propose('a', `old${i}`);
    h.deliver((m) => (involves('a')(m) ? 'drop' : 'deliver'));
    h.crash('a');
    // b leads term 2 with c and commits ten entries; then, restarted, leads term 3 — so its log is long and its
    // probe for a starts far beyond where a's log stops matching.
    h.tickAll(T); // a's lease on b and c runs out (their timeouts are 15 ticks: nobody campaigns by itself)
    h.core('b').campaign();
    h.deliver();
    for (let i = 1; i <= 10; i++) h.propose('b', `new${i}`);
    h.deliver();
    h.crash('b');
    h.restart('b');
    h.tickAll(T);
    h.core('b').campaign();
    h.deliver();
    expect(h.core('b').status()).toMatchObject({ role: 'leader', term: 3, lastIndex: 13 });
    expect(h.applied('b')).toHaveLength(10);

    // a restarts with its stale entries at indexes 2..7 (term 1); b's log has terms 2 and 3 from index 2 on.
    h.restart('a');
    expect(h.core('a').entries().map((e) => e.term)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(h.core('a').status()).toMatchObject({ term: 1, vote: 'a', commit: 1 });
    const seen = h.delivered.length;
    h.tick('b');
    h.deliver();
    const rejections = h.delivered.slice(seen).filter((m) => m.type === 'appResp' && m.reject);
    // Backtracking one index per round trip would take 11 rejections (from 12 down to 1); the hint takes one.
    expect(rejections).toHaveLength(1);
    expect(h.core('a').entries()).toEqual(h.core('b').entries());
    expect(h.applied('a')).toEqual(h.applied('b'));
    expect(h.applied('a').some((d) => d.startsWith('old'))).toBe(false);
  });

  it('a follower commits no further than the last entry the append vouches for (its own later entries may be stale)', () => {
    const e = (index: number, term: number, data: string | null = `e${index}`) => ({ index, term, data });
    // f holds 1..7 from term 1; entries 5..7 are from a deposed leader and may differ from the new leader's.
    const f = new RaftCore<string>(
      { id: 'f', peers: ['f', 'l', 'x'], electionTicks: T, heartbeatTicks: 1, random: () => 0.5, applied: 1 },
      { hardState: { term: 1, vote: null, commit: 1 }, entries: [1, 2, 3, 4, 5, 6, 7].map((i) => e(i, 1)) },
    );
    // The leader of term 2 has committed up to 9, but this message only covers 2..4.
    f.step({ type: 'app', from: 'l', to: 'f', term: 2, prevIndex: 1, prevTerm: 1, entries: [e(2, 1), e(3, 1), e(4, 1)], commit: 9 });
    expect(f.status().commit).toBe(4);
    const rd = f.ready();
    expect(rd.entries).toEqual([]); // nothing conflicted: nothing rewritten
    expect(rd.committed.map((x) => x.index)).toEqual([2, 3, 4]);
    expect(rd.messages).toEqual([{ type: 'appResp', from: 'f', to: 'l', term: 2, index: 4, reject: false, hintIndex: 0, hintTerm: 0 }]);
  });

  it('a stale, reordered append does not cut off entries the follower already holds', () => {
    const h = electedCluster();
    h.propose('a', 'x');
    const early = h.queue.find((m) => m.type === 'app' && m.to === 'b')!;
    h.deliver();
    h.propose('a', 'y');
    h.deliver();
    h.core('b').step(early); // arrives late, after y
    expect(h.core('b').entries().map((e) => e.data)).toEqual([null, 'x', 'y']);
  });

  it('restart with config.applied: entries the state machine already applied are not handed out again', () => {
    const h = electedCluster();
    for (let i = 1; i <= 3; i++) h.propose('a', `p${i}`);
    h.deliver();
    const disk = h.disk('b');
    const b = new RaftCore<string>(
      { id: 'b', peers: ['a', 'b', 'c'], electionTicks: T, heartbeatTicks: 1, random: () => 0.5, applied: 2 },
      disk.load(),
    );
    const rd = b.ready();
    expect(rd.committed.map((e) => e.index)).toEqual([3, 4]);
    expect(rd.hardState).toBeUndefined();
    expect(rd.entries).toEqual([]);
  });
});

describe('raft core: elections', () => {
  it('the election timeout is drawn from the injected random in [T, 2T)', () => {
    for (const [r, expected] of [
      [0, T],
      [0.5, T + 5],
      [0.9999, 2 * T - 1],
    ] as const) {
      const core = new RaftCore<string>({ id: 'a', peers: ['a', 'b', 'c'], electionTicks: T, heartbeatTicks: 1, random: () => r });
      let ticks = 0;
      while (core.status().role === 'follower') {
        core.tick();
        ticks++;
      }
      expect([r, ticks]).toEqual([r, expected]);
      expect(core.status()).toMatchObject({ role: 'pre-candidate', term: 0 }); // pre-vote: the term is not raised yet
    }
  });

  it('heartbeats every H ticks', () => {
    const h = electedCluster(['a', 'b', 'c'], () => ({ heartbeatTicks: 3 }));
    const seen = h.queue.length;
    h.tick('a', 6);
    expect(h.queue.slice(seen).filter((m) => m.type === 'heartbeat').map((m) => m.to)).toEqual(['b', 'c', 'b', 'c']);
  });

  it('pre-vote: a partitioned replica does not raise its term, and on rejoining does not depose the leader', () => {
    const run = (preVote: boolean) => {
      const h = electedCluster(['a', 'b', 'c'], () => ({ preVote }));
      const term = h.core('a').status().term;
      for (let i = 0; i < 10 * T; i++) {
        h.tickAll();
        h.deliver((m) => (involves('c')(m) ? 'drop' : 'deliver'));
      }
      const isolatedTerm = h.core('c').status().term;
      // Heal: everyone talks again for a while.
      for (let i = 0; i < 3 * T; i++) {
        h.tickAll();
        h.deliver();
      }
      return { term, isolatedTerm, after: h.core('a').status(), c: h.core('c').status() };
    };

    const withPreVote = run(true);
    expect(withPreVote.isolatedTerm).toBe(withPreVote.term);
    expect(withPreVote.after).toMatchObject({ role: 'leader', term: withPreVote.term });
    expect(withPreVote.c).toMatchObject({ role: 'follower', lead: 'a', term: withPreVote.term });

    // The same without pre-vote: the isolated replica's term climbs, and its return forces a new election.
    const without = run(false);
    expect(without.isolatedTerm).toBeGreaterThan(without.term + 3);
    expect(without.after.term).toBeGreaterThan(without.term);
  });

  it('check-quorum: an isolated leader steps down within two election timeouts, and the others elect a new one', () => {
    const h = electedCluster(['a', 'b', 'c'], (id) => ({ random: () => ({ a: 0.5, b: 0.1, c: 0.7 })[id]! }));
    const cut = (m: Message<string>) => (involves('a')(m) ? 'drop' : 'deliver');
    let ticks = 0;
    while (h.core('a').status().role === 'leader' && ticks < 5 * T) {
      h.tickAll();
      h.deliver(cut);
      ticks++;
    }
    expect(h.core('a').status().role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(2 * T);
    for (let i = 0; i < 3 * T; i++) {
      h.tickAll();
      h.deliver(cut);
    }
    expect(h.core('b').status().role).toBe('leader');
    expect(h.core('b').status().term).toBeGreaterThan(1);
  });

  it('without check-quorum an isolated leader keeps believing it leads (what check-quorum prevents)', () => {
    const h = electedCluster(['a', 'b', 'c'], () => ({ checkQuorum: false }));
    for (let i = 0; i < 5 * T; i++) {
      h.tick('a');
      h.queue = [];
    }
    expect(h.core('a').status().role).toBe('leader');
  });

  it('a replica that hears from its leader ignores vote requests (leader stickiness)', () => {
    const h = electedCluster();
    h.tickAll(); // heartbeats
    h.deliver();
    const seen = h.delivered.length;
    h.core('c').campaign(); // c forces an election though a is alive
    h.drive();
    const votes = h.queue.filter((m) => m.type === 'vote');
    expect(votes).toHaveLength(2);
    h.deliver();
    // a and b did not answer: c stays a candidate alone, a keeps leading term 1.
    expect(h.delivered.slice(seen).filter((m) => m.type === 'voteResp')).toHaveLength(0);
    expect(h.core('a').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('a campaign through pre-vote (a later nudge) never deposes a live leader, not even after the next heartbeat', () => {
    const h = electedCluster();
    h.tickAll(); // heartbeats
    h.deliver();
    h.core('c').campaign({ preVote: true });
    h.deliver();
    expect(h.core('c').status().term).toBe(1); // a pre-vote changes no term
    for (let i = 0; i < 2; i++) {
      h.tickAll();
      h.deliver();
    }
    expect(h.core('a').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(h.core('c').status()).toMatchObject({ role: 'follower', term: 1, lead: 'a' });
  });

  it('the election restriction: a replica missing a committed entry cannot win', () => {
    const h = electedCluster();
    h.crash('c');
    h.propose('a', 'x');
    h.deliver();
    h.restart('c');
    h.crash('a');
    h.tickAll(2 * T); // b's lease from a ends
    h.core('c').campaign();
    h.deliver();
    expect(h.core('c').status().role).not.toBe('leader');
    expect(h.core('b').status().vote).not.toBe('c');
  });

  it('a candidate steps down when a leader of its term appears', () => {
    const h = new RaftHarness<string>(['a', 'b', 'c']);
    h.core('a').campaign();
    h.core('b').campaign(); // both candidates of term 1
    h.deliver((m) => (m.from === 'b' && m.type === 'vote' ? 'drop' : 'deliver'));
    expect(h.core('a').status().role).toBe('leader');
    expect(h.core('b').status()).toMatchObject({ role: 'follower', lead: 'a', term: 1 });
  });

  it('a candidate does not count a vote granted in an earlier term', () => {
    const c = new RaftCore<string>(
      { id: 'c', peers: ['a', 'b', 'c', 'd', 'e'], electionTicks: T, heartbeatTicks: 1, random: () => 0.5, preVote: false },
      { hardState: { term: 2, vote: null, commit: 0 }, entries: [] },
    );
    c.campaign(); // term 3
    c.step({ type: 'voteResp', from: 'a', to: 'c', term: 2, reject: false });
    c.step({ type: 'voteResp', from: 'b', to: 'c', term: 2, reject: false });
    expect(c.status()).toMatchObject({ role: 'candidate', term: 3 });
    c.step({ type: 'voteResp', from: 'a', to: 'c', term: 3, reject: false });
    c.step({ type: 'voteResp', from: 'a', to: 'c', term: 3, reject: false }); // a duplicate counts once
    expect(c.status().role).toBe('candidate');
    c.step({ type: 'voteResp', from: 'b', to: 'c', term: 3, reject: false });
    expect(c.status().role).toBe('leader');
  });

  it('rejects messages from strangers and messages meant for someone else', () => {
    const h = electedCluster();
    const a = h.core('a');
    const status = a.status();
    a.step({ type: 'vote', from: 'mallory', to: 'a', term: 99, lastIndex: 99, lastTerm: 99 });
    a.step({ type: 'vote', from: 'b', to: 'c', term: 99, lastIndex: 99, lastTerm: 99 });
    expect(a.status()).toEqual(status);
    expect(a.hasReady()).toBe(false);
  });
});

describe('raft core: contract checks', () => {
  it('refuses configurations that cannot work', () => {
    const base = { id: 'a', peers: ['a', 'b', 'c'], electionTicks: T, heartbeatTicks: 1, random: () => 0 };
    expect(() => new RaftCore({ ...base, id: 'z' })).toThrow(/not among/);
    expect(() => new RaftCore({ ...base, peers: ['a', 'a'] })).toThrow(/duplicate/);
    expect(() => new RaftCore({ ...base, heartbeatTicks: T })).toThrow(/electionTicks/);
    expect(() => new RaftCore(base, { hardState: { term: 1, vote: null, commit: 5 }, entries: [] })).toThrow(/commit/);
  });

  it('advance() must be given the outstanding Ready', () => {
    const core = new RaftCore<string>({ id: 'a', peers: ['a'], electionTicks: T, heartbeatTicks: 1, random: () => 0 });
    core.campaign();
    const rd: Ready<string> = core.ready();
    expect(() => core.advance({ ...rd })).toThrow(/outstanding/);
    core.advance(rd);
    expect(() => core.advance(rd)).toThrow(/outstanding/);
  });
});
