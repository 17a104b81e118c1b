// The exact bytes a validator signs for a proposal or a vote. Fixed layout, big-endian, so that any language can
// rebuild them from the fields (and check a commit certificate or a piece of evidence) without a CBOR library:
//
//   offset  size  field
//   0       23    "moltmesh/tendermint/v1\n" (ASCII): these bytes can never be another signed record's bytes
//                 (thread entries sign "moltmesh/thread-entry/v1\n" ++ CBOR, blocks are hashed, not signed)
//   23      1     type: 0x01 proposal, 0x02 prevote, 0x03 precommit
//   24      2     L = length of the thread id in UTF-8 bytes (uint16)
//   26      L     thread id, UTF-8                                  → a vote is valid in one thread only
//   26+L    8     height (uint64)
//   34+L    4     round (uint32)
//   38+L    4     validRound (int32; -1 for none and for every vote)
//   42+L    1     H = length of the block hash in bytes (0 for a nil vote)
//   43+L    H     the block hash's bytes (the hex decoded)
//
// A signature over these bytes binds thread, height, round, type and block (and for a proposal its proof-of-lock
// round, so nobody can relay an honest proposal with a different validRound).
import { MAX_ROUND, type MessageType } from './messages.ts';

const DOMAIN = new TextEncoder().encode('moltmesh/tendermint/v1\n');
const TYPE_CODE: Record<MessageType, number> = { proposal: 1, prevote: 2, precommit: 3 };
const utf8 = new TextEncoder();
/** Lowercase hex digit → value; -1 for anything else (upper case included: one spelling per hash). */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;

// Every message of a validator is for the same thread: encode its id once.
let lastThread = '';
let lastThreadBytes = new Uint8Array(0);
function threadBytes(thread: string): Uint8Array {
  if (thread !== lastThread) {
    lastThreadBytes = utf8.encode(thread);
    lastThread = thread;
  }
  return lastThreadBytes;
}

export interface SignedFields {
  type: MessageType;
  thread: string;
  height: number;
  round: number;
  /** Proposals only; votes sign -1. */
  validRound?: number;
  blockHash: string | null;
}

export function signBytes(f: SignedFields): Uint8Array {
  const thread = threadBytes(f.thread);
  if (thread.length > 0xffff) throw new RangeError('thread id longer than 65535 bytes');
  if (!Number.isSafeInteger(f.height) || f.height < 0) throw new RangeError(`bad height ${f.height}`);
  if (!Number.isSafeInteger(f.round) || f.round < 0 || f.round > MAX_ROUND) throw new RangeError(`bad round ${f.round}`);
  const validRound = f.type === 'proposal' ? (f.validRound ?? -1) : -1;
  const hashLen = f.blockHash === null ? 0 : f.blockHash.length / 2;
  if (!Number.isInteger(hashLen) || hashLen > 255) throw new RangeError('bad block hash');
  const type = TYPE_CODE[f.type];
  if (type === undefined) throw new RangeError(`bad type ${String(f.type)}`);
  const out = new Uint8Array(DOMAIN.length + 1 + 2 + thread.length + 8 + 4 + 4 + 1 + hashLen);
  out.set(DOMAIN, 0);
  let o = DOMAIN.length;
  out[o++] = type;
  out[o++] = thread.length >>> 8;
  out[o++] = thread.length & 0xff;
  out.set(thread, o);
  o += thread.length;
  o = put32(out, o, Math.floor(f.height / 2 ** 32));
  o = put32(out, o, f.height >>> 0);
  o = put32(out, o, f.round);
  o = put32(out, o, validRound >>> 0); // two's complement: -1 is ff ff ff ff
  out[o++] = hashLen;
  const hex = f.blockHash;
  for (let i = 0; i < hashLen; i++) {
    const hi = HEX_VALUE[hex!.charCodeAt(2 * i)] ?? -1;
    const lo = HEX_VALUE[hex!.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new RangeError('bad block hash');
    out[o++] = (hi << 4) | lo;
  }
  return out;
}

function put32(out: Uint8Array, o: number, v: number): number {
  out[o] = v >>> 24;
  out[o + 1] = (v >>> 16) & 0xff;
  out[o + 2] = (v >>> 8) & 0xff;
  out[o + 3] = v & 0xff;
  return o + 4;
}
