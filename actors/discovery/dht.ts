// Where cards, names and capabilities live in the mesh's DHT, and the kad-dht validators and selectors that keep
// forged, altered, expired and rolled-back records from winning. Pure: the clock comes in as `now()`.
//
// ── Keys ─────────────────────────────────────────────────────────────────────────────────────────────────
//
//   card of an agent      /moltmesh-card/<did>        UTF-8, e.g. /moltmesh-card/did:key:z6MkhaX…
//   a name                /moltmesh-name/<name>       UTF-8, e.g. /moltmesh-name/swift-falcon
//   capability providers  CIDv1(raw, sha2-256(UTF-8 "/moltmesh-cap/" ++ capability id))
//                         e.g. sha2-256("/moltmesh-cap/a2a:v1:cap:text-generation"); an agent `provide()`s the CID
//                         of each capability on its card, FindAgents asks `findProviders()` of it, maps each provider's
//                         peer id to its DID (actors/identity/did.ts) and resolves that DID's card.
//
// kad-dht picks a validator and a selector by the key's first path segment ("moltmesh-card", "moltmesh-name"):
// pass `discoveryValidators(now)` / `discoverySelectors(now)` (merged with any others) to `kadDHT({ validators,
// selectors })`.
//
// ── Why a selector, and which record wins ────────────────────────────────────────────────────────────────
//
// A storing peer does not compare an incoming record with the one it holds: any validly signed record replaces
// it, including an *older* one replayed by anybody. The selector, which kad-dht runs over the records a `get()`
// collected from several peers (then pushes the winner back to the peers that returned another), undoes that:
//
//   card:  among the records that verify at `now` for the DID of the key, the highest `seq`, then the latest
//          `issuedAt`, then the greatest bytes (only the owner can make two cards with one seq and issuedAt; any
//          fixed rule will do). Adding older replays never changes the choice.
//   name:  among the records that verify at `now` for the name of the key (expired ones do not), each owner's
//          newest (highest seq, then issuedAt, then bytes) stands for that owner — so a renewal replaces its own
//          older record, and a release (a newer record with released: true) withdraws it. Among owners whose
//          newest record is not a release, the earliest `claimedAt` wins, ties broken by the owner's DID (bytewise);
//          when every owner has released, the latest release is returned (so the release spreads).
//
// Both are functions of the *set* of records and `now`: the order of the array and duplicates do not matter, so
// every node that sees the same records chooses the same one. Invalid records are ignored; when none is valid the
// selector throws (kad-dht's get() then fails rather than return a bad record).
//
// What first-come can and cannot promise: `claimedAt` is the claimant's own statement. Against honest daemons
// (concurrent claims, later claims made without seeing the live one, replays) the rule converges on one owner
// everywhere; a DID that *backdates* its claimedAt would win the selector. `shouldStore` (below) lets the storing
// peers keep a live record against any other DID's put, which limits that to peers that hold no live record of
// the name; witnessed claim times would close it and are future work.
import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { compareBytes, equalBytes } from '../../runtime/canonical-cbor.ts';
import { verifyCard, verifyName, type SignedCard, type SignedName } from './records.ts';

export const CARD_NAMESPACE = 'moltmesh-card';
export const NAME_NAMESPACE = 'moltmesh-name';
const CAPABILITY_PREFIX = '/moltmesh-cap/';
const RAW = 0x55;
const SHA2_256 = 0x12;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function cardKey(did: string): Uint8Array {
  return utf8.encode(`/${CARD_NAMESPACE}/${did}`);
}

export function nameKey(name: string): Uint8Array {
  return utf8.encode(`/${NAME_NAMESPACE}/${name}`);
}

/** The CID whose providers are the agents offering capability `capabilityId` (a2a:v1:cap:<name>). */
export function capabilityCid(capabilityId: string): CID {
  return textCid(CAPABILITY_PREFIX + capabilityId);
}

/** CIDv1(raw, sha2-256(UTF-8 `text`)): a DHT key to provide under. */
export function textCid(text: string): CID {
  const hash = createHash('sha256').update(text).digest();
  return CID.createV1(RAW, Digest.create(SHA2_256, new Uint8Array(hash)));
}

/** The DID / name a key of `namespace` is for; throws on any other key. */
export function keySubject(namespace: string, key: Uint8Array): string {
  let s: string;
  try {
    s = utf8Decoder.decode(key);
  } catch {
    throw new Error('DHT key is not UTF-8');
  }
  const prefix = `/${namespace}/`;
  if (!s.startsWith(prefix) || s.length === prefix.length) throw new Error(`DHT key ${JSON.stringify(s.slice(0, 80))} is not a /${namespace}/ key`);
  return s.slice(prefix.length);
}

// ── Orderings ────────────────────────────────────────────────────────────────────────────────────────────

interface Candidate<R> {
  index: number;
  bytes: Uint8Array;
  record: R;
}

/** Newer first: > 0 when `a` is newer than `b` (seq, then issuedAt, then bytes). */
function newer(a: Candidate<{ seq: number; issuedAt: number }>, b: Candidate<{ seq: number; issuedAt: number }>): number {
  return a.record.seq - b.record.seq || a.record.issuedAt - b.record.issuedAt || compareBytes(a.bytes, b.bytes);
}

function valid<R>(records: readonly Uint8Array[], verify: (bytes: Uint8Array) => R): Candidate<R>[] {
  const out: Candidate<R>[] = [];
  records.forEach((bytes, index) => {
    try {
      out.push({ index, bytes, record: verify(bytes) });
    } catch {
      // an invalid record never wins
    }
  });
  return out;
}

function best<T>(items: readonly T[], better: (a: T, b: T) => number): T | undefined {
  let winner: T | undefined;
  for (const item of items) if (winner === undefined || better(item, winner) > 0) winner = item;
  return winner;
}

