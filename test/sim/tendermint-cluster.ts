// A deterministic simulator for the Tendermint core (machines/tendermint/): N validators, each a real core behind a
// tiny shell that does what a Ready says (persist, apply decided blocks, send, schedule timers, serve catch-up),
// over a simulated network, on a simulated clock. Everything random comes from one seeded PRNG, so a seed replays
// exactly: same events, same order, same outcome.
//
// The network follows Tendermint's partial synchrony: before GST it loses, duplicates, delays (so reorders) and
// partitions messages; after GST it delivers every message within `maxDelayAfterGst` (still duplicating and
// reordering). When connections come up (at GST, when a partition heals, when a validator restarts) the shells
// exchange heights, as a real shell does on connect. Honest validators crash and restart: only what the core asked
// to persist survives, and with `afterPersist` the crash falls between persisting a step and sending its messages.
// Timers are not persisted (a restarted core re-arms what it needs). One validator may be Byzantine, with a mode
// per period: silent, equivocating (two blocks, two votes, some sent to the same peer so it is caught), or sending
// garbage (bad signatures, another thread, impossible rounds, tampered blocks, forged certificates).
//
// Invariants checked after every step (an InvariantViolation says which): no two honest validators decide
// different blocks at a height; every decided block's certificate verifies, with 2f+1 distinct validators, and
// names the block; honest chains link; no honest validator ever signs two different messages for one (height,
// round, type), across restarts; evidence verifies and never names an honest validator; an honest validator that
// gets a double vote for its height and a round it has reached records it. `allCommitted()` then says whether every
// entry reached every honest validator (tendermint-schedule.ts bounds how long that may take).
import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import {
  Tendermint,
  proposer as proposerOf,
  sameContent,
  signBytes,
  verifyCommit,
  verifyEvidence,
  type Decided,
  type Evidence,
  type Message,
  type Proposal,
  type Ready,
  type TendermintConfig,
  type TendermintPersisted,
  type Timeout,
  type TimeoutParams,
  type Vote,
} from '../../machines/tendermint/index.ts';

// ── PRNG ─────────────────────────────────────────────────────────────────────────────────────────────────

/** mulberry32: small, fast, good enough to drive a simulation; the whole run is a function of the seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ── Crypto ───────────────────────────────────────────────────────────────────────────────────────────────

export interface Crypto {
  signer(id: string): (bytes: Uint8Array) => Uint8Array;
  verify(id: string, bytes: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * A keyed 64-bit hash standing in for Ed25519 (the core cannot tell): each validator has a secret the verifier
 * table knows. Nobody in the simulation uses another's secret, so "forging" means guessing 64 bits.
 */
export function fakeCrypto(ids: readonly string[], seed: number): Crypto {
  const rnd = mulberry32(seed ^ 0x5eed);
  const secrets = new Map(ids.map((id) => [id, Math.floor(rnd() * 2 ** 32)]));
  const mac = (secret: number, bytes: Uint8Array): Uint8Array => {
    let h1 = 0xdeadbeef ^ secret;
    let h2 = 0x41c6ce57 ^ secret;
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, h1 >>> 0);
    new DataView(out.buffer).setUint32(4, h2 >>> 0);
    return out;
  };
  return {
    signer: (id) => {
      const s = secrets.get(id)!;
      return (bytes) => mac(s, bytes);
    },
    verify: (id, bytes, sig) => {
      const s = secrets.get(id);
      if (s === undefined || sig.length !== 8) return false;
      const want = mac(s, bytes);
      for (let i = 0; i < 8; i++) if (want[i] !== sig[i]) return false;
      return true;
    },
  };
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Real Ed25519 (node:crypto), keys derived from fixed seeds so runs are reproducible. */
export function ed25519Crypto(ids: readonly string[], seed: number): Crypto {
  const keys = new Map<string, { priv: KeyObject; pub: KeyObject }>();
  ids.forEach((id, i) => {
    const s = Buffer.alloc(32, 0);
    s.writeUInt32BE(seed >>> 0, 0);
    s.writeUInt32BE(i + 1, 4);
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, s]), format: 'der', type: 'pkcs8' });
    keys.set(id, { priv, pub: createPublicKey(priv) });
  });
  return {
    signer: (id) => {
      const k = keys.get(id)!.priv;
      return (bytes) => new Uint8Array(edSign(null, bytes, k));
    },
    verify: (id, bytes, sig) => {
      const k = keys.get(id);
      if (!k) return false;
      try {
        return edVerify(null, bytes, k.pub, sig);
      } catch {
        return false;
      }
    },
  };
}

