// Threads as the CLI shows them, shared by every thread command: enum words, --json shapes and human lines.
//
// Like task-format.ts this imports nothing heavy: the enum numbers are spelled out here (a unit test keeps them in
// step with the generated module), and the generated types are imported as types only (erased at run time).
import type { Evidence, Thread, ThreadBackend, ThreadBlock, ThreadEntry } from '../proto/gen/moltmesh/v1/threads.ts';
import { humanDuration, quote } from './base.ts';
import { when } from './task-format.ts';

/** ThreadBackend by number, as printed and in --json ("raft"). */
export const THREAD_BACKEND = ['unspecified', 'raft', 'tendermint'];
/** ThreadState by number, as printed and in --json ("active"). */
export const THREAD_STATE = ['unspecified', 'inviting', 'active', 'failed', 'invited', 'declined'];
/** Flag spellings of the backends (`--backend tendermint`), in ThreadBackend order from RAFT. */
export const BACKEND_FLAGS = ['raft', 'tendermint'] as const;

export const backendName = (b: number): string => THREAD_BACKEND[b] ?? String(b);
export const threadStateName = (s: number): string => THREAD_STATE[s] ?? String(s);
/** `tendermint` → ThreadBackend.THREAD_BACKEND_TENDERMINT. */
export const backendOfFlag = (flag: (typeof BACKEND_FLAGS)[number]): ThreadBackend => (BACKEND_FLAGS.indexOf(flag) + 1) as ThreadBackend;
const INVITING = THREAD_STATE.indexOf('inviting');
const FAILED = THREAD_STATE.indexOf('failed');
const INVITED = THREAD_STATE.indexOf('invited');
const TENDERMINT = THREAD_BACKEND.indexOf('tendermint');

/** A did:key as users tell them apart in a line: did:key:z6Mk and the next 8 characters, then "…". */
export const shortDid = (did: string): string => (did.length > 22 ? `${did.slice(0, 20)}…` : did);
/** A block or chain hash as users compare them: its first 6 bytes in hex, then "…" (--json has it whole). */
export const shortHash = (hex: string): string => (!hex ? '(none)' : hex.length > 12 ? `${hex.slice(0, 12)}…` : hex);
const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max)}…` : s);

/**
 * What `n` replicas with `f` tolerated faults mean, in words: "tolerates 1 crashed replica of 3" (Raft, n ≥ 2f+1),
 * "tolerates 1 Byzantine validator of 4" (Tendermint, n ≥ 3f+1), "a single replica: no fault tolerance".
 */
export function toleranceText(backend: number, n: number, f: number): string {
  if (n === 1) return 'a single replica: no fault tolerance';
  const [what, whats] = backend === TENDERMINT ? ['Byzantine validator', 'Byzantine validators'] : ['crashed replica', 'crashed replicas'];
  return `tolerates ${f === 0 ? 'no' : f} ${f > 1 ? whats : what} of ${n}`;
}

/** "raft (tolerates 1 crashed replica of 3)". */
export const backendText = (t: Thread): string => `${backendName(t.backend)} (${toleranceText(t.backend, t.replicas.length, t.faultTolerance)})`;

/** "active"; "inviting (1 of 3 replicas joined)"; "failed: <reason>"; "invited (join-thread --id … to take part)". */
export function stateText(t: Thread): string {
  const s = threadStateName(t.state);
  if (t.state === FAILED) return t.failureReason ? `${s}: ${t.failureReason}` : s;
  if (t.state === INVITING) return `${s} (${t.joined.length} of ${t.replicas.length} replicas joined)`;
  if (t.state === INVITED) return `${s} (moltmesh-daemon join-thread --id ${t.id} to take part)`;
  return s;
}

/** One replica per line: `did:key:… (you)  joined, leader` (the creator knows every join; a replica may not). */
export function replicaLines(t: Thread, self = ''): string {
  return t.replicas.map((did) => {
    const marks: string[] = [];
    if (t.joined.includes(did)) marks.push('joined');
    else if (self && self === t.creator) marks.push('not joined yet');
    if (did === t.creator) marks.push('creator');
    if (did === t.leader) marks.push('leader');
    return `${did}${did === self ? ' (you)' : ''}${marks.length ? `  ${marks.join(', ')}` : ''}`;
  }).join('\n');
}

/** create-thread's and join-thread's rows: id, backend with what it tolerates, state, replicas. */
export function threadSummaryRows(t: Thread, self = ''): Array<[string, string]> {
  return [['Thread ID', t.id], ['Backend', backendText(t)], ['State', stateText(t)], ['Replicas', replicaLines(t, self)]];
}

/** `height 3 round 0  duplicate-vote  did:key:…` (Tendermint's evidence of a validator signing twice). */
export const evidenceLine = (e: Evidence): string => `height ${e.height} round ${e.round}  ${e.kind}  ${e.validator}`;

/** Everything get-thread shows, as `Label  value` rows. */
export function threadRows(t: Thread, self = ''): Array<[string, string | number]> {
  const rows: Array<[string, string | number]> = [
    ['ID', t.id],
    ['Backend', backendText(t)],
    ['State', stateText(t)],
    ['Creator', t.creator === self ? `${t.creator} (you)` : t.creator],
    ['Replicas', replicaLines(t, self)],
    ['Height', t.height],
    ['Head', !t.headHash ? '(none)' : t.height === 0 ? `${t.headHash} (genesis)` : t.headHash],
  ];
  if (t.backend === TENDERMINT || t.evidence.length) {
    rows.push(['Evidence', t.evidence.length ? `${t.evidence.length}\n${t.evidence.map(evidenceLine).join('\n')}` : 'none']);
  }
  rows.push(['Created', when(t.createdAtMs)]);
  return rows;
}

/** `thr_01…  raft  active  3 replicas  height 12  2m 3s ago` (the columns of list-threads). */
export function threadCells(t: Thread, now = Date.now()): string[] {
  return [t.id, backendName(t.backend), threadStateName(t.state), `${t.replicas.length} replica${t.replicas.length === 1 ? '' : 's'}`,
    `height ${t.height}`, `${humanDuration(Math.max(0, now - t.createdAtMs))} ago`];
}

// ── Payloads ────────────────────────────────────────────────────────────────────────────────────────────

/** application/json and the +json types (application/ld+json, …). */
export const isJsonType = (ct: string): boolean => /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(ct.trim());
const isTextType = (ct: string): boolean => /^text\//i.test(ct.trim());

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The payload as a value: parsed JSON for a JSON content type, text for text/*, else undefined (bytes). */
function payloadValue(e: { payload: Uint8Array; contentType: string }): { json: unknown } | { text: string } | undefined {
  const text = isJsonType(e.contentType) || isTextType(e.contentType) ? utf8(e.payload) : undefined;
  if (text === undefined) return undefined;
  if (isJsonType(e.contentType)) {
    try {
      return { json: JSON.parse(text) };
    } catch {
      return { text }; // labelled JSON but is not: shown as the text it is
    }
  }
  return { text };
}

/** The payload on one line: JSON compact, text quoted, anything else as its size and type; clipped at `max`. */
export function payloadText(e: { payload: Uint8Array; contentType: string }, max = 100): string {
  if (!e.payload.length) return '(empty)';
  const v = payloadValue(e);
  if (!v) return `<${e.payload.length} bytes ${e.contentType || 'application/octet-stream'}>`;
  return 'json' in v ? clip(JSON.stringify(v.json), max) : quote(clip(v.text, max));
}

// ── Entries and blocks ──────────────────────────────────────────────────────────────────────────────────

/** `#12.0  did:key:z6MkhaXgBZDv…  decision  {"vote":"approve"}` (height.index, author, kind, payload). */
export const entryLine = (e: ThreadEntry): string => `#${e.height}.${e.index}  ${shortDid(e.author)}  ${e.kind}  ${payloadText(e)}`;

