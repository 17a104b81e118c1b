// A deterministic simulator of a Raft cluster: N pure cores (machines/raft) over a simulated network that loses,
// duplicates, delays and reorders messages and can be partitioned, with replicas that crash (keeping only their
// MemoryDisk) and restart. All randomness comes from one seeded PRNG, so a schedule (seed + commands) replays
// exactly; fast-check generates and shrinks schedules (test/unit/raft-sim.test.ts).
//
// The simulator plays each replica's shell: take a Ready, persist it to the replica's disk, hand its messages to
// the network, apply its committed entries, advance — and now and then, between Readies, compact the log to a
// random index the core allows (disk first, in one step, then the core), as the LMDB shell does. With `slowDisk`,
// a Ready is sometimes left in flight for a few ticks (persistence is asynchronous), while the replica keeps
// stepping messages and ticking — and a crash in that window loses the Ready: its state never reached the disk
// and its messages were never sent. A restart recovers from the disk as it is: compacted or not.
//
// Invariants, checked as they could first break (after every step, persist and apply), throw `SafetyViolation`:
//   - election safety: at most one leader per term (ever, across crashes);
//   - log matching: two logs with an entry of the same index and term hold the same payload there and agree on
//     the term before it (so, by induction, on the whole prefix) — checked on every entry any replica persists
//     (the entry after a compacted prefix is checked against the base's term);
//   - the commitment rule (§5.4.2): a leader advances its commit index only to an entry of its own term;
//   - persistence bookkeeping: what a core counts as persisted is on its disk;
//   - leader completeness: an entry committed while some replica was in term t is in the log of every leader of a
//     term > t (checked when it becomes leader; an entry it compacted must be one it applied); a log never loses a
//     committed entry it holds, and a replica's persisted commit index only covers committed entries;
//   - compaction: a replica compacts only entries that every replica's disk holds (or compacted) as committed,
//     and a leader never finds that a follower needs an entry it compacted;
//   - state machine safety: no two replicas apply different entries at one index; each replica applies indexes
//     1, 2, 3… once each; only proposed payloads (or leaders' empty entries) are applied.
// Liveness (`stabilize`): with the faults gone — partitions healed, everyone restarted, no loss — a client that
// retries commits a proposal on every replica within a bounded number of ticks.
import { RaftCore, type Entry, type Message, type Ready } from '../../machines/raft/index.ts';
import { MemoryDisk } from './raft-disk.ts';
import { mulberry32, type Prng } from './raft-prng.ts';

export type Command =
  /** Let time pass: every live replica ticks and the network delivers what is due, `n` times. */
  | { readonly do: 'ticks'; readonly n: number }
  /** A client proposes `count` payloads at replica `at` (mod size). */
  | { readonly do: 'propose'; readonly at: number; readonly count: number }
  /** Split the replicas in two: those whose bit is set in `mask` (mod 2^size) and the others. */
  | { readonly do: 'partition'; readonly mask: number }
  /** Targeted: cut the current leader (the live leader of the highest term) off from everyone else. */
  | { readonly do: 'isolateLeader' }
  /** Targeted: crash the current leader. */
  | { readonly do: 'crashLeader' }
  | { readonly do: 'heal' }
  | { readonly do: 'crash'; readonly node: number }
  | { readonly do: 'restart'; readonly node: number }
  /**
   * Power loss mid-write: the replica crashes the next time a Ready carrying entries or a new term or vote is
   * taken but not yet persisted (at once when the disk is never slow), and restarts at once with what its disk has.
   */
  | { readonly do: 'bounce'; readonly node: number }
  /** Network quality from now on, as probabilities per message: lost, duplicated, delayed by up to 3 T ticks. */
  | { readonly do: 'network'; readonly loss: number; readonly dup: number; readonly slow?: number };