// ── Blocks ───────────────────────────────────────────────────────────────────────────────────────────────

/** The simulated block format: opaque to the core, which only hashes and validates it through the shell. */
export interface SimBlock {
  height: number;
  parent: string;
  proposer: string;
  entries: string[];
}

export const GENESIS = '00'.repeat(32);
const ENTRY = /^(?:e\d+|byz-[\w-]+)$/;

export function hashBlock(b: SimBlock): string {
  return createHash('sha256').update(JSON.stringify([b.height, b.parent, b.proposer, b.entries])).digest('hex');
}

export function validBlock(b: SimBlock, height: number, parent: string, validators: readonly string[]): boolean {
  if (typeof b !== 'object' || b === null) return false;
  if (b.height !== height || b.parent !== parent || !validators.includes(b.proposer)) return false;
  if (!Array.isArray(b.entries) || b.entries.length === 0 || b.entries.length > 16) return false;
  if (!b.entries.every((e) => typeof e === 'string' && ENTRY.test(e))) return false;
  return new Set(b.entries).size === b.entries.length;
}

// ── Tracing ──────────────────────────────────────────────────────────────────────────────────────────────

const short = (h: string | null | undefined): string => (h === null ? 'nil' : typeof h === 'string' ? h.slice(0, 6) : String(h));

function describeMessage(m: unknown): string {
  if (typeof m !== 'object' || m === null) return `garbage(${JSON.stringify(m)})`;
  const x = m as Partial<Proposal<SimBlock>>;
  const who = typeof x.validator === 'string' ? x.validator.slice(-1) : '?';
  return `${String(x.type)}(v${who} h${x.height} r${x.round}${x.type === 'proposal' ? ` vr${x.validRound}` : ''} ${short(x.blockHash)})`;
}

function describeEvent(e: Parameters<Tendermint<SimBlock>['step']>[0]): string {
  switch (e.type) {
    case 'message':
      return describeMessage(e.message);
    case 'timeout':
      return `timeout ${e.timeout.kind} h${e.timeout.height} ${'round' in e.timeout ? `r${e.timeout.round}` : `#${e.timeout.seq}`}`;
    case 'entries-pending':
      return 'entries-pending';
    case 'commit':
      return `commit h${e.certificate?.height} ${short(e.certificate?.blockHash)}`;
    case 'peer-height':
      return `peer ${e.peer.slice(-1)} at height ${e.height}`;
  }
}

function describeReady(core: Tendermint<SimBlock>, r: Ready<SimBlock>): string {
  const s = core.status;
  const parts = [`[h${s.height} r${s.round} ${s.step} lock${s.lockedRound}:${short(s.lockedHash)} valid${s.validRound}:${short(s.validHash)}]`];
  if (r.broadcast.length) parts.push(`send ${r.broadcast.map(describeMessage).join(' ')}`);
  if (r.timeouts.length) parts.push(`timers ${r.timeouts.map((t) => `${t.kind}+${t.delayMs}`).join(' ')}`);
  if (r.decided.length) parts.push(`DECIDED ${r.decided.map((d) => `h${d.height}:${short(d.blockHash)}`).join(' ')}`);
  if (r.evidence.length) parts.push(`evidence ${r.evidence.length}`);
  if (r.requestCommits.length) parts.push(`ask ${r.requestCommits.map((x) => `${x.from.slice(-1)}@${x.height}`).join(' ')}`);
  if (r.sendCommits.length) parts.push(`serve ${r.sendCommits.map((x) => `${x.to.slice(-1)}@${x.height}`).join(' ')}`);
  return parts.join(' ');
}

// ── Event queue ──────────────────────────────────────────────────────────────────────────────────────────