/**
 * An entry for --json: the payload as `payload` (parsed JSON, for a JSON content type), `text` (text/*) or
 * `payloadBase64` (anything else); the signature in hex.
 */
export function entryJson(e: ThreadEntry): Record<string, unknown> {
  const { payload, signature, ...rest } = e;
  const v = payloadValue(e);
  const body = v === undefined ? { payloadBase64: Buffer.from(payload).toString('base64') } : 'json' in v ? { payload: v.json } : { text: v.text };
  return { ...rest, ...body, signature: Buffer.from(signature).toString('hex') };
}

/** `Height 12  Hash 9f2c41…  3 entries  proposer did:key:z6Mk…` (Tendermint: `  3 precommits`), then its entries, indented. */
export function blockText(b: ThreadBlock): string {
  const commit = b.commit.length ? `  ${b.commit.length} precommit${b.commit.length === 1 ? '' : 's'}` : '';
  const head = `Height ${b.height}  Hash ${shortHash(b.hash)}  ${b.entries.length} ${b.entries.length === 1 ? 'entry' : 'entries'}  proposer ${shortDid(b.proposer)}${commit}`;
  return [head, ...b.entries.map((e) => `  ${entryLine(e)}`)].join('\n');
}

/** A block for --json: its entries as entryJson, commit signatures in hex. */
export function blockJson(b: ThreadBlock): Record<string, unknown> {
  return {
    ...b,
    entries: b.entries.map(entryJson),
    commit: b.commit.map((c) => ({ ...c, signature: Buffer.from(c.signature).toString('hex') })),
  };
}

/** The generated Thread with its enums as words ("raft", "active") and the creation time also as ISO. */
export function threadJson(t: Thread): Record<string, unknown> {
  return { ...t, backend: backendName(t.backend), state: threadStateName(t.state), createdAt: new Date(t.createdAtMs).toISOString() };
}
