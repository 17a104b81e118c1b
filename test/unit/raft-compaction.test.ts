// Log compaction in the Raft core (machines/raft): the log with an offset (a base: the last compacted entry's index
// and term), and the core's safe index — what every replica holds durably and is committed — which the leader
// computes and carries on its messages, and below which (once applied) a replica may compact. Scripted with the
// hand-driven harness (test/sim/raft-harness.ts), whose disks compact the way the LMDB shell does.
import { describe, expect, it } from 'vitest';
import { RaftCore, type Entry, type Message } from '../../machines/raft/index.ts';
import { RaftLog } from '../../machines/raft/log.ts';
import { RaftHarness } from '../sim/raft-harness.ts';

const T = 10;
const e = (index: number, term: number): Entry<string> => ({ index, term, data: `x${index}` });

describe('raft log with a base (compacted prefix)', () => {
  it('answers for its base and what follows it, and for nothing below', () => {
    const log = new RaftLog([e(6, 2), e(7, 3)], 0, { index: 5, term: 2 });
    expect([log.lastIndex, log.lastTerm, log.persisted]).toEqual([7, 3, 7]);
    expect(log.committed).toBe(5); // compacted entries were committed
    expect([log.term(4), log.term(5), log.term(6), log.term(7), log.term(8)]).toEqual([-1, 2, 2, 3, -1]);
    expect([log.matchTerm(5, 2), log.matchTerm(4, 2), log.matchTerm(4, -1)]).toEqual([true, false, true]);
    expect(log.slice(6, 99)).toEqual([e(6, 2), e(7, 3)]);
    expect(log.slice(7, 6)).toEqual([]);
    expect(() => log.slice(5, 7)).toThrow(/entries up to 5 were compacted/);
  });

  it('refuses persisted entries that do not follow the base', () => {
    expect(() => new RaftLog([e(5, 2)], 0, { index: 5, term: 2 })).toThrow(/has index 5, want 6/);
    expect(() => new RaftLog([e(6, 1)], 0, { index: 5, term: 2 })).toThrow(/term goes down at index 6/);
  });

  it('appends and overwrites a conflicting suffix after the base, matching at the base itself (log matching)', () => {
    const log = new RaftLog([e(6, 2), e(7, 2), e(8, 3)], 6, { index: 5, term: 2 });
    expect(log.maybeAppend(5, 1, 6, [e(6, 2)])).toBeNull(); // the base's term differs: no match
    expect(log.maybeAppend(5, 2, 7, [e(6, 2), e(7, 4)])).toBe(7);
    expect(log.slice(6, 9)).toEqual([e(6, 2), e(7, 4)]);
    expect([log.lastIndex, log.committed]).toEqual([7, 7]);
    expect(() => log.append([e(5, 9)])).toThrow(/overwriting committed entry 5/);
  });

  it('an empty log after compaction still says how up to date it is (the election restriction)', () => {
    const log = new RaftLog<string>([], 10, { index: 10, term: 3 });
    expect([log.lastIndex, log.lastTerm]).toEqual([10, 3]);
    expect(log.isUpToDate(9, 3)).toBe(false);
    expect(log.isUpToDate(10, 3)).toBe(true);
    expect(log.isUpToDate(2, 4)).toBe(true);
    expect(log.isUpToDate(20, 2)).toBe(false);
  });

  it('fast backtracking stops at the base; below it, the only safe guess is (0, 0)', () => {
    const log = new RaftLog([e(6, 2), e(7, 3), e(8, 5)], 0, { index: 5, term: 2 });
    expect(log.findConflictByTerm(8, 4)).toEqual([7, 3]);
    expect(log.findConflictByTerm(8, 2)).toEqual([6, 2]);
    expect(log.findConflictByTerm(5, 2)).toEqual([5, 2]);
    expect(log.findConflictByTerm(8, 1)).toEqual([0, 0]);
  });

  it('compacts only committed, durable entries, keeping the last one\'s term', () => {
    const log = new RaftLog([e(1, 1), e(2, 1), e(3, 2)], 2);
    expect(() => log.compact(3)).toThrow(/cannot compact to 3/);
    log.compact(2);
    expect([log.base, log.lastIndex, log.term(2), log.term(1)]).toEqual([{ index: 2, term: 1 }, 3, 1, -1]);
    log.compact(1); // already gone: nothing to do
    expect(log.base).toEqual({ index: 2, term: 1 });

    log.append([e(4, 2)]);
    log.commitTo(4);
    expect(() => log.compact(4)).toThrow(/persisted 3/); // not written here yet: the shell could not persist its compaction
    expect(log.takeUnsent()).toEqual([e(4, 2)]);
    log.persistedTo(4, 2);
    log.compact(4);
    expect([log.base, log.lastIndex, log.hasUnsent()]).toEqual([{ index: 4, term: 2 }, 4, false]);
  });
});

/** a, b, c with a elected and `payloads` committed and applied everywhere. */
function clusterWith(...payloads: string[]) {
  const h = new RaftHarness<string>(['a', 'b', 'c']);
  h.core('a').campaign();
  h.deliver();
  for (const p of payloads) h.propose('a', p);
  h.deliver();
  for (const id of h.ids) expect(h.applied(id)).toEqual(payloads);
  return h;
}

