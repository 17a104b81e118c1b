// The fast-check arbitraries for the Raft simulator's schedules (used by test/unit/raft-sim.test.ts and by anyone
// exploring a bug with more runs). Weights favour time passing and proposals; faults are frequent enough that most
// schedules see a change of leader. Targeted faults (isolate or crash the current leader) make leaders churn.
import fc from 'fast-check';
import type { Command, Schedule } from './raft-cluster.ts';

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 25 }).map((n) => ({ do: 'ticks' as const, n })) },
  {
    weight: 4,
    arbitrary: fc.record({ at: fc.nat(4), count: fc.integer({ min: 1, max: 3 }) }).map((p) => ({ do: 'propose' as const, ...p })),
  },
  { weight: 2, arbitrary: fc.nat(31).map((mask) => ({ do: 'partition' as const, mask })) },
  { weight: 1, arbitrary: fc.constant({ do: 'isolateLeader' as const }) },
  { weight: 1, arbitrary: fc.constant({ do: 'crashLeader' as const }) },
  { weight: 2, arbitrary: fc.constant({ do: 'heal' as const }) },
  { weight: 2, arbitrary: fc.nat(4).map((node) => ({ do: 'crash' as const, node })) },
  { weight: 1, arbitrary: fc.nat(4).map((node) => ({ do: 'restart' as const, node })) },
  { weight: 2, arbitrary: fc.nat(4).map((node) => ({ do: 'bounce' as const, node })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ loss: fc.constantFrom(0, 0.1, 0.3), dup: fc.constantFrom(0, 0.1), slow: fc.constantFrom(0, 0.05) })
      .map((q) => ({ do: 'network' as const, ...q })),
  },
);

export const schedule: fc.Arbitrary<Schedule> = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  // Mostly 2f+1 clusters; 1 (f = 0) and even sizes too, which must be just as safe.
  size: fc.oneof(
    { weight: 1, arbitrary: fc.constant(1) },
    { weight: 1, arbitrary: fc.constant(2) },
    { weight: 5, arbitrary: fc.constant(3) },
    { weight: 1, arbitrary: fc.constant(4) },
    { weight: 4, arbitrary: fc.constant(5) },
  ),
  slowDisk: fc.constantFrom(0, 0.3, 0.7),
  maxEntriesPerMessage: fc.constantFrom(1, 3, 64),
  commands: fc.array(command, { minLength: 5, maxLength: 40, size: 'max' }),
});
