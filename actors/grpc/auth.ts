// Bearer-token check for the TCP listener. The unix socket is protected by its 0600 mode instead; TCP can be
// reached by anyone on the network, so every call must carry the token the daemon keeps in <data_dir>/grpc-token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { status as GrpcStatus, type UntypedHandleCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { statusError } from './status.ts';

/** Constant-time check of an `authorization` metadata value against the token. */
export function bearerMatches(header: unknown, token: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  // Compare digests: equal lengths for timingSafeEqual, and nothing leaks about the token's length.
  const a = createHash('sha256').update(header.slice('Bearer '.length)).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** Wraps every handler so a call without the token fails UNAUTHENTICATED before it reaches the daemon. */
export function requireToken(impl: UntypedServiceImplementation, token: string): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    out[name] = ((call: any, callback?: (e: unknown) => void) => {
      if (bearerMatches(call.metadata.get('authorization')[0], token)) return (handler as Function)(call, callback);
      const err = statusError(GrpcStatus.UNAUTHENTICATED, 'missing or wrong bearer token (see <data_dir>/grpc-token)');
      if (typeof callback === 'function') callback(err);
      else call.emit('error', err);
    }) as UntypedHandleCall;
  }
  return out;
}
