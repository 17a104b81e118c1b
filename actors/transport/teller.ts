// One-way messages to one peer ("tells"), on a long-lived stream of TELL_PROTOCOL that the receiver never answers.
//
// Consensus traffic is its own answer: a Raft AppendEntries is acknowledged by an AppendEntries response, which is
// itself a message, so a transport-level reply only doubles the envelopes (a second signature and verification,
// a second write, a second trip through yamux and Noise) and holds a send queue up while it waits. A tell is sealed,
// written and forgotten: no reply, no timeout, no waiter.
//
// Tells queued within one turn (before the microtask queue drains) leave as ONE signed `batch` envelope (batch.ts),
// so the messages of one Raft Ready to a peer cost one signature. Best effort by design: while the stream is being
// opened they wait; if it cannot be opened, breaks, or the queue overflows, they are dropped and counted — the
// sender's protocol retries (Raft resends from its progress state).
import type { Stream } from '@libp2p/interface';
import { BATCH_TYPE, ENVELOPE_OVERHEAD_BYTES, MAX_BATCH_ITEMS, type InnerRequest } from './batch.ts';
import { writeFrame } from './frame.ts';

/** Most tells waiting for a stream or a drain; beyond that new ones are dropped (the peer is slow or gone). */
const MAX_QUEUED = 4_096;

export interface TellerOptions {
  /** Most inner messages in one envelope. */
  maxBatch: number;
  /** The envelope size limit a batch must stay under. */
  maxBytes: number;
  /** Seals an envelope to the peer (signs it). */
  seal(type: string, payload: unknown): Uint8Array;
  /** An envelope was written. */
  onSent(): void;
  /** Tells were dropped (stream failed, queue full). */
  onDropped(count: number, why: string): void;
}

export class Teller {
  private readonly o: TellerOptions;
  private stream: Stream | undefined;
  private queue: (InnerRequest & { size: number })[] = [];
  private scheduled = false;
  private writing = false;
  /** Replaced by a newer teller: send what is queued, then close the stream. */
  private retired = false;
  closed = false;

  /** `opening` resolves with the stream (or rejects: everything queued is dropped and the teller closes). */
  constructor(opening: Promise<Stream>, opts: TellerOptions) {
    this.o = opts;
    opening.then((stream) => {
      if (this.closed) {
        stream.abort(new Error('teller closed'));
        return;
      }
      this.stream = stream;
      stream.addEventListener('close', () => this.close('stream closed'), { once: true });
      if (this.retired && this.queue.length === 0) this.finish();
      else this.schedule();
    }, () => this.close('cannot open a stream'));
  }

  /** Whether its stream is open (tells queued before that wait for it). */
  get opened(): boolean {
    return this.stream !== undefined;
  }

  /** Queues one message; false when it was dropped at once (queue full, or the teller is closed). */
  push(item: InnerRequest & { size: number }): boolean {
    if (this.closed || this.retired) return false;
    if (this.queue.length >= MAX_QUEUED) {
      this.o.onDropped(1, 'queue full');
      return false;
    }
    this.queue.push(item);
    this.schedule();
    return true;
  }

  /** Takes no more tells; what is queued still leaves, then the stream is closed. */
  retire(): void {
    this.retired = true;
    if (this.stream !== undefined && !this.writing && this.queue.length === 0) this.finish();
  }

  private finish(): void {
    this.close('retired');
    void this.stream?.close().catch(() => undefined);
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.length > 0) this.o.onDropped(this.queue.length, why);
    this.queue = [];
  }

  // A microtask, not setImmediate: everything a caller sends in one synchronous run (a Ready's messages) is already
  // queued by then, and the envelope leaves before the event loop goes back to polling (no wait behind other I/O).
  private schedule(): void {
    if (this.scheduled || this.writing || this.stream === undefined) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const group = this.take();
        const bytes = group.length === 1
          ? this.o.seal(group[0]!.type, group[0]!.payload)
          : this.o.seal(BATCH_TYPE, group.map(({ id, type, payload }) => ({ id, type, payload })));
        // Waits only while the stream's send buffer is full; meanwhile new tells queue up and leave together.
        await writeFrame(this.stream!, bytes);
        this.o.onSent();
      }
      if (this.retired && !this.closed) this.finish();
    } catch (err) {
      this.close(`write failed: ${(err as Error).message}`);
      this.stream?.abort(err as Error);
    } finally {
      this.writing = false;
    }
  }

  /** The next messages that fit in one envelope, by count and bytes. */
  private take(): InnerRequest[] {
    const max = Math.min(this.o.maxBatch, MAX_BATCH_ITEMS);
    let bytes = ENVELOPE_OVERHEAD_BYTES;
    let n = 0;
    while (n < this.queue.length && n < max) {
      const size = this.queue[n]!.size;
      if (n > 0 && bytes + size > this.o.maxBytes) break;
      bytes += size;
      n++;
    }
    return this.queue.splice(0, n);
  }
}
