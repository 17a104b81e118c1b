import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Supervisor } from '../../runtime/supervisor.ts';
import { ManualClock } from '../support/manual-clock.ts';

/** A child that exposes its crash callback so the test can make it crash at will. */
function flappy(id: string, starts: Map<string, number>, crashers: Map<string, (e: unknown) => void>, failed: string[]) {
  return {
    id,
    start(crash: (e: unknown) => void) {
      starts.set(id, (starts.get(id) ?? 0) + 1);
      crashers.set(id, crash);
      return { stop() {} };
    },
    onFailed(reason: string) {
      failed.push(`${id}: ${reason}`);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Supervisor', () => {
  it('restarts a crashed child alone, then stops it past the crash budget', async () => {
    const clock = new ManualClock();
    const sup = new Supervisor('daemon', { clock });
    const starts = new Map<string, number>();
    const crashers = new Map<string, (e: unknown) => void>();
    const failed: string[] = [];
    await sup.startChild(flappy('a', starts, crashers, failed));
    await sup.startChild(flappy('b', starts, crashers, failed));
    for (let i = 1; i <= 3; i++) {
      crashers.get('a')!(new Error(`boom ${i}`));
      await tick();
      expect(sup.status('a')?.status).toBe('running');
    }
    expect(starts.get('a')).toBe(4);
    crashers.get('a')!(new Error('boom 4'));
    await tick();
    expect(sup.status('a')).toEqual({ status: 'failed', lastError: 'boom 4' });
    expect(failed).toEqual(['a: crashed 4 times in 60s; last error: boom 4']);
    // The sibling never noticed.
    expect(starts.get('b')).toBe(1);
    expect(sup.status('b')?.status).toBe('running');
    expect(sup.tree().children.map((c) => [c.path, c.status, c.restarts])).toEqual([
      ['daemon/a', 'failed', 3],
      ['daemon/b', 'running', 0],
    ]);
  });

  it('crashes spread over more than the window never exhaust the budget (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 1, maxLength: 30 }), async (gaps) => {
        const clock = new ManualClock();
        const sup = new Supervisor('s', { clock });
        const starts = new Map<string, number>();
        const crashers = new Map<string, (e: unknown) => void>();
        const failed: string[] = [];
        await sup.startChild(flappy('x', starts, crashers, failed));
        const times: number[] = [];
        for (const gap of gaps) {
          clock.advance(gap);
          times.push(clock.now());
          crashers.get('x')!(new Error('boom'));
          await tick();
          // Reference model: failed exactly when more than 3 crashes fall within the last 60 s.
          const recent = times.filter((t) => clock.now() - t < 60_000).length;
          if (recent > 3) {
            expect(sup.status('x')?.status).toBe('failed');
            return;
          }
          expect(sup.status('x')?.status).toBe('running');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a first start that throws is the caller\'s error; a restart that throws counts as a crash', async () => {
    const clock = new ManualClock();
    const sup = new Supervisor('s', { clock });
    await expect(sup.startChild({ id: 'never', start: () => { throw new Error('no socket'); } })).rejects.toThrow('no socket');
    expect(sup.has('never')).toBe(false);
    let attempts = 0;
    let crash!: (e: unknown) => void;
    await sup.startChild({
      id: 'bad',
      start(c) {
        attempts += 1;
        crash = c;
        if (attempts > 1) throw new Error('cannot open');
        return { stop() {} };
      },
    });
    crash(new Error('first'));
    await tick();
    expect(attempts).toBe(4); // 1 crash + 3 failed restarts = 4 crashes in the window: stopped
    expect(sup.status('bad')?.status).toBe('failed');
    await sup.stopChild('bad');
    expect(sup.has('bad')).toBe(false);
  });
});
