// Errors with a meaning the edges (gRPC status, CLI exit code) can map without string matching.
export type ErrorCode =
  | 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED' | 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | 'RESOURCE_EXHAUSTED'
  | 'UNIMPLEMENTED' | 'INTERNAL' | 'UNAUTHENTICATED';

export class ApiError extends Error {
  readonly code: ErrorCode;
  /** The input field at fault, when there is one ("to", "message_id", "network.port"). */
  readonly field: string | undefined;
  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.field = field;
  }
}

export const invalid = (field: string, message: string): ApiError =>
  new ApiError('INVALID_ARGUMENT', `${field}: ${message}`, field);
export const notFound = (what: string): ApiError => new ApiError('NOT_FOUND', `${what} not found`);
