// One-for-one supervision with a crash budget.
//
// A child that crashes is restarted alone (its siblings never notice). A child that crashes more than
// `maxRestarts` times within `windowMs` is stopped for good and reported as failed with the last reason, so
// its primitive can fail cleanly instead of flapping forever. Supervisors nest; `tree()` is what
// `health --json` shows.
import type { Clock } from './clock.ts';

export interface Running {
  stop(): Promise<void> | void;
  /** A nested supervisor (or anything with children to show). */
  tree?(): HealthNode;
}

export interface ChildSpec {
  id: string;
  /** Start (or restart) the child. `crash` is how the child reports an internal failure. */
  start(crash: (error: unknown) => void): Promise<Running> | Running;
  /** Called once when the budget is exhausted and the child is stopped for good. */
  onFailed?(reason: string): void | Promise<void>;
}

export type ChildStatus = 'running' | 'restarting' | 'stopped' | 'failed';

export interface HealthNode {
  path: string;
  status: ChildStatus;
  restarts: number;
  lastError: string;
  children: HealthNode[];
}

export interface CrashBudget {
  maxRestarts: number;
  windowMs: number;
}

export const DEFAULT_CRASH_BUDGET: CrashBudget = { maxRestarts: 3, windowMs: 60_000 };

interface Child {
  spec: ChildSpec;
  running: Running | undefined;
  status: ChildStatus;
  restarts: number;
  crashTimes: number[];
  lastError: string;
  /** Bumped on every (re)start so a late crash report from an old incarnation is ignored. */
  incarnation: number;
}

export interface SupervisorOptions {
  clock: Clock;
  budget?: CrashBudget;
  log?: (level: 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

export class Supervisor implements Running {
  readonly path: string;
  readonly #o: SupervisorOptions;
  readonly #children = new Map<string, Child>();
  #stopped = false;

  constructor(path: string, options: SupervisorOptions) {
    this.path = path;
    this.#o = options;
  }

  /** Start a child. A failure of this first start is the caller's error (nothing is supervised); later
   *  restarts that fail count as crashes. */
  async startChild(spec: ChildSpec): Promise<void> {
    if (this.#stopped) throw new Error(`${this.path} is stopped`);
    if (this.#children.has(spec.id)) throw new Error(`${this.path}/${spec.id} is already supervised`);
    const child: Child = { spec, running: undefined, status: 'restarting', restarts: 0, crashTimes: [], lastError: '', incarnation: 1 };
    const crash = (error: unknown) => {
      if (child.incarnation === 1) void this.#onCrash(child, error);
    };
    this.#children.set(spec.id, child);
    try {
      child.running = await spec.start(crash);
    } catch (error) {
      this.#children.delete(spec.id);
      throw error;
    }
    if (child.incarnation === 1) child.status = 'running';
  }

  /** Stop a child and forget it (normal completion, not a failure). */
  async stopChild(id: string): Promise<void> {
    const child = this.#children.get(id);
    if (!child) return;
    this.#children.delete(id);
    child.incarnation += 1;
    await child.running?.stop();
  }

  has(id: string): boolean {
    return this.#children.has(id);
  }

  status(id: string): { status: ChildStatus; lastError: string } | undefined {
    const c = this.#children.get(id);
    return c && { status: c.status, lastError: c.lastError };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const ids = [...this.#children.keys()].reverse();
    for (const id of ids) await this.stopChild(id);
  }

  tree(): HealthNode {
    return {
      path: this.path,
      status: 'running',
      restarts: 0,
      lastError: '',
      children: [...this.#children.entries()].map(([id, c]) => {
        const nested = c.running?.tree?.();
        return {
          path: `${this.path}/${id}`,
          status: c.status,
          restarts: c.restarts,
          lastError: c.lastError,
          children: nested?.children ?? [],
        };
      }),
    };
  }

  async #launch(child: Child): Promise<void> {
    if (this.#stopped || this.#children.get(child.spec.id) !== child) return;
    const incarnation = ++child.incarnation;
    const crash = (error: unknown) => {
      if (child.incarnation === incarnation) void this.#onCrash(child, error);
    };
    try {
      const running = await child.spec.start(crash);
      // Stopped (or restarted again) while starting: this incarnation is not wanted any more.
      if (child.incarnation !== incarnation || this.#stopped) return void (await running.stop());
      child.running = running;
      child.status = 'running';
    } catch (error) {
      crash(error);
    }
  }

  async #onCrash(child: Child, error: unknown): Promise<void> {
    if (child.status === 'failed' || !this.#children.has(child.spec.id)) return;
    const now = this.#o.clock.now();
    const { maxRestarts, windowMs } = this.#o.budget ?? DEFAULT_CRASH_BUDGET;
    child.lastError = error instanceof Error ? error.message : String(error);
    child.crashTimes = [...child.crashTimes.filter((t) => now - t < windowMs), now];
    child.incarnation += 1; // ignore further reports from the crashed incarnation
    const old = child.running;
    child.running = undefined;
    await Promise.resolve(old?.stop()).catch(() => undefined);
    const fields = { actor: `${this.path}/${child.spec.id}`, error: child.lastError, crashes: child.crashTimes.length };
    if (child.crashTimes.length > maxRestarts) {
      child.status = 'failed';
      this.#o.log?.('error', 'actor failed: crash budget exhausted', fields);
      const reason = `crashed ${child.crashTimes.length} times in ${Math.round(windowMs / 1000)}s; last error: ${child.lastError}`;
      await Promise.resolve(child.spec.onFailed?.(reason)).catch(() => undefined);
      return;
    }
    this.#o.log?.('warn', 'actor crashed; restarting', fields);
    child.status = 'restarting';
    child.restarts += 1;
    await this.#launch(child);
  }
}

/**
 * For an actor created before its supervisor knows it (it must exist, durably, before it can be supervised):
 * `report` is the actor's crash callback from the start; crashes reported before `bind` are held and handed to
 * the supervisor's `crash` when it binds, so none is lost.
 */
export function crashRelay(): { report(error: unknown): void; bind(crash: (error: unknown) => void): void } {
  const held: unknown[] = [];
  let target: ((error: unknown) => void) | undefined;
  return {
    report: (error) => (target ? target(error) : void held.push(error)),
    bind: (crash) => {
      target = crash;
      for (const error of held.splice(0)) crash(error);
    },
  };
}