/** The index of the card that wins among `records` for `did` at `now` (see the top of this file). */
export function selectCard(did: string, records: readonly Uint8Array[], now: number): number {
  const winner = best(valid(records, (b) => verifyCard(b, { expectedDid: did, now })), newer);
  if (!winner) throw new Error(`no valid card of ${did} among ${records.length} records`);
  return winner.index;
}

/** Earlier claim first: > 0 when `a` is the earlier claim (claimedAt, then the owner's DID bytes). */
function earlierClaim(a: Candidate<SignedName>, b: Candidate<SignedName>): number {
  return b.record.claimedAt - a.record.claimedAt || compareBytes(utf8.encode(b.record.did), utf8.encode(a.record.did));
}

/** The index of the name record that wins among `records` for `name` at `now` (see the top of this file). */
export function selectName(name: string, records: readonly Uint8Array[], now: number): number {
  const candidates = valid(records, (b) => verifyName(b, { expectedName: name, now }));
  if (candidates.length === 0) throw new Error(`no valid live record of ${JSON.stringify(name)} among ${records.length} records`);
  // Each owner's newest record speaks for it.
  const newestByOwner = new Map<string, Candidate<SignedName>>();
  for (const c of candidates) {
    const held = newestByOwner.get(c.record.did);
    if (held === undefined || newer(c, held) > 0) newestByOwner.set(c.record.did, c);
  }
  const statements = [...newestByOwner.values()];
  const holders = statements.filter((c) => !c.record.released);
  const winner = holders.length > 0 ? best(holders, earlierClaim)! : best(statements, (a, b) => a.record.issuedAt - b.record.issuedAt || compareBytes(a.bytes, b.bytes))!;
  return winner.index;
}

/** The record that holds `name` at `now` among `records`, or undefined when nobody holds it (none, all released). */
export function nameHolder(name: string, records: readonly Uint8Array[], now: number): SignedName | undefined {
  return holdingRecord(name, records, now)?.record;
}

/** As `nameHolder`, with the winning record's bytes (to spread them). */
export function holdingRecord(name: string, records: readonly Uint8Array[], now: number): { record: SignedName; bytes: Uint8Array } | undefined {
  let i: number;
  try {
    i = selectName(name, records, now);
  } catch {
    return undefined;
  }
  const record = verifyName(records[i]!, { expectedName: name, now });
  return record.released ? undefined : { record, bytes: records[i]! };
}

// ── kad-dht hooks ────────────────────────────────────────────────────────────────────────────────────────

/** kad-dht's ValidateFn: resolves if `value` is a valid record for `key` now, rejects saying why otherwise. */
export type Validator = (key: Uint8Array, value: Uint8Array) => Promise<void>;
/** kad-dht's SelectFn: the index of the best of `records` for `key`. */
export type Selector = (key: Uint8Array, records: Uint8Array[]) => number;

export function discoveryValidators(now: () => number): Record<string, Validator> {
  return {
    [CARD_NAMESPACE]: async (key, value) => void verifyCard(value, { expectedDid: keySubject(CARD_NAMESPACE, key), now: now() }),
    [NAME_NAMESPACE]: async (key, value) => void verifyName(value, { expectedName: keySubject(NAME_NAMESPACE, key), now: now() }),
  };
}

export function discoverySelectors(now: () => number): Record<string, Selector> {
  return {
    [CARD_NAMESPACE]: (key, records) => selectCard(keySubject(CARD_NAMESPACE, key), records, now()),
    [NAME_NAMESPACE]: (key, records) => selectName(keySubject(NAME_NAMESPACE, key), records, now()),
  };
}

/**
 * For a storing peer that holds `stored` under `key` and is asked to store `incoming` (a PUT_VALUE; kad-dht itself
 * never asks): whether to take it. A valid incoming record is taken unless the stored one is valid and the
 * selector prefers it — so replays of older cards and names are refused at the door — and, for names, a live
 * record is never displaced by another DID's (incumbent first-come; see the top of this file). Two claims that
 * raced can so stay split across storing peers until the loser's record expires; every get() still resolves to
 * the same winner (the selector sees both), and the losing daemon, told LOST, stops renewing.
 */
export function shouldStore(key: Uint8Array, stored: Uint8Array | undefined, incoming: Uint8Array, now: number): boolean {
  const ns = namespaceOf(key) ?? '';
  const verify = ns === CARD_NAMESPACE
    ? (b: Uint8Array) => verifyCard(b, { expectedDid: keySubject(CARD_NAMESPACE, key), now })
    : ns === NAME_NAMESPACE
      ? (b: Uint8Array) => verifyName(b, { expectedName: keySubject(NAME_NAMESPACE, key), now })
      : undefined;
  if (!verify) return false;
  try {
    verify(incoming);
  } catch {
    return false;
  }
  if (stored === undefined || equalBytes(stored, incoming)) return true;
  let held: SignedCard | SignedName;
  try {
    held = verify(stored);
  } catch {
    return true; // what we hold is no longer valid (expired): anything valid replaces it
  }
  if (ns === NAME_NAMESPACE) {
    const h = held as SignedName;
    const inc = verifyName(incoming, { now });
    if (inc.did !== h.did && !h.released) return false;
  }
  const select = ns === CARD_NAMESPACE ? selectCard : selectName;
  return select(keySubject(ns, key), [stored, incoming], now) === 1;
}

function namespaceOf(key: Uint8Array): string | undefined {
  try {
    const s = utf8Decoder.decode(key);
    const parts = s.split('/');
    return parts.length >= 3 && parts[0] === '' ? parts[1] : undefined;
  } catch {
    return undefined;
  }
}
