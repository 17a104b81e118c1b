// Error replies: how a peer says it refused a request (or one request of a batch), and how we surface that.
import { ApiError } from '../../runtime/errors.ts';

/** Reply type carrying `{ error: reason, message? }` when a request was refused or its handler failed. */
export const ERROR_TYPE = 'error';

/** The remote peer answered with an error reply; `reason` is its machine reason (e.g. "unknown-type"). */
export class PeerRejected extends ApiError {
  readonly reason: string;
  constructor(reason: string, message?: string) {
    super('FAILED_PRECONDITION', `peer refused the request: ${reason}${message ? ` (${message})` : ''}`);
    this.name = 'PeerRejected';
    this.reason = reason;
  }
}

/** The payload of an error reply. */
export function errorPayload(reason: string, message?: string): { error: string; message?: string } {
  return message ? { error: reason, message } : { error: reason };
}

/** The PeerRejected an error reply's (unverified-shape) payload stands for. */
export function peerRejected(payload: unknown): PeerRejected {
  const p = payload as { error?: unknown; message?: unknown } | null;
  return new PeerRejected(String(p?.error ?? 'unknown'), typeof p?.message === 'string' ? p.message : undefined);
}
