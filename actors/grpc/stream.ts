// Server-stream plumbing shared by every streaming RPC: a sink that knows when the call is over (client cancel,
// our own end, daemon shutdown), respects write() backpressure, and a registry so shutdown can end them all.
import { status as GrpcStatus, type ServerErrorResponse, type ServerWritableStream } from '@grpc/grpc-js';
import { statusError } from './status.ts';

/** Most messages, and bytes, a push-style stream buffers for a slow reader before giving up with RESOURCE_EXHAUSTED. */
export const MAX_BUFFERED = 10_000;
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export class StreamSink<T> {
  #call: ServerWritableStream<unknown, T>;
  #registry: StreamRegistry;
  #finished = false;
  #onClose: Array<() => void> = [];
  #bufferedBytes = 0;   // sizes given to send()/write() of messages not yet handed to the transport

  constructor(call: ServerWritableStream<unknown, T>, registry: StreamRegistry) {
    this.#call = call;
    this.#registry = registry;
    // 'cancelled' fires on client cancel or deadline, and also after a normal end: the flag makes both safe.
    call.on('cancelled', () => this.#finish());
    call.on('close', () => this.#finish());
    registry.add(this);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Runs once when the stream is over for any reason (unsubscribe here). */
  onClose(fn: () => void): void {
    if (this.#finished) fn();
    else this.#onClose.push(fn);
  }

  /**
   * Push-style write for live sources that cannot wait. `bytes` estimates the message's encoded size. Past
   * MAX_BUFFERED messages or MAX_BUFFERED_BYTES waiting for the reader, the stream fails with RESOURCE_EXHAUSTED;
   * `hint` tells the reader how to recover.
   */
  send(msg: T, bytes: number, hint = 'resubscribe'): void {
    if (this.#finished) return;
    if (this.#call.writableLength >= MAX_BUFFERED || this.#bufferedBytes + bytes > MAX_BUFFERED_BYTES) {
      const what = this.#call.writableLength >= MAX_BUFFERED ? `${MAX_BUFFERED} messages` : `${MAX_BUFFERED_BYTES >> 20} MiB`;
      this.fail(GrpcStatus.RESOURCE_EXHAUSTED, `reader too slow: more than ${what} waiting; ${hint}`);
      return;
    }
    this.#write(msg, bytes);
  }

  /** Pull-style write: resolves when the reader has room again; false once the stream is over. */
  async write(msg: T, bytes = 0): Promise<boolean> {
    if (this.#finished) return false;
    if (this.#write(msg, bytes)) return true;
    await new Promise<void>((resolve) => {
      const done = () => { this.#call.off('drain', done); resolve(); };
      this.#call.once('drain', done);
      this.onClose(done);
    });
    return !this.#finished;
  }

  #write(msg: T, bytes: number): boolean {
    this.#bufferedBytes += bytes;
    // The callback runs once grpc-js has passed the message on to HTTP/2, which itself waits on flow control.
    return this.#call.write(msg, () => { this.#bufferedBytes -= bytes; });
  }

  /** Ends the stream with OK. */
  end(): void {
    if (this.#finished) return;
    this.#call.end();
    this.#finish();
  }

  /** Ends the stream with an error status. */
  fail(code: GrpcStatus, details: string, field?: string): void {
    this.failWith(statusError(code, details, field));
  }

  failWith(err: ServerErrorResponse): void {
    if (this.#finished) return;
    // grpc-js turns an 'error' event on a server stream into the call's final status.
    this.#call.emit('error', err);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#registry.delete(this);
    for (const fn of this.#onClose.splice(0)) {
      try { fn(); } catch { /* an unsubscribe that throws must not break the others */ }
    }
  }
}

/** Live server streams, so shutdown can end each with UNAVAILABLE before the server stops. */
export class StreamRegistry {
  #live = new Set<StreamSink<unknown>>();
  #closedWith: string | undefined;

  add(sink: StreamSink<any>): void {
    if (this.#closedWith !== undefined) sink.fail(GrpcStatus.UNAVAILABLE, this.#closedWith);
    else this.#live.add(sink);
  }

  delete(sink: StreamSink<any>): void {
    this.#live.delete(sink);
  }

  get size(): number {
    return this.#live.size;
  }

  /** Ends every live stream and refuses new ones. */
  closeAll(reason = 'daemon shutting down'): void {
    this.#closedWith ??= reason;
    for (const sink of [...this.#live]) sink.fail(GrpcStatus.UNAVAILABLE, reason);
  }
}
