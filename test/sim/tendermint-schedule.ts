// Schedules for the Tendermint cluster simulator (tendermint-cluster.ts): a fast-check arbitrary that generates
// them (so a failure shrinks to a small one) and the runner that plays one and checks it.
//
// A schedule is data: the network's seed and parameters, the Byzantine validator's behaviour over time, when
// entries are submitted, which honest validators crash (and for how long), and which partitions come and go.
// Replaying the same schedule replays the same run, event for event: `runSchedule(s, { trace: console.log })`.
import fc from 'fast-check';
import { Cluster, type ByzMode, type ClusterStats } from './tendermint-cluster.ts';

export interface Schedule {
  seed: number;
  n: number;
  /** Global stabilisation time (ms). */
  gst: number;
  lossPct: number;
  dupPct: number;
  maxDelay: number;
  byzIndex: number;
  /** The Byzantine validator's behaviour from each time on; -1 for no Byzantine validator. */
  modes: { at: number; mode: ByzMode }[];
  submissions: { at: number; count: number }[];
  crashes: { node: number; at: number; downFor: number; afterPersist: boolean }[];
  partitions: { at: number; duration: number; side: boolean[] }[];
}

/** After every fault has ended (GST, partitions healed, crashed validators back), every entry commits within this. */
export const LIVENESS_BOUND_MS = 5_000;

export interface ScheduleShape {
  maxCrashes: number;
  maxPartitions: number;
  /** Faults and submissions happen before this (ms). */
  horizon: number;
  modes?: readonly ByzMode[];
}

export function scheduleArb(shape: ScheduleShape): fc.Arbitrary<Schedule> {
  const n = 4;
  const t = fc.integer({ min: 0, max: shape.horizon });
  const modes = shape.modes ?? (['honest', 'silent', 'equivocate', 'garbage'] as const);
  return fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    n: fc.constant(n),
    gst: t,
    lossPct: fc.integer({ min: 0, max: 50 }),
    dupPct: fc.integer({ min: 0, max: 25 }),
    maxDelay: fc.integer({ min: 1, max: 250 }),
    byzIndex: fc.integer({ min: 0, max: n - 1 }),
    modes: fc.array(fc.record({ at: t, mode: fc.constantFrom(...modes) }), { minLength: 1, maxLength: 3 }),
    submissions: fc.array(fc.record({ at: t, count: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 4 }),
    crashes: fc.array(
      fc.record({ node: fc.integer({ min: 0, max: n - 1 }), at: t, downFor: fc.integer({ min: 1, max: 800 }), afterPersist: fc.boolean() }),
      { maxLength: shape.maxCrashes },
    ),
    partitions: fc.array(
      fc.record({ at: t, duration: fc.integer({ min: 1, max: 1000 }), side: fc.array(fc.boolean(), { minLength: n, maxLength: n }) }),
      { maxLength: shape.maxPartitions },
    ),
  });
}

export interface ScheduleResult {
  /** When the last fault ended (ms). */
  stableAt: number;
  /** How long after stableAt every entry was committed everywhere (ms). */
  commitLatency: number;
  stats: ClusterStats;
}

/**
 * Play `s`. Throws InvariantViolation as soon as a safety invariant breaks (the cluster checks after every
 * step), or an Error when liveness fails: an entry not committed by every honest validator within
 * LIVENESS_BOUND_MS of the last fault.
 */
export function runSchedule(s: Schedule, opts: { trace?: (line: string) => void } = {}): ScheduleResult {
  const modes = [...s.modes].sort((a, b) => a.at - b.at).map((m, i) => (i === 0 ? { ...m, at: 0 } : m));
  const c = new Cluster({
    n: s.n,
    seed: s.seed,
    network: { gst: s.gst, lossPct: s.lossPct, dupPct: s.dupPct, maxDelayBeforeGst: s.maxDelay, maxDelayAfterGst: 10 },
    byzantine: { index: s.byzIndex, modes },
    trace: opts.trace,
  });
  let stableAt = s.gst;
  for (const sub of s.submissions) {
    c.submit(sub.at, sub.count);
    stableAt = Math.max(stableAt, sub.at);
  }
  for (const cr of s.crashes) {
    if (cr.node === s.byzIndex) continue; // the Byzantine validator is already the one fault; crashes are honest
    c.crash(cr.at, cr.node, cr.downFor, cr.afterPersist);
    stableAt = Math.max(stableAt, cr.at + cr.downFor);
  }
  for (const p of s.partitions) c.partition(p.at, p.at + p.duration, p.side);
  const deadline = stableAt + LIVENESS_BOUND_MS;
  c.run(deadline, () => c.now >= stableAt && c.allCommitted());
  if (!c.allCommitted()) {
    const where = c.honest.map((n) => `${n.id.slice(-1)}: height ${n.chain.length + 1} ${n.core ? `round ${n.core.status.round} ${n.core.status.step}` : 'down'}`);
    throw new Error(`liveness: not every entry committed everywhere ${LIVENESS_BOUND_MS} ms after the last fault (t=${stableAt}); ${where.join(', ')}`);
  }
  return { stableAt, commitLatency: c.now - stableAt, stats: c.stats };
}

/** fast-check's seed and run count, from the environment when set (to replay or to run more). */
export function propertyParams(defaultRuns: number, defaultSeed: number): { numRuns: number; seed: number } {
  return {
    numRuns: Number(process.env.TENDERMINT_SIM_RUNS ?? defaultRuns),
    seed: Number(process.env.TENDERMINT_SIM_SEED ?? defaultSeed),
  };
}