const compactable = (h: RaftHarness<string>, id: string) => h.core(id).status().compactable;

describe('raft core: compaction', () => {
  it('the leader learns what every replica holds; followers learn it from its next message; nobody compacts further', () => {
    const h = clusterWith('x', 'y'); // indexes: 1 the leader's empty entry, 2 x, 3 y
    expect(h.core('a').status()).toMatchObject({ commit: 3, applied: 3, compactable: 3 });
    h.tick('a'); // a heartbeat carries it
    h.deliver();
    for (const id of h.ids) expect(compactable(h, id)).toBe(3);
    expect(() => h.core('b').compact(4)).toThrow(/cannot compact to 4: only entries up to 3/);

    for (const id of h.ids) h.compact(id, 3);
    for (const id of h.ids) expect(h.core(id).status()).toMatchObject({ base: { index: 3, term: 1 }, lastIndex: 3 });
    expect(h.core('a').entries()).toEqual([]);
    h.propose('b', 'z'); // forwarded: the logs go on from the base
    h.deliver();
    for (const id of h.ids) expect(h.applied(id)).toEqual(['x', 'y', 'z']);
    expect(h.core('c').entries().map((x) => x.data)).toEqual(['z']);
  });

  it('only applied entries may go: a replica that has not applied them yet must wait', () => {
    const core = new RaftCore<string>({ id: 's', peers: ['s'], electionTicks: T, heartbeatTicks: 1, random: () => 0.5 });
    core.advance(core.ready()); // its empty entry, persisted: committed at once (f = 0), not yet applied
    expect(core.status()).toMatchObject({ commit: 1, applied: 0, compactable: 0 });
    expect(() => core.compact(1)).toThrow(/cannot compact to 1/);
    core.advance(core.ready()); // applied
    core.compact(1);
    expect(core.status()).toMatchObject({ base: { index: 1, term: 1 }, compactable: 1 });
  });

  it('a replica that is down holds compaction back everywhere; once it catches up, compaction goes on', () => {
    const h = clusterWith('x');
    h.tick('a');
    h.deliver();
    expect(compactable(h, 'b')).toBe(2);
    h.crash('c');
    for (const p of ['p1', 'p2', 'p3']) h.propose('a', p);
    h.tick('a', 3);
    h.deliver();
    expect(h.applied('b')).toEqual(['x', 'p1', 'p2', 'p3']);
    for (const id of ['a', 'b']) expect(compactable(h, id)).toBe(2);
    h.restart('c');
    h.tick('a', 2);
    h.deliver();
    h.tick('a');
    h.deliver();
    for (const id of h.ids) expect(compactable(h, id)).toBe(5);
  });

  it('a follower keeps the safe index in memory only: after a restart it re-learns it from the leader', () => {
    const h = clusterWith('x', 'y');
    h.tick('a');
    h.deliver();
    h.compact('b', 2);
    h.crash('b');
    h.restart('b');
    expect(h.core('b').status()).toMatchObject({ base: { index: 2, term: 1 }, applied: 3, compactable: 2 }); // its own base: it was safe
    h.tick('a');
    h.deliver();
    expect(compactable(h, 'b')).toBe(3);
  });

  it("the leader counts its own entries only once its write is done, though it sends them before (as the LMDB shell does)", () => {
    const peers = ['a', 'b', 'c'];
    const cores = Object.fromEntries(peers.map((id) => [id, new RaftCore<string>({ id, peers, electionTicks: T, heartbeatTicks: 1, random: () => 0.5 })]));
    const queue: Message<string>[] = [];
    const flush = (id: string) => {
      while (cores[id]!.hasReady()) {
        const rd = cores[id]!.ready();
        queue.push(...rd.messages);
        cores[id]!.advance(rd);
      }
    };
    const deliver = () => {
      while (queue.length > 0) {
        const m = queue.shift()!;
        cores[m.to]!.step(m);
        flush(m.to);
      }
    };
    const a = cores.a!;
    a.campaign();
    flush('a');
    deliver();
    a.tick();
    flush('a');
    deliver();
    expect(a.status()).toMatchObject({ role: 'leader', commit: 1, compactable: 1 });

    a.propose('x');
    const writing = a.ready(); // entry 2, being written
    queue.push(...writing.messages); // its appends go out before the write is done
    deliver(); // b and c acknowledge 2: it is committed without a's own copy
    expect(a.status()).toMatchObject({ commit: 2, persistedIndex: 1 });
    a.advance(writing);
    const next = a.ready();
    // What a said while its write was in flight: every replica holds 1 — not 2, which a itself did not yet hold.
    const said = next.messages.filter((m) => m.type === 'commit' || m.type === 'app' || m.type === 'heartbeat');
    expect(said.length).toBeGreaterThan(0);
    for (const m of said) expect(m).toMatchObject({ compactable: 1 });
    a.advance(next);
    a.tick();
    const heartbeats = a.ready().messages.filter((m) => m.type === 'heartbeat');
    expect(heartbeats.map((m) => m.type === 'heartbeat' && m.compactable)).toEqual([2, 2]);
  });

  it('log matching across the base: a follower that missed entries is caught up from just after its base', () => {
    const h = clusterWith('x', 'y');
    h.tick('a');
    h.deliver();
    for (const id of h.ids) h.compact(id, 3);
    h.crash('c');
    for (const p of ['p1', 'p2']) h.propose('a', p);
    h.deliver();
    h.restart('c'); // its log: base (3, t1), nothing after
    expect(h.core('c').status()).toMatchObject({ base: { index: 3, term: 1 }, lastIndex: 3 });
    const apps: Message<string>[] = [];
    for (let i = 0; i < 5; i++) {
      h.tick('a');
      h.deliver((m) => (m.type === 'app' && m.to === 'c' && apps.push(m), 'deliver'));
      expect(h.core('a').status().needCompactedEntries).toEqual([]);
    }
    expect(apps.some((m) => m.type === 'app' && m.prevIndex === 3 && m.prevTerm === 1 && m.entries.length > 0)).toBe(true);
    expect(apps.every((m) => m.type === 'app' && m.prevIndex >= 3)).toBe(true);
    for (const id of h.ids) expect(h.applied(id)).toEqual(['x', 'y', 'p1', 'p2']);
  });

  it('the election restriction across the base: a compacted replica with no entries left still judges candidates by its base', () => {
    const peers = ['a', 'b', 'c'];
    const b = new RaftCore<string>(
      { id: 'b', peers, electionTicks: T, heartbeatTicks: 1, random: () => 0.5, applied: 5 },
      { hardState: { term: 1, vote: 'a', commit: 5 }, base: { index: 5, term: 1 }, entries: [] },
    );
    const ask = (from: string, lastIndex: number, lastTerm: number) => {
      b.step({ type: 'vote', from, to: 'b', term: 2, lastIndex, lastTerm });
      const rd = b.ready();
      b.advance(rd);
      return rd.messages.find((m) => m.type === 'voteResp');
    };
    expect(ask('c', 4, 1)).toMatchObject({ reject: true }); // misses the compacted (committed) entry 5
    expect(ask('c', 5, 1)).toMatchObject({ reject: false, term: 2 });
  });

  it('a compacted replica can lead: it replicates from its log and brings the others along', () => {
    const h = clusterWith('x', 'y');
    h.tick('a');
    h.deliver();
    for (const id of h.ids) h.compact(id, 3);
    h.crash('a');
    h.tick('c', T); // c stops counting on a (it votes again), short of its own timeout
    h.core('b').campaign();
    h.deliver();
    expect(h.core('b').status()).toMatchObject({ role: 'leader', term: 2, base: { index: 3, term: 1 } });
    h.propose('b', 'z');
    h.restart('a');
    h.tick('b', 3);
    h.deliver();
    for (const id of h.ids) expect(h.applied(id)).toEqual(['x', 'y', 'z']);
    expect(h.core('b').status().needCompactedEntries).toEqual([]);
  });

  it('a follower that lost its disk needs compacted entries: the leader stops sending it entries and says so, without looping', () => {
    const h = clusterWith('x', 'y');
    h.tick('a');
    h.deliver();
    for (const id of h.ids) h.compact(id, 3);
    h.crash('a');
    h.crash('c');
    const disk = h.disk('c'); // c's disk is lost: it comes back empty
    disk.hardState = { term: 0, vote: null, commit: 0 };
    disk.base = { index: 0, term: 0 };
    disk.entries.length = 0;
    disk.applied.length = 0;
    h.restart('c');
    h.core('b').campaign(); // c votes for b: b's log is more up to date
    h.deliver();
    const b = h.core('b');
    expect(b.status()).toMatchObject({ role: 'leader', needCompactedEntries: ['c'] });

    const sent: Message<string>[] = [];
    for (let i = 0; i < 3 * T; i++) {
      h.tickAll(); // heartbeats go on (c stays a quiet follower), entries do not
      h.deliver((m) => (sent.push(m), 'deliver'));
    }
    expect(sent.filter((m) => m.from === 'b' && m.type === 'app')).toEqual([]);
    expect(sent.filter((m) => m.from === 'b' && m.type === 'heartbeat').length).toBeGreaterThan(0);
    expect(h.core('c').status()).toMatchObject({ role: 'follower', lead: 'b' });
    expect(b.status().needCompactedEntries).toEqual(['c']);
  });

  it('f = 0: a single replica compacts what it applied and restarts from the compacted log', () => {
    const h = new RaftHarness<string>(['solo']);
    h.drive();
    for (const p of ['x', 'y']) h.propose('solo', p);
    expect(compactable(h, 'solo')).toBe(3);
    h.compact('solo', 3);
    h.crash('solo');
    h.restart('solo');
    expect(h.core('solo').status()).toMatchObject({ role: 'leader', term: 2, base: { index: 3, term: 1 } });
    h.propose('solo', 'z');
    expect(h.applied('solo')).toEqual(['x', 'y', 'z']);
  });
});
