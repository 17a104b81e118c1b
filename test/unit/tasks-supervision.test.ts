// The tasks actor under its supervisor: a task actor that crashes past its budget fails that task with the
// reason, the other side is told through the outbox, and other tasks carry on. Two Tasks actors with real LMDB
// stores, joined by an in-memory envelope transport (the network is not what this test is about).
import { afterEach, describe, expect, it } from 'vitest';
import { EventStore } from '../../runtime/event-store.ts';
import { systemClock } from '../../runtime/clock.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import { Tasks, type TaskInfo } from '../../actors/tasks/tasks.ts';
import type { Topics } from '../../actors/transport/topics.ts';
import { tempDir } from '../support/temp-dir.ts';

type Handler = (env: { from: string; to: string; payload: unknown }) => Promise<{ type: string; payload: unknown }>;

/** Envelopes between daemons in one process: a request reaches the other side's handler with our DID as sender. */
class Wire {
  readonly handlers = new Map<string, Map<string, Handler>>();
  /** Whether senders see their peer as connected (then a transition is tried directly before the outbox). */
  connected = false;
  /** Holds a request back this long before it reaches the other side (reordering on the wire). */
  delay: (type: string, payload: unknown) => number = () => 0;
  endpoint(did: string) {
    const mine = new Map<string, Handler>();
    this.handlers.set(did, mine);
    return {
      handle: (type: string, h: Handler) => void mine.set(type, h),
      isConnected: () => this.connected,
      request: async (to: string, type: string, payload: unknown) => {
        const h = this.handlers.get(to)?.get(type);
        if (!h) throw new Error(`${to} unreachable`);
        const ms = this.delay(type, payload);
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        // Through a structured clone, as through the wire: no shared objects.
        return { payload: structuredClone((await h({ from: did, to, payload: structuredClone(payload) })).payload) };
      },
    };
  }
}

/** A store whose first `failures` appends to task-outbox streams throw: the task actor's effect crashes. */
class FlakyStore extends EventStore {
  failures: number;
  constructor(path: string, failures: number) {
    super(path);
    this.failures = failures;
  }
  override append(...args: Parameters<EventStore['append']>): ReturnType<EventStore['append']> {
    if (args[0].startsWith('task-outbox/') && this.failures > 0) {
      this.failures -= 1;
      return Promise.reject(new Error('disk on fire'));
    }
    return super.append(...args);
  }
}

interface Side { did: string; store: EventStore; root: Supervisor; tasks: Tasks; close(): Promise<void> }

const noTopics = { subscribe: () => () => undefined, publish: async () => 0 } as unknown as Topics;
const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

async function side(wire: Wire, failures = 0): Promise<Side> {
  const id = await identityFromSeed(newSeed());
  const dir = tempDir();
  dirs.push(dir);
  const store = new FlakyStore(dir.path, failures);
  const root = new Supervisor('daemon', { clock: systemClock });
  const tasks = Tasks.create({
    did: id.did, store, clock: systemClock, random: () => 0.5, transport: wire.endpoint(id.did), supervisor: root,
    retry: { initialMs: 20, maxMs: 100 }, topics: noTopics,
  });
  await tasks.start();
  return { did: id.did, store, root, tasks, close: async () => (await root.stop(), await store.close()) };
}

function until(tasks: Tasks, id: string, check: (t: TaskInfo) => boolean): Promise<TaskInfo> {
  return new Promise((resolve) => {
    const now = tasks.find(id);
    if (now && check(now)) return resolve(now);
    const off = tasks.subscribe((t) => t.id === id && check(t) && (off(), resolve(t)));
  });
}