class Heap<T> {
  #items: { at: number; seq: number; item: T }[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(at: number, item: T): void {
    const a = this.#items;
    a.push({ at, seq: this.#seq++, item });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): { at: number; item: T } | undefined {
    const a = this.#items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.#less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.#less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  #less(x: { at: number; seq: number }, y: { at: number; seq: number }): boolean {
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
}

// ── The cluster ──────────────────────────────────────────────────────────────────────────────────────────

export type ByzMode = 'honest' | 'silent' | 'equivocate' | 'garbage';

export interface NetworkParams {
  /** Global stabilisation time (ms): from then on no loss, no partition, bounded delay. */
  gst: number;
  lossPct: number;
  dupPct: number;
  maxDelayBeforeGst: number;
  maxDelayAfterGst: number;
}

export interface ClusterOptions {
  n: number;
  seed: number;
  network: NetworkParams;
  /** One Byzantine validator and its behaviour from each time on (the first entry should be at 0). */
  byzantine?: { index: number; modes: { at: number; mode: ByzMode }[] };
  timeouts?: Partial<TimeoutParams>;
  crypto?: 'fake' | 'ed25519';
  /** Called with one line per step (event in, what came out): for replaying a failing seed by eye. */
  trace?: (line: string) => void;
}

export const SIM_TIMEOUTS: TimeoutParams = {
  proposeBaseMs: 100,
  proposeDeltaMs: 50,
  prevoteBaseMs: 50,
  prevoteDeltaMs: 25,
  precommitBaseMs: 50,
  precommitDeltaMs: 25,
  gossipMs: 150,
};

export const THREAD = 'thr_01SIM0000000000000000000000';

type CommitItem = { block: unknown; certificate: Decided<SimBlock>['certificate'] };
type Packet =
  | { kind: 'msgs'; msgs: unknown[] }
  | { kind: 'commits'; from: string; items: CommitItem[] }
  | { kind: 'sync'; from: string; height: number }
  | { kind: 'status'; from: string; height: number };

type SimEvent =
  | { kind: 'deliver'; from: number; to: number; packet: Packet }
  | { kind: 'timer'; node: number; incarnation: number; key: string; token: number; timeout: Timeout }
  | { kind: 'pending'; node: number; incarnation: number }
  | { kind: 'submit'; entries: string[] }
  | { kind: 'crash'; node: number; afterPersist: boolean }
  | { kind: 'restart'; node: number }
  | { kind: 'partition'; side: boolean[] }
  | { kind: 'heal' }
  /** Connections come up (a partition heals, a validator restarts, the network stabilises): heights are exchanged. */
  | { kind: 'connect'; node: number | null };

export class InvariantViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

interface SimNode {
  index: number;
  id: string;
  honest: boolean;
  core: Tendermint<SimBlock> | null;
  incarnation: number;
  persisted: TendermintPersisted<SimBlock> | undefined;
  chain: Decided<SimBlock>[];
  applied: Set<string>;
  mempool: Set<string>;
  timerTokens: Map<string, number>;
  evidenceKeys: Set<string>;
  crashAfterPersist: boolean;
  sign: (bytes: Uint8Array) => Uint8Array;
}

export interface ClusterStats {
  steps: number;
  packetsSent: number;
  /** Of those, proposals and votes (the rest: catch-up and the heights exchanged when connections come up). */
  consensusPackets: number;
  packetsDelivered: number;
  decisions: number;
  evidence: number;
  doubleVotesChecked: number;
  maxRound: number;
}

export class Cluster {
  readonly opts: ClusterOptions;
  readonly ids: string[];
  readonly nodes: SimNode[];
  readonly crypto: Crypto;
  readonly stats: ClusterStats = { steps: 0, packetsSent: 0, consensusPackets: 0, packetsDelivered: 0, decisions: 0, evidence: 0, doubleVotesChecked: 0, maxRound: 0 };
  now = 0;
  /** Every entry submitted so far to at least one honest validator (that was up). */
  readonly submitted: string[] = [];
  /** Time of the last decision anywhere, and of the last proposal or vote sent. */
  lastDecisionAt = -1;
  lastSendAt = -1;
  readonly #rand: () => number;
  readonly #queue = new Heap<SimEvent>();
  readonly #timeouts: TimeoutParams;
  #side: boolean[] | null = null;
  #timerToken = 0;
  #entrySeq = 0;
  readonly #committed = new Map<number, string>();
  /** `${validator}/${height}/${round}/${type}` → what an honest validator signed. */
  readonly #honestSigned = new Map<string, Message<SimBlock>>();
  /** The Byzantine validator's view: blocks it has seen proposed, per height. */
  readonly #byzBlocks = new Map<number, Map<string, SimBlock>>();
  readonly #byzAlt = new Map<string, Proposal<SimBlock>>();
  readonly #byzSeenProposals: Proposal<SimBlock>[] = [];

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.#rand = mulberry32(opts.seed);
    this.#timeouts = { ...SIM_TIMEOUTS, ...opts.timeouts };
    this.ids = Array.from({ length: opts.n }, (_, i) => `did:key:z6MkSimValidator${i}`);
    this.crypto = opts.crypto === 'ed25519' ? ed25519Crypto(this.ids, opts.seed) : fakeCrypto(this.ids, opts.seed);
    this.nodes = this.ids.map((id, index) => ({
      index, id, honest: opts.byzantine?.index !== index, core: null, incarnation: 0, persisted: undefined, chain: [],
      applied: new Set(), mempool: new Set(), timerTokens: new Map(), evidenceKeys: new Set(), crashAfterPersist: false,
      sign: this.crypto.signer(id),
    }));
    for (const node of this.nodes) this.#boot(node);
    this.#queue.push(opts.network.gst, { kind: 'connect', node: null });
  }

  get honest(): SimNode[] {
    return this.nodes.filter((n) => n.honest);
  }

  // ── Scheduling the scenario ────────────────────────────────────────────────────────────────────────────

  /** Submit `count` new entries at `at` to every validator that is up (the mempool layer is not simulated). */
  submit(at: number, count: number): void {
    const entries = Array.from({ length: count }, () => `e${this.#entrySeq++}`);
    this.#queue.push(at, { kind: 'submit', entries });
  }

  crash(at: number, node: number, downFor: number, afterPersist: boolean): void {
    this.#queue.push(at, { kind: 'crash', node, afterPersist });
    this.#queue.push(at + downFor, { kind: 'restart', node });
  }

  /** Cut the network in two (side[i]: which side validator i is on) from `at` until `until`. */
  partition(at: number, until: number, side: boolean[]): void {
    this.#queue.push(at, { kind: 'partition', side });
    this.#queue.push(until, { kind: 'heal' });
  }

  /**
   * Run until `until` (ms), or until `stop()` says so; the queue running dry (every timer stale, nothing in
   * flight) also ends it. Throws InvariantViolation.
   */
  run(until: number, stop?: () => boolean): void {
    for (;;) {
      const next = this.#queue.pop();
      if (!next) return;
      if (next.at > until) {
        this.#queue.push(next.at, next.item);
        this.now = until;
        return;
      }
      this.now = next.at;
      this.#handle(next.item);
      if (stop?.()) return;
    }
  }

  /** Has every honest validator applied every submitted entry? */
  allCommitted(): boolean {
    return this.honest.every((n) => this.submitted.every((e) => n.applied.has(e)));
  }

  /** Pending events (stale timers included). */
  get queued(): number {
    return this.#queue.size;
  }

  // ── Events ─────────────────────────────────────────────────────────────────────────────────────────────

  #handle(e: SimEvent): void {
    switch (e.kind) {
      case 'deliver':
        this.#deliver(e.from, e.to, e.packet);
        return;
      case 'timer': {
        const node = this.nodes[e.node]!;
        // A timer from before a crash is gone; a newer timer of the same kind replaced this one.
        if (!node.core || node.incarnation !== e.incarnation || node.timerTokens.get(e.key) !== e.token) return;
        node.timerTokens.delete(e.key);
        this.#step(node, { type: 'timeout', timeout: e.timeout });
        return;
      }
      case 'pending': {
        const node = this.nodes[e.node]!;
        if (node.core && node.incarnation === e.incarnation && node.mempool.size > 0) this.#step(node, { type: 'entries-pending' });
        return;
      }
      case 'submit':
        // Only an entry some honest validator holds must commit: one given to a Byzantine validator alone may vanish.
        if (this.nodes.some((n) => n.honest && n.core)) this.submitted.push(...e.entries);
        for (const node of this.nodes) {
          if (!node.core) continue;
          for (const x of e.entries) node.mempool.add(x);
          this.#step(node, { type: 'entries-pending' });
        }
        return;
      case 'crash': {
        const node = this.nodes[e.node]!;
        if (!node.core) return;
        if (e.afterPersist) node.crashAfterPersist = true;
        else this.#down(node);
        return;
      }
      case 'restart': {
        const node = this.nodes[e.node]!;
        if (node.core) {
          node.crashAfterPersist = false;
          return;
        }
        this.#boot(node);
        return;
      }
      case 'partition':
        this.#side = e.side;
        return;
      case 'heal':
        this.#side = null;
        this.#connect(null);
        return;
      case 'connect':
        this.#connect(e.node);
        return;
    }
  }

