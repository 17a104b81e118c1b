// Raft's Figure 8 (Ongaro & Ousterhout 2014, §5.4.2), scripted message by message on five real cores:
// a leader must not commit an entry from an earlier term by counting the replicas that hold it — even a majority —
// because a later leader can still overwrite it. Only an entry of the leader's current term commits by counting,
// and it carries the earlier ones with it.
//
// Terms differ from the paper's drawing (every new leader here also appends an empty entry of its term, and the
// cluster starts at term 1), but the shape is the same:
//   (a) s1 leads term 1; X goes to index 2 on s1 and s2 only.
//   (b) s1 crashes; s5 leads term 2 with s3 and s4; its own (empty) entry takes index 2 on s5 only.
//   (c) s5 crashes; s1 restarts and leads term 3 with s2, s3 (and s4); X reaches s3: index 2 is on s1, s2, s3 —
//       a majority — yet s1 does not commit it, because it is from term 1.
//   (d) s1 crashes; s5 restarts and leads term 4 with s3 and s4, overwriting index 2 on every replica: had s1
//       committed X, a committed entry would now be gone.
//   (e) instead of (d): s1 gets its term-3 entry to a majority first; that commits it and X beneath it, and s5
//       can no longer be elected.
import { describe, expect, it } from 'vitest';
import type { Message } from '../../machines/raft/index.ts';
import { RaftHarness, type Verdict } from '../sim/raft-harness.ts';

const IDS = ['s1', 's2', 's3', 's4', 's5'];
const T = 10;

const termsOf = (h: RaftHarness<string>, id: string) => h.core(id).entries().map((e) => e.term);

/** Timeouts are 15 ticks, so T ticks end every lease without anyone campaigning by itself; what was sent is dropped. */
function leasesRunOut(h: RaftHarness<string>) {
  h.tickAll(T);
  h.queue = [];
}

/** Up to (c): s1 leads term 3, X at index 2 on s1, s2, s3; s1's entry of term 3 (index 3) on s1 and s2 only. */
function figure8c() {
  const h = new RaftHarness<string>(IDS, () => ({ maxEntriesPerMessage: 1 }));

  // (a)
  h.core('s1').campaign();
  h.deliver();
  expect(h.core('s1').status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
  h.propose('s1', 'X');
  h.deliver((m) => (m.to === 's2' || m.from === 's2' ? 'deliver' : 'drop'));
  expect(termsOf(h, 's2')).toEqual([1, 1]);
  expect(h.core('s1').status().commit).toBe(1); // on 2 of 5
  h.crash('s1');

  // (b)
  leasesRunOut(h);
  h.core('s5').campaign();
  h.deliver((m) => (m.type === 'app' || m.to === 's2' || m.from === 's2' ? 'drop' : 'deliver'));
  expect(h.core('s5').status()).toMatchObject({ role: 'leader', term: 2 });
  expect(termsOf(h, 's5')).toEqual([1, 2]);
  h.crash('s5');

  // (c)
  h.restart('s1');
  leasesRunOut(h);
  h.core('s1').campaign(); // term 2: s3 and s4 already voted for s5 in term 2
  h.deliver((m) => (m.type === 'app' ? 'drop' : 'deliver'));
  expect(h.core('s1').status().role).not.toBe('leader');
  h.core('s1').campaign(); // term 3
  const holdTerm3EntryFromS3 = (m: Message<string>): Verdict => {
    if (m.type !== 'app') return 'deliver';
    if (m.to === 's4') return 'drop';
    // s3 may reject probes and receive X, but the entry of term 3 waits.
    if (m.to === 's3' && m.entries.some((e) => e.index === 3) && h.core('s3').status().lastIndex >= 2) return 'hold';
    return 'deliver';
  };
  h.deliver(holdTerm3EntryFromS3);
  expect(h.core('s1').status()).toMatchObject({ role: 'leader', term: 3 });
  for (const id of ['s1', 's2', 's3']) expect(h.core(id).entries(2, 2)).toEqual([{ index: 2, term: 1, data: 'X' }]);
  expect(termsOf(h, 's1')).toEqual([1, 1, 3]);
  expect(termsOf(h, 's2')).toEqual([1, 1, 3]);
  expect(termsOf(h, 's3')).toEqual([1, 1]);
  return h;
}

describe('raft: Figure 8 — no commit by counting replicas of an earlier term', () => {
  it('(c) a majority holds X from term 1, and the leader of term 3 still does not commit it', () => {
    const h = figure8c();
    expect(h.core('s1').status().commit).toBe(1);
    for (const id of IDS) if (h.isUp(id)) expect(h.applied(id)).not.toContain('X');
  });

  it('(d) …which is right: a leader of a later term overwrites X on the replicas that held it', () => {
    const h = figure8c();
    h.crash('s1');
    h.restart('s5');
    leasesRunOut(h);
    h.core('s5').campaign(); // term 3: s2, s3, s4 voted for s1
    h.deliver();
    expect(h.core('s5').status().role).not.toBe('leader');
    h.core('s5').campaign(); // term 4: s3 and s4 see s5's last entry (term 2) as more up to date than theirs (term 1)
    h.deliver();
    expect(h.core('s5').status()).toMatchObject({ role: 'leader', term: 4 });
    expect(h.core('s2').status().vote).not.toBe('s5'); // s2 holds an entry of term 3: it refused

    // Index 2 is now s5's entry of term 2 on every replica, and it is committed under s5's term-4 entry.
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(termsOf(h, id)).toEqual([1, 2, 4]);
      expect(h.core(id).status().commit).toBe(3);
    }
    h.restart('s1');
    h.tick('s5');
    h.deliver();
    expect(termsOf(h, 's1')).toEqual([1, 2, 4]);
    for (const id of IDS) expect(h.applied(id)).not.toContain('X');
  });

  it('(e) an entry of the current term on a majority commits, carrying X; then s5 cannot win', () => {
    const h = figure8c();
    h.deliver(); // the held term-3 entry reaches s3 (and s4 catches up)
    expect(h.core('s1').status().commit).toBe(3);
    for (const id of ['s1', 's2', 's3']) expect(h.applied(id)).toEqual(['X']);

    h.crash('s1');
    h.restart('s5');
    leasesRunOut(h);
    for (let i = 0; i < 3; i++) {
      h.core('s5').campaign();
      h.deliver();
      expect(h.core('s5').status().role).not.toBe('leader');
    }
    // Someone holding X leads eventually, and X stays at index 2 everywhere.
    for (let i = 0; i < 5 * T; i++) {
      h.tickAll();
      h.deliver();
    }
    const leader = IDS.find((id) => h.isUp(id) && h.core(id).status().role === 'leader')!;
    expect(['s2', 's3', 's4']).toContain(leader);
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(h.core(id).entries(2, 2)).toEqual([{ index: 2, term: 1, data: 'X' }]);
      expect(h.applied(id)).toEqual(['X']);
    }
  });
});
