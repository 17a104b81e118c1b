// Property: crashes (up to three, some between persisting a step and sending its messages, several at once),
// partitions that come and go, and a lossy network before GST — with one Byzantine validator as well. Only what
// the core asked to persist survives a crash. Safety after every step; every entry committed everywhere within
// LIVENESS_BOUND_MS of the last fault. TENDERMINT_SIM_SEED / TENDERMINT_SIM_RUNS replay or extend.
import { it } from 'vitest';
import fc from 'fast-check';
import { propertyParams, runSchedule, scheduleArb } from './tendermint-schedule.ts';

it('crashes, restarts and partitions that heal: safety always, commits resume after the last fault (5,000 schedules)', () => {
  const started = performance.now();
  let runs = 0;
  let worstLatency = 0;
  let maxRound = 0;
  fc.assert(
    fc.property(scheduleArb({ maxCrashes: 3, maxPartitions: 3, horizon: 1500 }), (s) => {
      const r = runSchedule(s);
      runs++;
      worstLatency = Math.max(worstLatency, r.commitLatency);
      maxRound = Math.max(maxRound, r.stats.maxRound);
    }),
    propertyParams(5_000, 0xfa17),
  );
  console.log(`tendermint faults: ${runs} schedules in ${((performance.now() - started) / 1000).toFixed(1)} s; `
    + `worst commit ${worstLatency} ms after the last fault; highest round ${maxRound}`);
}, 120_000);
