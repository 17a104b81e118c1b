// ApiError codes <-> gRPC status codes. The names are the same by design (runtime/errors.ts copies gRPC's),
// so the mapping is a lookup, and anything that is not an ApiError is a bug: INTERNAL with its message.
import { Metadata, status as GrpcStatus, type ServerErrorResponse } from '@grpc/grpc-js';
import { ApiError, type ErrorCode } from '../../runtime/errors.ts';

/** Trailer naming the request field at fault; sdk/client.ts reads it into DaemonError.field. */
export const FIELD_METADATA_KEY = 'moltmesh-field';

export function grpcCodeOf(code: ErrorCode): GrpcStatus {
  return GrpcStatus[code];
}

export function statusError(code: GrpcStatus, details: string, field?: string): ServerErrorResponse {
  const metadata = new Metadata();
  if (field) metadata.set(FIELD_METADATA_KEY, field);
  return Object.assign(new Error(details), { code, details, metadata });
}

/** Any thrown value -> the status the client sees. Non-ApiErrors are reported to `onInternal` (for the log). */
export function toStatusError(err: unknown, onInternal?: (err: unknown) => void): ServerErrorResponse {
  if (err instanceof ApiError) return statusError(grpcCodeOf(err.code), err.message, err.field);
  onInternal?.(err);
  const message = err instanceof Error ? err.message : String(err);
  return statusError(GrpcStatus.INTERNAL, `internal error: ${message}`);
}