describe('task actors under supervision', () => {
  it('crossing endings: the requester cancels while the assignee completes; both end canceled', async () => {
    const wire = new Wire();
    wire.connected = true;
    const a = await side(wire);
    const b = await side(wire);
    try {
      const t = await a.tasks.create({ to: b.did, skill: 'a2a:v1:cap:x', metadata: {}, input: [] });
      await until(b.tasks, t.id, (x) => x.state === 'submitted');
      await b.tasks.update(t.id, 'working', { message: '', parts: [], artifacts: [] });
      await until(a.tasks, t.id, (x) => x.state === 'working');
      // Both at once: each copy takes its own verdict first, and the messages cross.
      const [canceled, completed] = await Promise.all([
        a.tasks.cancel(t.id, 'no longer needed'),
        b.tasks.update(t.id, 'completed', { message: 'done', parts: [], artifacts: [] }),
      ]);
      expect([canceled.state, completed.state]).toEqual(['canceled', 'completed']);
      // The requester's verdict wins on both sides.
      expect((await until(b.tasks, t.id, (x) => x.state === 'canceled')).statusMessage).toBe('no longer needed');
      expect(a.tasks.get(t.id).state).toBe('canceled');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a message that overtakes the one before it waits for it, and both are applied in order at once', async () => {
    const wire = new Wire();
    wire.connected = true;
    // The assignee's ACCEPT (its message 1) is slow on the wire; its REQUEST_INPUT (message 2) overtakes it.
    wire.delay = (type, payload) => (type === 'task' && (payload as { message: { type: string } }).message.type === 'ACCEPT' ? 150 : 0);
    const a = await side(wire);
    const b = await side(wire);
    try {
      const t = await a.tasks.create({ to: b.did, skill: 'a2a:v1:cap:x', metadata: {}, input: [] });
      await until(b.tasks, t.id, (x) => x.state === 'submitted');
      await b.tasks.update(t.id, 'working', { message: '', parts: [], artifacts: [] });
      await b.tasks.update(t.id, 'input-required', { message: 'which one?', parts: [], artifacts: [] });
      expect((await until(a.tasks, t.id, (x) => x.state === 'input-required')).statusMessage).toBe('which one?');
      // Both went directly and were answered: nothing had to wait in the task outbox for a retry. (Had message 2
      // been answered "early", it would have been queued there before message 1 was applied.)
      expect(b.tasks.outbox.list({})).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('past the crash budget the task fails with the reason, the peer is told, other tasks carry on', async () => {
    const wire = new Wire(); // not connected: every transition goes through the task outbox, whose appends fail
    const a = await side(wire, 4); // the first task's effect crashes 4 times: over the budget of 3 restarts
    const b = await side(wire);
    try {
      const doomed = await a.tasks.create({ to: b.did, skill: 'a2a:v1:cap:x', metadata: {}, input: [] });
      const failed = await until(a.tasks, doomed.id, (t) => t.state === 'failed');
      expect(failed.statusMessage).toMatch(/^task actor failed: crashed 4 times in 60s; last error: disk on fire/);
      // The failure is durable, and the supervisor shows it.
      const node = a.root.tree().children.find((c) => c.path.endsWith('tasks'))!;
      expect(node.children.find((c) => c.path.endsWith(doomed.id))).toMatchObject({ status: 'failed' });
      // The assignee learns of the task and its end, through the outbox, in order.
      expect(await until(b.tasks, doomed.id, (t) => t.state === 'failed')).toMatchObject({ statusMessage: failed.statusMessage });

      // A sibling task is untouched: it runs its whole course.
      const fine = await a.tasks.create({ to: b.did, skill: 'a2a:v1:cap:x', metadata: {}, input: [] });
      await until(b.tasks, fine.id, (t) => t.state === 'submitted');
      await b.tasks.update(fine.id, 'working', { message: '', parts: [], artifacts: [] });
      await b.tasks.update(fine.id, 'completed', { message: 'ok', parts: [], artifacts: [] });
      expect((await until(a.tasks, fine.id, (t) => t.state === 'completed')).statusMessage).toBe('ok');
      expect(a.tasks.counts()).toMatchObject({ failed: 1, completed: 1 });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