export interface Schedule {
  readonly seed: number;
  readonly size: number;
  /** Probability that a Ready's write is slow: it then completes at each later tick with probability 1/2. */
  readonly slowDisk: number;
  /** Entries per AppendEntries (default 3); 1 makes replication go entry by entry, as in Figure 8. */
  readonly maxEntriesPerMessage?: number;
  readonly commands: readonly Command[];
}

export interface SimOptions {
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Messages take 1..maxDelay ticks. */
  maxDelay?: number;
  maxInflight?: number;
  maxEntriesPerMessage?: number;
  /** Keep a readable trace of every event (for replaying a failure; slows the run). */
  trace?: boolean;
  /** After each Ready, the probability that the replica compacts its log (to a random index the core allows). */
  compaction?: number;
  /**
   * Make the simulated shell break the persistence contract, to show the invariants catch it:
   * 'forget-vote' restarts replicas without the vote they persisted;
   * 'lose-tail' restarts replicas without the last entry they persisted (an append acknowledged before it was
   * durable — e.g. LMDB with overlappingSync after a power loss).
   */
  shellFault?: 'forget-vote' | 'lose-tail';
}

export class SafetyViolation extends Error {
  override name = 'SafetyViolation';
}

interface SimNode {
  readonly index: number;
  readonly id: string;
  readonly disk: MemoryDisk<string>;
  core: RaftCore<string> | null;
  /** A Ready taken but not yet persisted (slow disk). */
  outstanding: Ready<string> | null;
  /** The last term in which this replica was seen as leader (to check completeness once per term). */
  leaderTerm: number;
  /** Its commit index when last seen as leader of `leaderTerm`. */
  leaderCommit: number;
  /** Has applied a payload proposed during the liveness phase. */
  appliedLive: boolean;
  /** Crash and restart as soon as a Ready is outstanding. */
  bounceArmed: boolean;
}

interface CommittedRecord {
  readonly term: number;
  readonly data: string | null;
  /** A term ≥ the one the entry was committed in: leaders of later terms must hold it. */
  readonly commitTerm: number;
}

export class SimCluster {
  readonly size: number;
  readonly #rng: Prng;
  readonly #opts: Required<Omit<SimOptions, 'trace' | 'shellFault'>>;
  readonly #shellFault: SimOptions['shellFault'];
  readonly #slowDisk: number;
  readonly #nodes: SimNode[] = [];
  readonly #ids: string[];
  #now = 0;
  /** Messages in flight, keyed by the tick they arrive at. */
  #inflight = new Map<number, Message<string>[]>();
  /** The partition side of each replica (all 0: no partition). */
  #side: number[];
  #loss = 0;
  #dup = 0;
  #slow = 0;
  #proposals = 0;
  readonly #proposed = new Set<string>();
  readonly #leaders = new Map<number, string>();
  /** (index, term) → payload and previous term, as first persisted anywhere. */
  readonly #logRegistry = new Map<number, Map<number, { data: string | null; prevTerm: number }>>();
  /** committed[i] describes index i. */
  readonly #committed: CommittedRecord[] = [];
  /** applied[i]: the entry applied at index i by whoever applied it first. */
  readonly #applied: Entry<string>[] = [];
  readonly #trace: string[] | null;
  stats = { messages: 0, delivered: 0, readies: 0, elections: 0, compactions: 0, bootsFromCompacted: 0 };

