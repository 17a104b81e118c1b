// Handler wrappers: turn plain async functions into grpc-js handlers with one error policy — ApiError keeps its
// code, anything else becomes INTERNAL (logged) — so no handler can crash the daemon or leave a call hanging.
import {
  status as GrpcStatus,
  type handleBidiStreamingCall, type handleClientStreamingCall, type handleServerStreamingCall, type handleUnaryCall,
  type ServerErrorResponse, type ServerUnaryCall,
} from '@grpc/grpc-js';
import type { Logger } from '../../runtime/log.ts';
import { statusError, toStatusError } from './status.ts';
import { StreamSink, type StreamRegistry } from './stream.ts';

export interface HandlerContext {
  streams: StreamRegistry;
  logger: Logger;
}

function internalLogger(ctx: HandlerContext, method: string) {
  return (err: unknown) => ctx.logger('error', 'grpc handler failed', {
    method, error: err instanceof Error ? err.stack ?? err.message : String(err),
  });
}

export function unary<Req, Res>(
  ctx: HandlerContext, method: string, fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .finally(() => {
        // grpc-js emits 'cancelled' after a normal end too (see stream.ts). Once answered, the handler waits for
        // nothing, so its cancel listeners go unrun: an abort would build a DOMException with a stack trace and
        // run every listener on the signal, on every call.
        call.removeAllListeners('cancelled');
      })
      .then((res) => callback(null, res), (err: unknown) => callback(toStatusError(err, internalLogger(ctx, method))));
  };
}

/** For a unary handler's own waits: aborts when the client goes away (cancel, deadline) or after `ms`. */
export function callSignal(call: ServerUnaryCall<unknown, unknown>, ms: number): AbortSignal {
  const gone = new AbortController();
  call.on('cancelled', () => gone.abort());
  return AbortSignal.any([gone.signal, AbortSignal.timeout(ms)]);
}

/** fn reads the client's stream; its result is the one response. Errors policy as for unary calls. */
export function clientStream<Req, Res>(
  ctx: HandlerContext, method: string, fn: (requests: AsyncIterable<Req>) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call as AsyncIterable<Req>))
      .then((res) => callback(null, res), (err: unknown) => {
        call.destroy(); // stop reading what the client still sends
        callback(toStatusError(err, internalLogger(ctx, method)));
      });
  };
}

/** fn writes to the sink; when it returns, the stream ends unless fn kept it open (a live subscription). */
export function serverStream<Req, Res>(
  ctx: HandlerContext, method: string,
  fn: (req: Req, sink: StreamSink<Res>) => void | 'live' | Promise<void | 'live'>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const sink = new StreamSink<Res>(call, ctx.streams);
    if (sink.finished) return; // refused: the daemon is shutting down
    Promise.resolve()
      .then(() => fn(call.request, sink))
      .then(
        (mode) => { if (mode !== 'live') sink.end(); },
        (err: unknown) => sink.failWith(toStatusError(err, internalLogger(ctx, method))),
      );
  };
}

/** Fits any slot of a generated *Server interface (unary, server-, client- or bidi-streaming). */
export type AnyHandler = handleUnaryCall<any, any> & handleServerStreamingCall<any, any>
  & handleClientStreamingCall<any, any> & handleBidiStreamingCall<any, any>;

/** A handler of any kind that answers UNIMPLEMENTED, naming the product area. */
export function unimplemented(area: string, rpc: string): AnyHandler {
  const details = `${area} not implemented yet (${rpc})`;
  return (call: { emit(e: string, v: unknown): void }, callback?: (e: ServerErrorResponse) => void) => {
    const err = statusError(GrpcStatus.UNIMPLEMENTED, details);
    if (typeof callback === 'function') callback(err);
    else call.emit('error', err);
  };
}
