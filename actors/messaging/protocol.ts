// What travels between daemons for messaging: the `message` envelope and its acknowledgement.
import { invalid } from '../../runtime/errors.ts';

export const MESSAGE_ENVELOPE = 'message';
export const MESSAGE_ID = /^msg_[0-9A-HJKMNP-TV-Z]{26}$/;
/** The longest a message may wait for delivery (per-message ttl_ms and messaging.message_ttl). */
export const MAX_TTL_MS = 30 * 24 * 3600_000;

export interface MessagePayload {
  id: string;
  text: string;
  data: Uint8Array;
  contentType: string;
  /** The sender's clock when it accepted the message. */
  sentAt: number;
}

/**
 * The receiver's reply: `{ id }` once the message is durably in its inbox; `{ error, permanent }` otherwise —
 * permanent when retrying cannot help (the message is malformed, too large, or its id is taken).
 */
export type MessageAck = { id: string } | { error: string; permanent: boolean };

/** Remote input is untrusted: check every field before it reaches the inbox. */
export function parseMessagePayload(p: unknown): MessagePayload {
  if (typeof p !== 'object' || p === null) throw invalid('payload', 'not an object');
  const m = p as Record<string, unknown>;
  if (typeof m.id !== 'string' || !MESSAGE_ID.test(m.id)) throw invalid('payload.id', 'not a msg_ ULID');
  if (typeof m.text !== 'string') throw invalid('payload.text', 'not a string');
  if (!(m.data instanceof Uint8Array)) throw invalid('payload.data', 'not bytes');
  if (typeof m.contentType !== 'string' || m.contentType.length > 128) throw invalid('payload.contentType', 'bad content type');
  if (typeof m.sentAt !== 'number' || !Number.isFinite(m.sentAt)) throw invalid('payload.sentAt', 'not a timestamp');
  if (m.text.length === 0 && m.data.length === 0) throw invalid('payload', 'empty message');
  return { id: m.id, text: m.text, data: m.data, contentType: m.contentType, sentAt: m.sentAt };
}
