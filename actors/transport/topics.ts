// GossipSub topics for the actors: subscribe with a handler (counted, so two users of one topic share the
// subscription), publish best-effort. Messages are signed by the publishing peer's key (gossipsub's StrictSign,
// verified by gossipsub before we see them); the handler gets the publisher's DID, derived from that key.
import type { GossipSub, Message } from '@libp2p/gossipsub';
import { didFromPeerId } from '../identity/did.ts';

export type TopicHandler = (from: string, data: Uint8Array) => void;

export class Topics {
  readonly #pubsub: GossipSub;
  readonly #handlers = new Map<string, Set<TopicHandler>>();

  constructor(pubsub: GossipSub) {
    this.#pubsub = pubsub;
    pubsub.addEventListener('message', (evt) => this.#dispatch(evt.detail));
  }

  subscribe(topic: string, handler: TopicHandler): () => void {
    let set = this.#handlers.get(topic);
    if (!set) {
      set = new Set();
      this.#handlers.set(topic, set);
      this.#pubsub.subscribe(topic);
    }
    set.add(handler);
    return () => {
      const s = this.#handlers.get(topic);
      if (!s?.delete(handler) || s.size > 0) return;
      this.#handlers.delete(topic);
      try {
        this.#pubsub.unsubscribe(topic);
      } catch {
        // stopped meanwhile
      }
    };
  }

  /** Publishes to whoever subscribes; resolves with how many peers it went to (0 when nobody listens yet). */
  async publish(topic: string, data: Uint8Array): Promise<number> {
    try {
      return (await this.#pubsub.publish(topic, data)).recipients.length;
    } catch {
      // No subscriber known yet, or stopping: the subscriber recovers what it missed from the publisher.
      return 0;
    }
  }

  #dispatch(msg: Message): void {
    const handlers = this.#handlers.get(msg.topic);
    if (!handlers || msg.type !== 'signed') return;
    let from: string;
    try {
      from = didFromPeerId(msg.from);
    } catch {
      return; // not an Ed25519 peer: not one of ours
    }
    for (const h of handlers) h(from, msg.data);
  }
}