  constructor(schedule: Pick<Schedule, 'seed' | 'size' | 'slowDisk' | 'maxEntriesPerMessage'>, opts: SimOptions = {}) {
    this.size = schedule.size;
    this.#rng = mulberry32(schedule.seed);
    this.#slowDisk = schedule.slowDisk;
    this.#opts = {
      compaction: opts.compaction ?? 0.2,
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 2,
      maxDelay: opts.maxDelay ?? 2,
      maxInflight: opts.maxInflight ?? 4,
      maxEntriesPerMessage: opts.maxEntriesPerMessage ?? schedule.maxEntriesPerMessage ?? 3,
    };
    this.#trace = opts.trace ? [] : null;
    this.#shellFault = opts.shellFault;
    this.#ids = Array.from({ length: this.size }, (_, i) => `n${i}`);
    this.#side = this.#ids.map(() => 0);
    for (let i = 0; i < this.size; i++) {
      this.#nodes.push({
        index: i,
        id: this.#ids[i],
        disk: new MemoryDisk(),
        core: null,
        outstanding: null,
        leaderTerm: 0,
        leaderCommit: 0,
        appliedLive: false,
        bounceArmed: false,
      });
      this.#boot(this.#nodes[i]);
    }
    // The creator (n0) campaigns at once; the others wait as followers of term 0.
    this.#nodes[0].core!.campaign();
    this.#afterStep(this.#nodes[0]);
  }

  get now(): number {
    return this.#now;
  }

  get trace(): readonly string[] {
    return this.#trace ?? [];
  }

  run(commands: readonly Command[]): void {
    for (const c of commands) this.exec(c);
  }

  exec(c: Command): void {
    this.#log(() => `cmd ${JSON.stringify(c)}`);
    switch (c.do) {
      case 'ticks':
        for (let i = 0; i < c.n; i++) this.tick();
        break;
      case 'propose': {
        const node = this.#nodes[c.at % this.size];
        for (let i = 0; i < c.count; i++) this.#propose(node, `p${++this.#proposals}`);
        break;
      }
      case 'partition': {
        const mask = c.mask % (1 << this.size);
        this.#side = this.#ids.map((_, i) => (mask >> i) & 1);
        break;
      }
      case 'isolateLeader': {
        const leader = this.#currentLeader();
        if (leader !== null) this.#side = this.#ids.map((_, i) => (i === leader.index ? 1 : 0));
        break;
      }
      case 'crashLeader': {
        const leader = this.#currentLeader();
        if (leader !== null) this.#crash(leader);
        break;
      }
      case 'heal':
        this.#side = this.#ids.map(() => 0);
        break;
      case 'crash':
        this.#crash(this.#nodes[c.node % this.size]);
        break;
      case 'restart': {
        const node = this.#nodes[c.node % this.size];
        if (node.core === null) {
          this.#boot(node);
          this.#pump(node);
        }
        break;
      }
      case 'bounce': {
        const node = this.#nodes[c.node % this.size];
        if (node.core === null) break;
        if (this.#slowDisk > 0 && node.outstanding === null) node.bounceArmed = true;
        else this.#bounce(node);
        break;
      }
      case 'network':
        this.#loss = c.loss;
        this.#dup = c.dup;
        this.#slow = c.slow ?? 0;
        break;
    }
  }

  /** One tick: finish slow persistence, tick every live replica, deliver what is due (in random order). */
  tick(): void {
    this.#now++;
    for (const node of this.#nodes) {
      if (node.core === null) continue;
      // A slow write completes at each tick with probability 1/2: some take several ticks.
      if (node.outstanding !== null && this.#rng.chance(0.5)) this.#complete(node, node.outstanding);
      node.core.tick();
      this.#afterStep(node);
    }
    const due = this.#inflight.get(this.#now);
    if (due === undefined) return;
    this.#inflight.delete(this.#now);
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.#rng.int(i + 1);
      const t = due[i];
      due[i] = due[j];
      due[j] = t;
    }
    for (const m of due) {
      const to = this.#nodes[idIndex(m.to)];
      if (to.core === null || !this.#connected(m.from, m.to)) continue;
      this.stats.delivered++;
      this.#log(() => `${this.#now} deliver ${fmt(m)}`);
      to.core.step(m);
      this.#afterStep(to);
    }
  }

  /**
   * Remove every fault (heal, restart all, lossless network), then act as a client that proposes at some replica
   * and retries every `retryTicks` until one of its payloads is applied on every replica. Returns the ticks taken;
   * throws if that exceeds `maxTicks`.
   */
  stabilize(maxTicks: number, retryTicks = 2 * this.#opts.electionTicks): number {
    this.exec({ do: 'heal' });
    this.exec({ do: 'network', loss: 0, dup: 0 });
    for (const n of this.#nodes) if (n.core === null) this.exec({ do: 'restart', node: n.index });
    for (const n of this.#nodes) {
      n.appliedLive = false;
      n.bounceArmed = false;
    }
    let lastTry = -Infinity;
    let target = this.#rng.int(this.size);
    for (let t = 0; t <= maxTicks; t++) {
      if (this.#nodes.every((n) => n.appliedLive)) return t;
      if (this.#now - lastTry >= retryTicks) {
        // A client library: try the replica it knows; on "no leader", another one next tick.
        const r = this.#propose(this.#nodes[target], `live${++this.#proposals}`);
        if (r) lastTry = this.#now;
        else target = (target + 1) % this.size;
      }
      this.tick();
    }
    const status = this.#nodes.map((n) => JSON.stringify(n.core?.status()));
    throw new SafetyViolation(`liveness: no proposal committed on every replica within ${maxTicks} ticks of healing\n${status.join('\n')}`);
  }

  /** The current status of every replica (null when down). */
  status() {
    return this.#nodes.map((n) => n.core?.status() ?? null);
  }

  // ── Replicas ────────────────────────────────────────────────────────────────────────────────────────

  #boot(node: SimNode): void {
    const disk = node.disk;
    const fresh = disk.lastIndex === 0 && disk.hardState.term === 0;
    if (!fresh && this.#shellFault === 'lose-tail' && disk.entries.length > 0) {
      disk.entries.pop();
      const n = disk.lastIndex;
      disk.hardState = { ...disk.hardState, commit: Math.min(disk.hardState.commit, n) };
      if (disk.applied.length > n) disk.applied.length = n;
    }
    node.core = new RaftCore<string>(
      {
        id: node.id,
        peers: this.#ids,
        electionTicks: this.#opts.electionTicks,
        heartbeatTicks: this.#opts.heartbeatTicks,
        random: () => this.#rng.next(),
        maxInflight: this.#opts.maxInflight,
        maxEntriesPerMessage: this.#opts.maxEntriesPerMessage,
        applied: disk.applied.length,
      },
      fresh ? undefined : this.#shellFault === 'forget-vote' ? { ...disk.load(), hardState: { ...disk.hardState, vote: null } } : disk.load(),
    );
    if (disk.base.index > 0) this.stats.bootsFromCompacted++;
    node.outstanding = null;
    node.leaderTerm = 0;
    node.leaderCommit = 0;
    this.#log(() => `${this.#now} boot ${node.id} ${JSON.stringify(node.core!.status())}`);
  }

  #crash(node: SimNode): void {
    if (node.core === null) return;
    this.#log(() => `${this.#now} crash ${node.id}${node.outstanding ? ' (losing an unpersisted Ready)' : ''}`);
    node.core = null;
    node.outstanding = null;
    for (const [at, list] of this.#inflight) {
      this.#inflight.set(
        at,
        list.filter((m) => m.from !== node.id && m.to !== node.id),
      );
    }
  }

  #currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const n of this.#nodes) {
      const st = n.core?.status();
      if (st?.role === 'leader' && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  #bounce(node: SimNode): void {
    node.bounceArmed = false;
    this.#crash(node);
    this.#boot(node);
    this.#pump(node);
  }

  #propose(node: SimNode, data: string): boolean {
    if (node.core === null) return false;
    const r = node.core.propose(data);
    this.#log(() => `${this.#now} propose ${data} at ${node.id}: ${JSON.stringify(r)}`);
    if (r.ok) this.#proposed.add(data);
    this.#afterStep(node);
    return r.ok;
  }

  /** After anything the core did: check what can be checked in memory, then run the shell loop. */
  #afterStep(node: SimNode): void {
    this.#checkLeader(node);
    this.#pump(node);
  }

  #pump(node: SimNode): void {
    const core = node.core;
    while (core !== null && node.outstanding === null && core.hasReady()) {
      const rd = core.ready();
      this.stats.readies++;
      if (this.#rng.chance(this.#slowDisk)) {
        node.outstanding = rd;
        // The adversary strikes when it hurts: a write that carries state (entries, term, vote).
        if (node.bounceArmed && (rd.entries.length > 0 || rd.mustSync)) this.#bounce(node);
      } else this.#complete(node, rd);
    }
  }

  /** The shell: persist, send, apply, advance. */
  #complete(node: SimNode, rd: Ready<string>): void {
    node.outstanding = null;
    this.#log(
      () =>
        `${this.#now} ${node.id} ready${rd.hardState ? ` hs=${JSON.stringify(rd.hardState)}` : ''}` +
        `${rd.entries.length ? ` entries=${rd.entries[0].index}..${rd.entries[rd.entries.length - 1].index}` : ''}` +
        `${rd.committed.length ? ` apply=${rd.committed[0].index}..${rd.committed[rd.committed.length - 1].index}` : ''}` +
        `${rd.softState ? ` soft=${rd.softState.role}/${rd.softState.lead}` : ''} msgs=${rd.messages.length}`,
    );
    this.#persist(node, rd);
    for (const m of rd.messages) this.#send(m);
    this.#apply(node, rd.committed);
    const core = node.core!;
    core.advance(rd);
    // What the core believes durable is on the disk: its leader self-count rests on this.
    const persisted = core.status().persistedIndex;
    if (persisted > 0 && node.disk.term(persisted) !== termAt(core, persisted)) {
      this.#violation(`${node.id} counts index ${persisted} as persisted; its disk disagrees`);
    }
    this.#checkLeader(node);
    this.#maybeCompact(node);
  }

  /** Between Readies (nothing in flight), now and then: compact to a random index the core allows, disk first. */
  #maybeCompact(node: SimNode): void {
    const core = node.core!;
    const { base, compactable } = core.status();
    if (compactable <= base.index || !this.#rng.chance(this.#opts.compaction)) return;
    const index = base.index + 1 + this.#rng.int(compactable - base.index);
    const term = termAt(core, index);
    // The core's claim: every replica holds this committed entry durably (or compacted past it), the down ones too.
    const c = this.#committed[index];
    if (c === undefined || c.term !== term) this.#violation(`${node.id} may compact to ${index} (t${term}), not recorded as committed so`);
    for (const other of this.#nodes) {
      const d = other.disk;
      if (d.base.index < index && d.term(index) !== term) {
        this.#violation(`${node.id} may compact to ${index} (t${term}), but ${other.id}'s disk has t${d.term(index)} there`);
      }
    }
    this.#log(() => `${this.#now} ${node.id} compacts to ${index}`);
    node.disk.compact(index);
    core.compact(index);
    this.stats.compactions++;
  }

  #persist(node: SimNode, rd: Ready<string>): void {
    const disk = node.disk;
    const oldCommit = disk.hardState.commit;
    if (rd.entries.length > 0) {
      // A log that holds a committed entry never loses it (it may hold a stale entry at a committed index, from
      // a deposed leader, until it learns better — that entry is simply not committed there).
      const first = rd.entries[0].index;
      const last = Math.min(Math.max(disk.lastIndex, first + rd.entries.length - 1), this.#committed.length - 1);
      for (let i = first; i <= last; i++) {
        const c = this.#committed[i];
        const before = disk.entry(i);
        const after = rd.entries[i - first];
        if (c !== undefined && sameEntry(before, c) && !sameEntry(after, c)) {
          this.#violation(`${node.id} drops committed index ${i} (t${c.term} ${c.data}) for ${after ? `t${after.term} ${after.data}` : 'nothing'}`);
        }
      }
    }
    disk.persist(rd);
    for (const e of rd.entries) {
      // Log matching, one entry at a time: the same (index, term) always carries the same payload after the same term.
      const prevTerm = disk.term(e.index - 1);
      let byTerm = this.#logRegistry.get(e.index);
      if (byTerm === undefined) this.#logRegistry.set(e.index, (byTerm = new Map()));
      const seen = byTerm.get(e.term);
      if (seen === undefined) byTerm.set(e.term, { data: e.data, prevTerm });
      else if (seen.data !== e.data || seen.prevTerm !== prevTerm) {
        this.#violation(
          `log matching: ${node.id} persisted (${e.index}, t${e.term}) = ${e.data} after t${prevTerm}; ` +
            `elsewhere it is ${seen.data} after t${seen.prevTerm}`,
        );
      }
    }
    const commit = disk.hardState.commit;
    if (commit > oldCommit) {
      const term = disk.hardState.term;
      for (let i = oldCommit + 1; i <= commit; i++) {
        const e = disk.entry(i);
        if (e === undefined) this.#violation(`${node.id} persisted commit ${commit} beyond its log (${disk.base.index + 1}..${disk.lastIndex})`);
        const c = this.#committed[i];
        if (c === undefined) this.#committed[i] = { term: e.term, data: e.data, commitTerm: term };
        else if (c.term !== e.term || c.data !== e.data) {
          this.#violation(`${node.id} committed index ${i} as t${e.term} ${e.data}; it was committed as t${c.term} ${c.data}`);
        }
      }
    }
  }

  #apply(node: SimNode, entries: readonly Entry<string>[]): void {
    let want = node.disk.applied.length;
    for (const e of entries) {
      want++;
      if (e.index !== want) this.#violation(`${node.id} applies index ${e.index}, expected ${want}`);
      if (e.data !== null && !this.#proposed.has(e.data)) this.#violation(`${node.id} applies unproposed ${e.data}`);
      const first = this.#applied[e.index];
      if (first === undefined) this.#applied[e.index] = e;
      else if (first.term !== e.term || first.data !== e.data) {
        this.#violation(
          `state machine safety: ${node.id} applies t${e.term} ${e.data} at ${e.index}; another applied t${first.term} ${first.data}`,
        );
      }
      const c = this.#committed[e.index];
      if (c === undefined || c.term !== e.term || c.data !== e.data) {
        this.#violation(`${node.id} applies index ${e.index} that is not recorded as committed so`);
      }
      if (e.data !== null && e.data.startsWith('live')) node.appliedLive = true;
    }
    node.disk.apply(entries);
  }

  #checkLeader(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    const st = core.status();
    if (st.role !== 'leader') return;
    // Compaction drops only what every replica holds: no follower can need it.
    if (st.needCompactedEntries.length > 0) {
      this.#violation(`${node.id}, leader of term ${st.term}, finds ${st.needCompactedEntries.join(', ')} needing entries it compacted (up to ${st.base.index})`);
    }
    if (node.leaderTerm === st.term) {
      // The commitment rule (§5.4.2, Figure 8): a leader commits by counting replicas only an entry of its own term.
      if (st.commit > node.leaderCommit) {
        const t = termAt(core, st.commit);
        if (t !== st.term) this.#violation(`${node.id}, leader of term ${st.term}, advanced its commit to ${st.commit}, an entry of term ${t}`);
        node.leaderCommit = st.commit;
      }
      return;
    }
    node.leaderTerm = st.term;
    node.leaderCommit = st.commit;
    this.stats.elections++;
    this.#log(() => `${this.#now} ${node.id} leads term ${st.term}`);
    const other = this.#leaders.get(st.term);
    if (other !== undefined && other !== node.id) this.#violation(`two leaders in term ${st.term}: ${other} and ${node.id}`);
    this.#leaders.set(st.term, node.id);
    // Leader completeness: everything committed in an earlier term is in this leader's log — or was applied by it
    // before it compacted it away.
    const log = core.entries();
    for (let i = 1; i < this.#committed.length; i++) {
      const c = this.#committed[i];
      if (c === undefined || c.commitTerm >= st.term) continue;
      const e = i <= st.base.index ? node.disk.applied[i - 1] : log[i - st.base.index - 1];
      if (e === undefined || e.term !== c.term || e.data !== c.data) {
        this.#violation(`leader completeness: ${node.id}, leader of term ${st.term}, lacks committed index ${i} (t${c.term} ${c.data})`);
      }
    }
  }

  // ── Network ─────────────────────────────────────────────────────────────────────────────────────────

  #connected(a: string, b: string): boolean {
    return this.#side[idIndex(a)] === this.#side[idIndex(b)];
  }

  #send(m: Message<string>): void {
    this.stats.messages++;
    if (!this.#connected(m.from, m.to) || this.#rng.chance(this.#loss)) return;
    this.#enqueue(m);
    if (this.#rng.chance(this.#dup)) this.#enqueue(m);
  }

  #enqueue(m: Message<string>): void {
    const delay = this.#rng.chance(this.#slow) ? 3 * this.#opts.electionTicks : this.#opts.maxDelay;
    const at = this.#now + 1 + this.#rng.int(delay);
    const list = this.#inflight.get(at);
    if (list === undefined) this.#inflight.set(at, [m]);
    else list.push(m);
  }

  // ── Diagnostics ─────────────────────────────────────────────────────────────────────────────────────

  #log(line: () => string): void {
    if (this.#trace !== null) this.#trace.push(line());
  }

  #violation(what: string): never {
    throw new SafetyViolation(`at tick ${this.#now}: ${what}`);
  }
}

