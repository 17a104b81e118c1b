// A set of persisted actors of one kind, each a child of one supervisor, kept in memory only while unfinished.
//
// The dance every primitive with one actor per item needs (outbox deliveries, tasks): create an actor — it must
// exist durably before it can be supervised, so crashes reported in between are held and handed over (crashRelay)
// — or recover one from its log; restart it alone when it crashes; when its budget is spent, hand it to
// `onFailed`; and once it is finished and its last effects are acknowledged, stop it (its log and final snapshot
// stay on disk).
import type { EventObject } from 'xstate';
import { PersistedActor, type PersistedActorOptions, type Transition } from './persisted-actor.ts';
import { crashRelay, type Supervisor } from './supervisor.ts';

export interface SupervisedActorsOptions {
  supervisor: Supervisor;
  /** The persisted-actor options of actor `id`, reporting its crashes to `onCrash`. */
  actorOptions(id: string, onCrash: (error: unknown) => void): PersistedActorOptions;
  /** Actor `id` spent its crash budget and is stopped for good (it is no longer in the set). */
  onFailed(id: string, reason: string): void | Promise<void>;
  /** Every transition of a live actor, after its append. */
  onTransition?(id: string, actor: PersistedActor, t: Transition): void;
}

export class SupervisedActors {
  readonly #o: SupervisedActorsOptions;
  readonly #live = new Map<string, PersistedActor>();

  constructor(options: SupervisedActorsOptions) {
    this.#o = options;
  }

  get(id: string): PersistedActor | undefined {
    return this.#live.get(id);
  }

  /** The live actors, by id. */
  entries(): IterableIterator<[string, PersistedActor]> {
    return this.#live.entries();
  }

  /** Start a new stream for `id` and supervise its actor. Resolves once its first events are durable. */
  async create(id: string, input: unknown, firstEvents: EventObject[] = []): Promise<PersistedActor> {
    const relay = crashRelay();
    const actor = await PersistedActor.create(this.#o.actorOptions(id, relay.report), input, firstEvents);
    await this.#supervise(id, actor, relay.bind);
    return actor;
  }

  /** Recover `id` from its log and supervise it. */
  resume(id: string): Promise<void> {
    return this.#supervise(id);
  }

  async #supervise(id: string, created?: PersistedActor, bindCrash?: (crash: (e: unknown) => void) => void): Promise<void> {
    let first = created;
    await this.#o.supervisor.startChild({
      id,
      onFailed: (reason) => {
        this.#live.delete(id);
        return this.#o.onFailed(id, reason);
      },
      start: async (crash) => {
        const actor = first ?? (await PersistedActor.recover(this.#o.actorOptions(id, crash)));
        if (first) bindCrash?.(crash);
        first = undefined;
        this.#live.set(id, actor);
        actor.subscribe((t) => {
          this.#o.onTransition?.(id, actor, t);
          if (actor.done) this.#evictWhenSettled(id, actor);
        });
        if (actor.done) this.#evictWhenSettled(id, actor);
        return {
          stop: async () => {
            if (this.#live.get(id) === actor) this.#live.delete(id);
            await actor.stop();
          },
        };
      },
    });
  }

  #evictWhenSettled(id: string, actor: PersistedActor): void {
    // Deferred, so every listener of the final transition (a waiting caller) still sees the actor.
    void actor.effectsSettled().then(() => queueMicrotask(() => void this.#o.supervisor.stopChild(id)));
  }
}
