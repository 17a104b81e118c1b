// What `replay thread-raft/<id>` and `replay thread-tm/<id>` show for each READY event: a one-line summary of the
// consensus state it made durable, beside the event itself (Raft batches decoded into their entries); and for a
// BASE event (the log compacted or trimmed: it replaced every event before it), where the log now starts. Reading only:
// a log that does not decode is described as such.
import { decodeCanonical } from '../../runtime/canonical-cbor.ts';
import { decodeEntry } from '../../machines/chain.ts';
import type { BaseEventData, ReadyEventData } from './raft-replica.ts';
import type { ReadyEventData as TendermintEventData } from './tendermint-validator.ts';

/** The last characters of a DID: enough to tell replicas apart on one line. */
const short = (did: unknown): string => (typeof did === 'string' ? `…${did.slice(-6)}` : String(did));
/** The first characters of a block hash (hex already, in the READY events). */
const shortHash = (h: unknown): string => String(h).slice(0, 12);

/**
 * A Raft READY: the hard state, and the log entries written (each a batch of signed thread entries). A BASE
 * (`type`): the index and term the log was compacted to, the entries kept after it, and the hard state.
 */
export function describeRaftEvent(data: unknown, type: string): unknown {
  const d = data as ReadyEventData;
  const hardState = d.hardState && `term ${d.hardState.term}, vote ${d.hardState.vote ? short(d.hardState.vote) : 'none'}, commit ${d.hardState.commit}`;
  const entries = Array.isArray(d.entries) ? d.entries.map(([index, term, bytes]) => ({ index, term, ...batchOf(bytes) })) : [];
  if (type === 'BASE') {
    const { base } = d as BaseEventData;
    const kept = entries.length === 1 ? '1 entry kept' : `${entries.length} entries kept`;
    const summary = `log compacted to index ${base?.index} (term ${base?.term}); ${kept}; hard state ${hardState ?? 'none'}`;
    return { summary, ...d, entries };
  }
  const parts = hardState ? [hardState] : [];
  if (entries.length > 0) {
    const written = entries.flatMap((e) => e.entries ?? []);
    const [first, last] = [entries[0]!, entries[entries.length - 1]!];
    const what = entries.length === 1 && entries[0]!.note ? entries[0]!.note
      : written.length === 1 ? `1 entry: ${written[0]}` : `${written.length} entries`;
    parts.push(`log ${first.index === last.index ? first.index : `${first.index}–${last.index}`} (term ${last.term}): ${what}`);
  }
  return { summary: parts.join('; ') || 'nothing', hardState: d.hardState, entries };
}

function batchOf(bytes: Uint8Array | null): { proposer?: string; entries?: string[]; note?: string } {
  if (bytes === null) return { note: "the new leader's empty entry" };
  try {
    const b = decodeCanonical(bytes) as { proposer: string; entries: Uint8Array[] };
    return { proposer: b.proposer, entries: b.entries.map(entryLabel) };
  } catch (err) {
    return { note: `does not decode: ${(err as Error).message}` };
  }
}

function entryLabel(bytes: Uint8Array): string {
  try {
    const e = decodeEntry(bytes);
    return `${e.id} ${e.kind} by ${short(e.author)}`;
  } catch (err) {
    return `(not an entry: ${(err as Error).message})`;
  }
}

/**
 * A Tendermint READY: where the validator is (height, round, step, lock), what it decided, and evidence. A BASE
 * (`type`): the log was trimmed here, and the state it carries is the last one written before.
 */
export function describeTendermintEvent(data: unknown, type: string): unknown {
  const d = data as TendermintEventData;
  const parts: string[] = type === 'BASE' ? ['log trimmed: the events before this one were dropped (their blocks are in the chain)'] : [];
  const s = d.state;
  if (s) {
    const lock = s.lockedRound >= 0 ? `, locked in round ${s.lockedRound} on ${shortHash(s.lockedHash)}` : '';
    parts.push(`height ${s.height} round ${s.round} ${s.step}${lock}, ${s.signed?.length ?? 0} signed`);
  }
  for (const x of d.decided ?? []) parts.push(`decided ${x.height} in round ${x.round}: ${shortHash(x.hash)}`);
  for (const e of d.evidence ?? []) parts.push(`evidence: ${short(e.validator)} ${e.kind} at ${e.height}/${e.round}`);
  return { summary: parts.join('; ') || 'nothing', ...d };
}