/** The term of the entry at `index` in a core's log (the base's included), or undefined when compacted or absent. */
function termAt(core: RaftCore<string>, index: number): number | undefined {
  const { base } = core.status();
  if (index === base.index) return base.term;
  return index < base.index ? undefined : core.entries(index, index)[0]?.term;
}

function sameEntry(e: Entry<string> | undefined, c: CommittedRecord): boolean {
  return e !== undefined && e.term === c.term && e.data === c.data;
}

/** "n3" → 3. */
function idIndex(id: string): number {
  return Number(id.slice(1));
}

function fmt(m: Message<string>): string {
  const { from, to, type, term } = m;
  const head = `${from}→${to} ${type} t${term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=(${m.prevIndex},t${m.prevTerm}) [${m.entries.map((e) => `${e.index}:t${e.term}:${e.data}`).join(' ')}] c=${m.commit}`;
    case 'appResp':
      return `${head} ${m.reject ? `REJECT ${m.index} hint=(${m.hintIndex},t${m.hintTerm})` : `ok ${m.index}`}`;
    case 'heartbeat':
      return `${head} c=${m.commit}`;
    case 'commit':
      return `${head} prev=(${m.prevIndex},t${m.prevTerm}) c=${m.commit}`;
    case 'vote':
    case 'preVote':
      return `${head} last=(${m.lastIndex},t${m.lastTerm})`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'no' : 'yes'}`;
    case 'prop':
      return `${head} [${m.data.join(' ')}]`;
    default:
      return head;
  }
}

/** Run a schedule: its faults, then the liveness check. Returns the ticks liveness took and the cluster. */
export function runSchedule(schedule: Schedule, opts: SimOptions & { livenessTicks?: number } = {}): { livenessTicks: number; cluster: SimCluster } {
  const cluster = new SimCluster(schedule, opts);
  cluster.run(schedule.commands);
  const livenessTicks = cluster.stabilize(opts.livenessTicks ?? 200);
  return { livenessTicks, cluster };
}
