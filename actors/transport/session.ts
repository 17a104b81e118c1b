// One long-lived outbound stream to a peer, carrying many envelopes at once.
//
// Opening a stream per request costs a protocol negotiation (~1.2 ms on loopback TCP, ~2.5 ms QUIC, and ~1,300
// requests/s at best); a reused stream costs ~0.2 ms (~12,000/s). Envelopes (a plain request, or a `batch` of
// them, see batcher.ts) are written as frames as they come; replies may arrive in any order and are matched to the
// envelope they answer by their `re` field. The session knows nothing about signatures: whoever waits fully
// verifies the reply it is handed, so a bogus `re` can only fail that envelope's requests.
// When the stream ends or breaks, every pending envelope fails and the session is discarded; the next request
// opens a new one.
import type { Stream } from '@libp2p/interface';
import { peekEnvelope } from './envelope.ts';
import { readFrames, writeFrame } from './frame.ts';

interface Waiter { resolve(bytes: Uint8Array): void; reject(err: Error): void }

export class SessionClosed extends Error {
  constructor(cause?: unknown) {
    super(`stream to peer closed${cause instanceof Error ? `: ${cause.message}` : ''}`);
    this.name = 'SessionClosed';
  }
}

export class Session {
  readonly stream: Stream;
  private readonly pending = new Map<string, Waiter>();
  private closedBy: Error | undefined;

  constructor(stream: Stream, maxBytes: number, onStrayReply: (detail: string) => void) {
    this.stream = stream;
    void this.readLoop(maxBytes, onStrayReply);
  }

  get closed(): boolean {
    return this.closedBy !== undefined;
  }

  /**
   * Resolves with the bytes of the frame whose `re` is `id`; fails when the session closes first. Call before
   * writing the envelope, so even an immediate reply finds its waiter.
   */
  expect(id: string): Promise<Uint8Array> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    return new Promise<Uint8Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Nobody waits for `id` any more (its callers timed out): a reply that comes later is a stray. */
  forget(id: string): void {
    this.pending.delete(id);
  }

  /** Queues one frame, waiting only while the stream's send buffer is full. */
  async write(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.closedBy) throw this.closedBy;
    try {
      await writeFrame(this.stream, bytes, signal);
    } catch (err) {
      // A failed write (not an abort of ours) means the stream is unusable: fail the session so the next
      // request opens a new one instead of queueing behind a dead stream.
      if (!signal?.aborted && !this.closedBy && this.stream.writeStatus !== 'writable') {
        this.fail(new SessionClosed(err));
        this.stream.abort(err as Error);
      }
      throw err;
    }
  }

  private async readLoop(maxBytes: number, onStrayReply: (detail: string) => void): Promise<void> {
    try {
      for await (const bytes of readFrames(this.stream, maxBytes)) {
        const re = peekEnvelope(bytes)?.re;
        const w = re === undefined ? undefined : this.pending.get(re);
        if (w === undefined) {
          onStrayReply(re === undefined ? 'unreadable reply' : 'reply to no pending request'); // e.g. after a timeout
          continue;
        }
        this.pending.delete(re!);
        w.resolve(bytes);
      }
      this.fail(new SessionClosed());
    } catch (err) {
      this.fail(new SessionClosed(err));
      this.stream.abort(err as Error);
    }
  }

  private fail(err: Error): void {
    this.closedBy ??= err;
    for (const [id, w] of this.pending) {
      this.pending.delete(id);
      w.reject(err);
    }
  }
}
