// The `batch` envelope: several requests to one peer under one signature, answered by one signed `batch` reply.
//
// Signing and verifying dominate the cost of a request (~70 µs to sign, ~200 µs to verify, on both sides), so
// requests to the same peer that are issued together travel as one envelope whose payload lists them. The batch
// envelope itself passes every usual check (size, signature, sender, addressee, freshness, replay of its id); its
// inner requests inherit that: they are only as trustworthy as the envelope that carried them.
//
//   request payload: [{ id, type, payload }, …]    ids unique env_ ids, types as for envelopes
//   reply payload:   [{ re, type, payload }, …]    re = an inner request's id; a refused or failed inner request
//                                                  answers { re, type: 'error', payload: { error, message? } }
// Pure: shapes and checks only.
import { Encoder } from 'cbor-x';
import { EnvelopeRejected, isEnvelopeId, isEnvelopeType } from './envelope.ts';

export const BATCH_TYPE = 'batch';
/** Most inner requests a receiver accepts in one batch (senders use fewer, see Transport's maxBatch). */
export const MAX_BATCH_ITEMS = 256; // = the per-stream in-flight limit, so one batch cannot overshoot it
/**
 * Bytes an envelope adds around its payload, generously: the body's other fields (two DIDs, ids, ts) and the
 * outer { body, sig } wrapper come to ~300 bytes. Used to keep a batch under the size limit before sealing it.
 */
export const ENVELOPE_OVERHEAD_BYTES = 512;

export interface InnerRequest { id: string; type: string; payload: unknown }
export interface InnerReply { re: string; type: string; payload: unknown }

const encoder = new Encoder({ useRecords: false });

/** Encoded size of one item, which is exactly what it adds to a batch's payload (plus ≤ 5 bytes of array header). */
export const encodedSize = (item: InnerRequest | InnerReply): number => encoder.encode(item).length;

/** The inner requests of a verified batch envelope; a bad shape refuses the whole envelope as malformed. */
export function parseBatchRequests(payload: unknown): InnerRequest[] {
  if (!Array.isArray(payload) || payload.length === 0 || payload.length > MAX_BATCH_ITEMS) {
    throw new EnvelopeRejected('malformed', `batch must list 1–${MAX_BATCH_ITEMS} requests`);
  }
  const ids = new Set<string>();
  for (const item of payload) {
    if (!hasExactly(item, 'id', 'type', 'payload') || !isEnvelopeId(item.id) || !isEnvelopeType(item.type)) {
      throw new EnvelopeRejected('malformed', 'batch item shape');
    }
    if (ids.has(item.id)) throw new EnvelopeRejected('malformed', `batch repeats ${item.id}`);
    ids.add(item.id);
  }
  return payload as InnerRequest[];
}

/** The inner replies of a verified batch reply, by the id they answer. */
export function parseBatchReplies(payload: unknown): Map<string, InnerReply> {
  if (!Array.isArray(payload) || payload.length > MAX_BATCH_ITEMS) throw new EnvelopeRejected('malformed', 'batch reply shape');
  const byRe = new Map<string, InnerReply>();
  for (const item of payload) {
    if (!hasExactly(item, 're', 'type', 'payload') || !isEnvelopeId(item.re) || !isEnvelopeType(item.type)) {
      throw new EnvelopeRejected('malformed', 'batch reply item shape');
    }
    byRe.set(item.re, item as unknown as InnerReply);
  }
  return byRe;
}

function hasExactly(x: unknown, ...keys: string[]): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Object.getPrototypeOf(x) !== Object.prototype) return false;
  const own = Object.keys(x);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(x, k));
}