  /** What a shell does when a connection to a peer comes up: tell it our height (`node` null: every pair). */
  #connect(only: number | null): void {
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b || !a.core || !b.core || (only !== null && a.index !== only && b.index !== only)) continue;
        if (!a.honest && this.#byzMode() === 'silent') continue;
        const height = !a.honest && this.#byzMode() === 'garbage' ? a.core.status.height + Math.floor(this.#rand() * 3) : a.core.status.height;
        this.#send(a.index, b.index, { kind: 'status', from: a.id, height });
      }
    }
  }

  #boot(node: SimNode): void {
    node.incarnation += 1;
    node.timerTokens.clear();
    node.crashAfterPersist = false;
    const validators = this.ids;
    const config: TendermintConfig<SimBlock> = {
      thread: THREAD,
      validators,
      self: node.id,
      timeouts: this.#timeouts,
      sign: node.sign,
      verify: this.crypto.verify,
      hashBlock,
      validBlock: (b, h, parent) => validBlock(b, h, parent, validators),
      getBlock: (height, parent) => {
        if (node.mempool.size === 0) return null;
        const entries = [...node.mempool].filter((x) => !node.applied.has(x)).sort().slice(0, 8);
        return entries.length === 0 ? null : { height, parent, proposer: node.id, entries };
      },
      genesisHash: GENESIS,
    };
    node.core = new Tendermint(config, node.persisted);
    this.#handleReady(node, node.core.start());
    if (node.core && node.mempool.size > 0) this.#step(node, { type: 'entries-pending' });
    if (node.incarnation > 1) this.#connect(node.index);
  }

  #down(node: SimNode): void {
    node.core = null;
    node.incarnation += 1;
    node.timerTokens.clear();
    node.crashAfterPersist = false;
  }

  #step(node: SimNode, event: Parameters<Tendermint<SimBlock>['step']>[0]): void {
    this.stats.steps++;
    const ready = node.core!.step(event);
    if (this.opts.trace) this.opts.trace(`${this.now} ${node.index} ${describeEvent(event)} → ${describeReady(node.core!, ready)}`);
    this.#handleReady(node, ready);
  }

  // ── The shell: do what the Ready says ──────────────────────────────────────────────────────────────────

  #handleReady(node: SimNode, ready: Ready<SimBlock>): void {
    // 1. Persist, apply decided blocks, keep evidence: one atomic write.
    if (ready.persist) {
      node.persisted = ready.persist;
      if (node.honest) for (const m of ready.persist.signed) this.#checkSigned(node, m);
      this.stats.maxRound = Math.max(this.stats.maxRound, ready.persist.round);
    }
    for (const d of ready.decided) this.#apply(node, d);
    for (const e of ready.evidence) this.#evidence(node, e);
    if (node.crashAfterPersist) {
      this.#down(node); // persisted, but nothing sent and no timer set
      return;
    }
    // 2. Send.
    if (node.honest) {
      for (const m of ready.broadcast) {
        this.#checkSigned(node, m);
        for (const to of this.nodes) if (to !== node) this.#send(node.index, to.index, { kind: 'msgs', msgs: [m] });
      }
    } else {
      this.#byzantineSend(node, ready.broadcast);
    }
    // 3. Timers: one per kind, the newest wins.
    for (const t of ready.timeouts) {
      const token = ++this.#timerToken;
      node.timerTokens.set(t.kind, token);
      this.#queue.push(this.now + t.delayMs, { kind: 'timer', node: node.index, incarnation: node.incarnation, key: t.kind, token, timeout: t });
    }
    // 4. Catch-up.
    for (const r of ready.requestCommits) this.#send(node.index, this.ids.indexOf(r.from), { kind: 'sync', from: node.id, height: r.height });
    for (const s of ready.sendCommits) this.#serveCommits(node, this.ids.indexOf(s.to), s.height);
    // The shell has applied the decided blocks: if entries remain, say so again.
    if (ready.decided.length > 0 && node.mempool.size > 0) this.#queue.push(this.now, { kind: 'pending', node: node.index, incarnation: node.incarnation });
  }

  #apply(node: SimNode, d: Decided<SimBlock>): void {
    const expected = node.chain.length + 1;
    const fail = (what: string) => {
      throw new InvariantViolation(`${node.id} decided height ${d.height} at t=${this.now}: ${what}`);
    };
    if (d.height !== expected) fail(`expected height ${expected}`);
    if (node.honest) {
      const prev = this.#committed.get(d.height);
      if (prev !== undefined && prev !== d.blockHash) fail(`AGREEMENT: ${d.blockHash} but another honest validator decided ${prev}`);
      this.#committed.set(d.height, d.blockHash);
      const check = verifyCommit(d.certificate, this.ids, this.crypto.verify);
      if (!check.ok) fail(`certificate does not verify: ${check.reason}`);
      if (d.certificate.blockHash !== d.blockHash || d.certificate.height !== d.height || d.certificate.thread !== THREAD) fail('certificate is for something else');
      if (hashBlock(d.block) !== d.blockHash) fail('block does not hash to its hash');
      const parent = node.chain.at(-1)?.blockHash ?? GENESIS;
      if (d.block.parent !== parent || d.block.height !== d.height) fail('block does not link to the chain');
      if (new Set(d.certificate.precommits.map((p) => p.validator)).size < Math.floor((2 * this.opts.n) / 3) + 1) fail('certificate without a quorum of distinct validators');
      this.stats.decisions++;
      this.lastDecisionAt = this.now;
    }
    node.chain.push(d);
    for (const x of d.block.entries) {
      node.applied.add(x);
      node.mempool.delete(x);
    }
  }

  #evidence(node: SimNode, e: Evidence): void {
    if (!node.honest) return;
    const check = verifyEvidence(e, this.ids, this.crypto.verify);
    if (!check.ok) throw new InvariantViolation(`${node.id} produced evidence that does not verify: ${check.reason}`);
    if (this.nodes[this.ids.indexOf(e.validator)]!.honest) throw new InvariantViolation(`evidence against honest ${e.validator}`);
    node.evidenceKeys.add(`${e.validator}/${e.first.type}/${e.height}/${e.round}`);
    this.stats.evidence++;
  }

  /** No honest validator signs two different messages for one (height, round, type), even across a restart. */
  #checkSigned(node: SimNode, m: Message<SimBlock>): void {
    if (m.validator !== node.id) return;
    const key = `${m.validator}/${m.height}/${m.round}/${m.type}`;
    const prior = this.#honestSigned.get(key);
    if (!prior) this.#honestSigned.set(key, m);
    else if (!sameContent(prior, m)) throw new InvariantViolation(`honest ${node.id} signed two different ${m.type}s at ${m.height}/${m.round}`);
  }

  #serveCommits(node: SimNode, to: number, height: number): void {
    if (to < 0 || height < 1) return;
    const items = node.chain.slice(height - 1, height - 1 + 8).map((d) => ({ block: d.block, certificate: d.certificate }));
    if (items.length > 0) this.#send(node.index, to, { kind: 'commits', from: node.id, items });
  }

  // ── The network ────────────────────────────────────────────────────────────────────────────────────────

  #send(from: number, to: number, packet: Packet): void {
    if (to < 0 || to === from) return;
    this.stats.packetsSent++;
    if (packet.kind === 'msgs') {
      this.stats.consensusPackets++;
      this.lastSendAt = this.now;
    }
    const net = this.opts.network;
    const beforeGst = this.now < net.gst;
    if (beforeGst) {
      if (this.#side && this.#side[from] !== this.#side[to]) return;
      if (this.#rand() * 100 < net.lossPct) return;
    }
    const copies = this.#rand() * 100 < net.dupPct ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const max = beforeGst ? net.maxDelayBeforeGst : net.maxDelayAfterGst;
      const delay = 1 + Math.floor(this.#rand() * max);
      // A message sent before GST still arrives by GST + the bound (Tendermint's model).
      const at = Math.min(this.now + delay, Math.max(net.gst, this.now) + net.maxDelayAfterGst);
      this.#queue.push(at, { kind: 'deliver', from, to, packet });
    }
  }

  #deliver(from: number, to: number, packet: Packet): void {
    const node = this.nodes[to]!;
    if (!node.core) return;
    this.stats.packetsDelivered++;
    if (!node.honest) this.#byzantineSaw(packet);
    switch (packet.kind) {
      case 'msgs': {
        const before = node.core.status;
        for (const m of packet.msgs) {
          if (!node.core) return;
          this.#step(node, { type: 'message', message: m });
        }
        if (packet.msgs.length === 2 && node.honest && node.core) this.#checkDoubleVoteCaught(node, packet.msgs, before);
        return;
      }
      case 'commits':
        for (const item of packet.items) {
          if (!node.core) return;
          this.#step(node, { type: 'commit', block: item.block, certificate: item.certificate, from: packet.from });
        }
        return;
      case 'sync':
        if (node.honest || this.#byzMode() === 'equivocate') this.#serveCommits(node, from, packet.height);
        else if (this.#byzMode() === 'garbage') this.#byzantineForgedCommit(node, from, packet.height);
        return;
      case 'status':
        this.#step(node, { type: 'peer-height', peer: packet.from, height: packet.height });
        return;
    }
  }

  /** Two conflicting signed messages for our height and a round we have reached, in one packet: evidence. */
  #checkDoubleVoteCaught(node: SimNode, msgs: unknown[], before: { height: number; round: number }): void {
    const [a, b] = msgs as Message<SimBlock>[];
    if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return;
    if (a.type !== b.type || a.validator !== b.validator || a.height !== b.height || a.round !== b.round || a.thread !== THREAD) return;
    if (sameContent(a, b)) return;
    if (!this.crypto.verify(a.validator, signBytes(a), a.signature) || !this.crypto.verify(b.validator, signBytes(b), b.signature)) return;
    if (a.height !== before.height || a.round > before.round || node.core!.status.height !== before.height) return;
    if (a.type === 'proposal' && a.validator !== proposerOf(this.ids, a.height, a.round)) return;
    this.stats.doubleVotesChecked++;
    if (!node.evidenceKeys.has(`${a.validator}/${a.type}/${a.height}/${a.round}`)) {
      throw new InvariantViolation(`${node.id} got a double ${a.type} from ${a.validator} at ${a.height}/${a.round} and recorded no evidence`);
    }
  }

  // ── The Byzantine validator ────────────────────────────────────────────────────────────────────────────

  #byzMode(): ByzMode {
    let mode: ByzMode = 'honest';
    for (const m of this.opts.byzantine?.modes ?? []) if (m.at <= this.now) mode = m.mode;
    return mode;
  }

  #byzantineSaw(packet: Packet): void {
    if (packet.kind !== 'msgs') return;
    for (const m of packet.msgs as Message<SimBlock>[]) {
      if (m?.type !== 'proposal' || typeof m.block !== 'object' || m.block === null) continue;
      this.#byzKnow(m.height, m.blockHash, m.block);
      if (this.#byzSeenProposals.length >= 16) this.#byzSeenProposals.shift();
      this.#byzSeenProposals.push(m);
    }
  }

  #byzKnow(height: number, hash: string, block: SimBlock): void {
    let known = this.#byzBlocks.get(height);
    if (!known) {
      known = new Map();
      this.#byzBlocks.set(height, known);
      for (const h of this.#byzBlocks.keys()) if (h < height - 2) this.#byzBlocks.delete(h);
    }
    known.set(hash, block);
  }

  #byzSign<M extends Message<SimBlock>>(node: SimNode, m: Omit<M, 'signature'>): M {
    return { ...m, signature: node.sign(signBytes(m as unknown as Message<SimBlock>)) } as M;
  }

  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.#rand() * xs.length)]!;
  }

  #byzantineSend(node: SimNode, out: Message<SimBlock>[]): void {
    const mode = this.#byzMode();
    if (mode === 'silent') return;
    for (const m of out) {
      if (m.type === 'proposal') this.#byzKnow(m.height, m.blockHash, m.block);
      for (const to of this.nodes) {
        if (to === node) continue;
        const packets = mode === 'honest' ? [[m]] : mode === 'equivocate' ? this.#equivocate(node, m) : this.#garbage(node, m);
        for (const msgs of packets) this.#send(node.index, to.index, { kind: 'msgs', msgs });
      }
    }
  }

  /** Per recipient: this message, or a conflicting one, or both in one packet. */
  #equivocate(node: SimNode, m: Message<SimBlock>): unknown[][] {
    let other: Message<SimBlock>;
    if (m.type === 'proposal') {
      const key = `${m.height}/${m.round}`;
      let alt = this.#byzAlt.get(key);
      if (!alt) {
        const block: SimBlock = { ...m.block, entries: [...m.block.entries, `byz-${m.height}-${m.round}`] };
        const blockHash = hashBlock(block);
        alt = this.#byzSign<Proposal<SimBlock>>(node, { ...m, block, blockHash, validRound: -1 });
        this.#byzAlt.set(key, alt);
        this.#byzKnow(m.height, blockHash, block);
      }
      other = alt;
    } else {
      const hashes: (string | null)[] = [null, ...(this.#byzBlocks.get(m.height)?.keys() ?? [])];
      const choices = hashes.filter((h) => h !== m.blockHash);
      other = this.#byzSign<Vote>(node, { ...m, blockHash: choices.length > 0 ? this.#pick(choices) : null });
      // Sometimes vote for the other block alone (amnesia: ignoring its own lock).
    }
    const r = this.#rand();
    if (r < 0.3) return [[m]];
    if (r < 0.55) return [[other]];
    return [this.#rand() < 0.5 ? [m, other] : [other, m]];
  }

  /** Per recipient: the message, or something broken made from it. */
  #garbage(node: SimNode, m: Message<SimBlock>): unknown[][] {
    const honestIds = this.ids.filter((_, i) => this.nodes[i]!.honest);
    const r = Math.floor(this.#rand() * 14);
    switch (r) {
      case 0:
        return [[m]];
      case 1: // a signature that is not one
        return [[{ ...m, signature: m.signature.map(() => Math.floor(this.#rand() * 256)) }]];
      case 2: // another thread, validly signed
        return [[this.#byzSign(node, { ...m, thread: 'thr_01OTHER000000000000000000000' })]];
      case 3: // a later height, validly signed: makes honest validators ask it for blocks it does not have
        return [[this.#byzSign(node, { ...m, height: m.height + 1 + Math.floor(this.#rand() * 3) })]];
      case 4: // an earlier height
        return m.height > 1 ? [[this.#byzSign(node, { ...m, height: m.height - 1 })]] : [[m]];
      case 5: // an absurd round, validly signed (or unsignable)
        return [[this.#rand() < 0.5 ? this.#byzSign(node, { ...m, round: 0x7fff_fffe, ...(m.type === 'proposal' ? { validRound: -1 } : {}) }) : { ...m, round: 2 ** 40 }]];
      case 6: // pretending to be an honest validator (signed with its own key)
        return [[{ ...this.#byzSign(node, m), validator: this.#pick(honestIds) }]];
      case 7: // an upper-case hash: the same bytes signed, another string
        return [[m.blockHash ? { ...m, blockHash: m.blockHash.toUpperCase() } : m]];
      case 8: // not a message at all
        return [[this.#pick([null, 'prevote', 42, {}, [], { type: 'precommit' }, { ...m, type: 'vote' }, { ...m, height: -1 }, { ...m, signature: 'sig' }])]];
      case 9: { // a tampered block under a valid signature (its own, or an honest proposer's it relays)
        const p = m.type === 'proposal' ? m : this.#byzSeenProposals.at(-1);
        if (!p) return [[m]];
        return [[{ ...p, block: { ...p.block, entries: [...p.block.entries, 'byz-tampered'] } }]];
      }
      case 10: // a vote for a block that does not exist
        return m.type === 'proposal' ? [[m]] : [[this.#byzSign<Vote>(node, { ...m, blockHash: 'ab'.repeat(32) })]];
      case 11: // a proposal with a proof-of-lock round that does not exist, or a block that is not a block
        if (m.type !== 'proposal') return [[m]];
        if (this.#rand() < 0.5 && m.round > 0) return [[this.#byzSign<Proposal<SimBlock>>(node, { ...m, validRound: m.round - 1 })]];
        return [[{ ...m, block: 'not a block' }]];
      case 12: { // an invalid block, correctly hashed and signed
        if (m.type !== 'proposal') return [[m]];
        const block = { ...m.block, entries: [] };
        return [[this.#byzSign<Proposal<SimBlock>>(node, { ...m, block, blockHash: hashBlock(block) })]];
      }
      default: // a forged certificate for the message's height
        this.#byzantineForgedCommit(node, -1, m.height);
        return [[m]];
    }
  }

  /** A certificate made of the Byzantine validator's own precommit, repeated or relabelled: never enough. */
  #byzantineForgedCommit(node: SimNode, to: number, height: number): void {
    const block: SimBlock = { height, parent: GENESIS, proposer: node.id, entries: [`byz-forged-${height}`] };
    const blockHash = hashBlock(block);
    const pc = this.#byzSign<Vote>(node, { type: 'precommit', thread: THREAD, height, round: 0, blockHash, validator: node.id });
    const precommits = this.#rand() < 0.5 ? [pc, pc, pc] : this.ids.map((id) => ({ ...pc, validator: id }));
    const packet: Packet = { kind: 'commits', from: node.id, items: [{ block, certificate: { thread: THREAD, height, round: 0, blockHash, precommits } }] };
    if (to >= 0) this.#send(node.index, to, packet);
    else for (const n of this.nodes) if (n !== node) this.#send(node.index, n.index, packet);
  }
}
