// Discovery and names on a 20-daemon mesh on loopback: every daemon runs in this process (startDaemon), each with
// its own data dir, libp2p host, LMDB store and unix socket, all bootstrapped to the first; every call below goes
// through the gRPC API (sdk/client.ts). A raw libp2p peer (kad-dht only, no validators of ours) joins the mesh to
// put forged and replayed records. One mesh for the whole file; the tests run in order and build on each other
// (the last one moves every daemon's clock past a name's 24 h lifetime).
//
// Agents: daemon i offers `group-<i % 3>` and `ring-<i % 4>`, so every capability has a known set of 5–7 agents and
// every pair of (group, ring) a different one.
// Time: all daemons share one JumpClock (Date.now() + an offset). jump(ms) moves it forward and fires every timer
// that falls due, as if that much time had passed (card republish, name renewal, expiry).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Libp2p } from 'libp2p';
import { MessageType, type KadDHT, type QueryEvent } from '@libp2p/kad-dht';
import type { PeerId } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { startDaemon, type RunningDaemon } from '../../actors/daemon.ts';
import { capabilityCid, cardKey, nameKey } from '../../actors/discovery/dht.ts';
import { encodeCard, signCard, verifyCard, verifyName, type CardContent, type SignedCard } from '../../actors/discovery/records.ts';
import { peerIdFromDid } from '../../actors/identity/did.ts';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { loadOrCreateIdentity } from '../../actors/identity/key-file.ts';
import { DHT_PROTOCOL } from '../../actors/transport/node.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import { connectClient, DaemonError, type MoltmeshClient } from '../../sdk/client.ts';
import type { AgentCard as PbCard } from '../../proto/gen/moltmesh/v1/cards.ts';
import { dhtNode } from '../support/dht-node.ts';

const N = 20;
const GROUPS = 3;
const RINGS = 4;
const CAP = 'a2a:v1:cap:';
const HOUR = 3600_000;
const MESH_DEADLINE_MS = 90_000;
const FIND_TIMEOUT_MS = 10_000;

/** Date.now() plus an offset that only grows; jump() fires the timers that fall due, in due order. */
class JumpClock implements Clock {
  #offset = 0;
  #timers = new Map<object, { due: number; fn: () => void; real: NodeJS.Timeout }>();

  now(): number {
    return Date.now() + this.#offset;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const handle = {};
    const wait = Math.min(Math.max(0, ms), 2 ** 31 - 1);
    const real = setTimeout(() => {
      this.#timers.delete(handle);
      fn();
    }, wait);
    real.unref();
    this.#timers.set(handle, { due: this.now() + wait, fn, real });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    const t = this.#timers.get(handle as object);
    if (!t) return;
    clearTimeout(t.real);
    this.#timers.delete(handle as object);
  }

  jump(ms: number): void {
    this.#offset += ms;
    const now = this.now();
    const due = [...this.#timers.entries()].filter(([, t]) => t.due <= now).sort((a, b) => a[1].due - b[1].due);
    for (const [handle, t] of due) {
      if (!this.#timers.has(handle)) continue; // cleared by an earlier one
      this.clearTimeout(handle);
      t.fn();
    }
  }
}

interface Agent {
  i: number;
  dir: string;
  daemon: RunningDaemon;
  client: MoltmeshClient;
  did: string;
}

const clock = new JumpClock();
const problems: string[] = [];
const log: Logger = (level, msg, fields) => {
  if (level === 'error') problems.push(`${msg} ${JSON.stringify(fields ?? {})}`);
};

const tcpAddr = (a: { daemon: RunningDaemon }) => a.daemon.addresses.find((x) => x.includes('/tcp/'))!;
const capsOf = (i: number) => [`group-${i % GROUPS}`, `ring-${i % RINGS}`];
const ALL_CAPS = [...Array.from({ length: GROUPS }, (_, g) => `group-${g}`), ...Array.from({ length: RINGS }, (_, r) => `ring-${r}`)];

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The card as signed, rebuilt from its protobuf form; verifyCard() of it throws unless it is genuine and live. */
function signedFromPb(c: PbCard): { content: CardContent; bytes: Uint8Array } {
  const content: CardContent = {
    did: c.did, name: c.name, description: c.description, capabilities: c.capabilities,
    skills: c.skills.map((s) => ({ id: s.id, name: s.name, description: s.description, inputSchema: JSON.parse(s.inputSchemaJson), outputSchema: JSON.parse(s.outputSchemaJson) })),
    addresses: c.addresses, protocolVersion: c.protocolVersion, issuedAt: c.issuedAtMs, expiresAt: c.expiresAtMs, seq: c.seq,
  };
  return { content, bytes: encodeCard({ ...content, signature: new Uint8Array(c.signature) }) };
}

function verifyPb(c: PbCard): SignedCard {
  return verifyCard(signedFromPb(c).bytes, { expectedDid: c.did, now: clock.now() });
}

/** FindAgents: every card on the stream, which ends after `limit` cards, at the search's end, or at `timeoutMs`. */
async function find(a: Agent, capability: string, limit = 1000, timeoutMs = FIND_TIMEOUT_MS): Promise<PbCard[]> {
  const out: PbCard[] = [];
  for await (const r of a.client.a2a.findAgents({ capability, limit, timeoutMs }, { timeoutMs: timeoutMs + 5_000 })) out.push(r.card!);
  return out;
}

/** Runs `fn` over `items` with at most `width` at a time. */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await fn(items[k]!);
    }
  }));
  return out;
}

/** Polls `check` (each call is itself a bounded network wait) until it returns true; fails with its last note. */
async function eventually(what: string, ms: number, check: () => Promise<true | string>): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const r = await check().catch((e: unknown) => `threw ${(e as Error).message}`);
    if (r === true) return;
    last = r;
    await new Promise((ok) => setTimeout(ok, 100)); // only between network polls, never an assertion's wait
  }
  throw new Error(`${what}: not within ${ms} ms; last: ${last}`);
}

async function errorOf(p: Promise<unknown>): Promise<DaemonError> {
  try {
    await p;
  } catch (e) {
    return e as DaemonError;
  }
  throw new Error('expected the call to fail');
}

describe('discovery and names on a 20-daemon mesh', () => {
  const agents: Agent[] = [];
  const dirs: string[] = [];
  let boot: string[] = [];
  let raw: Libp2p<{ dht: KadDHT }> | undefined;
  let rawId: Identity;
  const expected = new Map<string, Set<string>>(); // capability → DIDs

  async function start(i: number, dir: string): Promise<Agent> {
    const daemon = await startDaemon(
      { dataDir: dir, port: 0, listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, mdns: false, bootstrap: boot, cwd: dir },
      { log, clock },
    );
    const client = connectClient({ dataDir: dir });
    return { i, dir, daemon, client, did: daemon.did };
  }

  async function stop(a: Agent): Promise<void> {
    a.client.close();
    await a.daemon.stop();
  }

  async function startAgain(a: Agent): Promise<void> {
    Object.assign(a, await start(a.i, a.dir));
  }

  /**
   * What each daemon holds under `key` in its DHT store, as `[daemon index, record bytes]` (daemons holding none are
   * left out): asked of each one directly with a GET_VALUE by a kad-dht client that changes nothing.
   */
  async function heldAt(key: Uint8Array): Promise<[number, Uint8Array][]> {
    const observer = await dhtNode({ protocol: DHT_PROTOCOL, listen: false, clientMode: true });
    // kad-dht's own single-peer request (its public get() walks the DHT and pushes corrections).
    const network = (observer.services.dht as unknown as { network: { sendRequest(to: PeerId, msg: object, o: object): AsyncIterable<QueryEvent> } }).network;
    const failed: string[] = [];
    try {
      const held = await Promise.all(agents.map(async (a): Promise<[number, Uint8Array] | undefined> => {
        try {
          await observer.dial(multiaddr(tcpAddr(a)), { signal: AbortSignal.timeout(20_000) });
          const path = { index: -1, queued: 0, running: 0, total: 0 };
          for await (const e of network.sendRequest(peerIdFromDid(a.did), { type: MessageType.GET_VALUE, key }, { path, signal: AbortSignal.timeout(20_000) })) {
            if (e.name === 'PEER_RESPONSE' && e.record) return [a.i, e.record.value];
            if (e.name === 'QUERY_ERROR') failed.push(`${a.i}: ${e.error.message}`);
          }
        } catch (err) {
          failed.push(`${a.i}: ${(err as Error).message}`);
        }
        return undefined;
      }));
      if (failed.length) console.log(`(heldAt: no answer from ${failed.join('; ')})`);
      return held.filter((h) => h !== undefined);
    } finally {
      await observer.stop();
    }
  }

  /** For failure messages: which name record each storing peer holds. */
  async function nameRecordsAt(name: string): Promise<string> {
    const byDid = new Map(agents.map((a) => [a.did, a.i]));
    try {
      return (await heldAt(nameKey(name))).map(([peer, bytes]) => {
        try {
          const r = verifyName(bytes, { now: clock.now() });
          return `  daemon ${peer}: ${r.released ? 'release' : 'claim'} of daemon ${byDid.get(r.did) ?? r.did}, seq ${r.seq}, claimedAt ${r.claimedAt}`;
        } catch (err) {
          return `  daemon ${peer}: invalid (${(err as Error).message})`;
        }
      }).join('\n');
    } catch (err) {
      return `  (could not ask: ${(err as Error).message})`;
    }
  }

  beforeAll(async () => {
    process.setMaxListeners(100); // each in-process daemon adds its own unhandledRejection/uncaughtException listener
    for (let i = 0; i < N; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'mm-disc-e2e-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'moltbook.toml'), `[agent]\ndescription = "agent ${i}"\ncapabilities = [${capsOf(i).map((c) => `"${c}"`).join(', ')}]\n`);
    }
    const t0 = performance.now();
    agents.push(await start(0, dirs[0]!));
    boot = [tcpAddr(agents[0]!)];
    agents.push(...(await Promise.all(dirs.slice(1).map((dir, k) => start(k + 1, dir)))));
    const started = performance.now() - t0;
    for (const a of agents) for (const c of capsOf(a.i)) {
      const set = expected.get(CAP + c) ?? new Set<string>();
      set.add(a.did);
      expected.set(CAP + c, set);
    }

    // The mesh is up when every capability, asked from some daemon (each from another one), finds its agents.
    let round = 0;
    const pendingCaps = new Set(ALL_CAPS);
    await eventually('every capability found', MESH_DEADLINE_MS, async () => {
      round++;
      await pool([...pendingCaps], 8, async (c) => {
        const asker = agents[(ALL_CAPS.indexOf(c) + round) % N]!;
        const dids = new Set((await find(asker, c, expected.get(CAP + c)!.size, 3_000)).map((x) => x.did));
        if ([...expected.get(CAP + c)!].every((d) => dids.has(d))) pendingCaps.delete(c);
      });
      return pendingCaps.size === 0 || `missing: ${[...pendingCaps].join(' ')}`;
    });
    console.log(`mesh: ${N} daemons started in ${started.toFixed(0)} ms, every capability found after ${(performance.now() - t0 - started).toFixed(0)} ms more`);
  }, 180_000);

  afterAll(async () => {
    await Promise.resolve(raw?.stop()).catch(() => undefined);
    await Promise.all(agents.map((a) => stop(a).catch(() => undefined)));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (problems.length) console.log(`daemon errors logged:\n${problems.slice(0, 20).join('\n')}`);
  }, 60_000);

  it('every capability, asked from every daemon, finds exactly its agents, every card verified', async () => {
    // limit = the number of agents expected, so each stream ends as soon as they are all there (the DHT query is
    // cancelled then); an agent that should not be found would take an expected one's place. The searches to the
    // query's own end (limit high) are in the raw-peer test below.
    const searches = agents.flatMap((a) => ALL_CAPS.map((c) => ({ a, c })));
    const t0 = performance.now();
    const took: number[] = [];
    const wrong: string[] = [];
    const retried: string[] = [];
    await pool(searches, 8, async ({ a, c }) => {
      const want = [...expected.get(CAP + c)!].sort();
      for (let attempt = 0; ; attempt++) {
        const ts = performance.now();
        const cards = await find(a, c, want.length, 15_000);
        const ms = performance.now() - ts;
        took.push(ms);
        for (const card of cards) {
          expect(verifyPb(card).did).toBe(card.did);
          expect(card.capabilities).toContain(CAP + c);
        }
        const got = cards.map((x) => x.did).sort();
        if (JSON.stringify(got) === JSON.stringify(want)) return;
        const note = `${c} from ${a.i}: got ${got.length} (${got.filter((d) => !want.includes(d)).length} unexpected), want ${want.length}, in ${ms.toFixed(0)} ms`;
        if (attempt > 1 || got.some((d) => !want.includes(d))) return void wrong.push(note);
        retried.push(note); // a stream cut short by its timeout on a loaded loop gets two more tries
      }
    });
    took.sort((x, y) => x - y);
    console.log(`${searches.length} searches in ${(performance.now() - t0).toFixed(0)} ms; each p50 ${took[took.length >> 1]!.toFixed(0)} ` +
      `p90 ${took[Math.floor(took.length * 0.9)]!.toFixed(0)} max ${took.at(-1)!.toFixed(0)} ms; retried ${retried.length}${retried.length ? `: ${retried.join('; ')}` : ''}`);
    expect(wrong).toEqual([]);
  }, 120_000);

  describe('a raw libp2p peer in the mesh', () => {
    beforeAll(async () => {
      rawId = await identityFromSeed(newSeed());
      // The mesh's DHT protocol, as a server, but none of our validators: it stores and serves anything.
      raw = await dhtNode({ protocol: DHT_PROTOCOL, privateKey: rawId.privateKey });
      await Promise.all(agents.map((a) => raw!.dial(multiaddr(tcpAddr(a)))));
      await eventually('the raw peer in its routing table', 10_000, async () =>
        ((raw!.services.dht as unknown as { routingTable: { size: number } }).routingTable.size >= N - 1) || 'not yet');
    }, 30_000);

    /** Put `value` under `key` from the raw peer; how many daemons answered the put with it (took it). */
    async function rawPut(key: Uint8Array, value: Uint8Array): Promise<number> {
      let took = 0;
      try {
        for await (const e of raw!.services.dht.put(key, value, { signal: AbortSignal.timeout(10_000) })) {
          if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE' && e.record) took++;
        }
      } catch {
        // a put refused everywhere may end in an error; what was stored is what the gets below see
      }
      return took;
    }

    it('forged cards (bad signature, swapped DID, expired) are never returned by GetAgentCard or FindAgents', async () => {
      const [y1, y2, y3] = [agents[4]!, agents[5]!, agents[6]!];
      const real = new Map<string, PbCard>();
      for (const y of [y1, y2, y3]) real.set(y.did, (await agents[0]!.client.a2a.getAgentCard({ did: y.did })).card!);
      const now = clock.now();
      const groupCaps = Array.from({ length: GROUPS }, (_, g) => `${CAP}group-${g}`);
      const forged = (did: string, description: string): CardContent => ({
        did, name: '', description, capabilities: groupCaps, skills: [], addresses: raw!.getMultiaddrs().map(String),
        protocolVersion: 'a2a:v1', issuedAt: now, expiresAt: now + HOUR, seq: 1_000_000,
      });
      // 1. Y1's DID, a newer seq, signed with the raw peer's key (a bad signature).
      const badSig = signCard(forged(y1.did, 'FORGED bad signature'), { did: y1.did, sign: rawId.sign });
      // 2. A valid card of the raw peer's DID, stored under Y2's key.
      const swapped = signCard(forged(rawId.did, 'FORGED swapped DID'), rawId);
      // 3. Signed with Y3's own key (as if an old card of Y3 were replayed), a newer seq, but expired an hour ago; and
      //    the same for the raw peer's own DID under its own key, which it provides for every group capability.
      //    signCard checks the content, not the clock, so it signs them.
      const expiredTimes = { issuedAt: now - 25 * HOUR, expiresAt: now - HOUR };
      const y3Key = await loadOrCreateIdentity(y3.dir);
      const expiredY3 = signCard({ ...forged(y3.did, 'FORGED expired'), ...expiredTimes }, y3Key);
      const expiredRaw = signCard({ ...forged(rawId.did, 'FORGED expired raw'), ...expiredTimes }, rawId);
      expect(() => verifyCard(expiredY3, { expectedDid: y3.did, now: expiredTimes.issuedAt + 1 })).not.toThrow(); // genuine…
      expect(() => verifyCard(expiredY3, { expectedDid: y3.did, now })).toThrow(/expired/); // …but expired

      const took = {
        badSig: await rawPut(cardKey(y1.did), badSig),
        swapped: await rawPut(cardKey(y2.did), swapped),
        expiredY3: await rawPut(cardKey(y3.did), expiredY3),
        expiredRaw: await rawPut(cardKey(rawId.did), expiredRaw),
      };
      // Every daemon's validator refuses all four: none stored them (only the raw peer holds and serves them).
      expect(took).toEqual({ badSig: 0, swapped: 0, expiredY3: 0, expiredRaw: 0 });
      for (const c of groupCaps) for await (const _ of raw!.services.dht.provide(capabilityCid(c), { signal: AbortSignal.timeout(10_000) })) { /* spread */ }

      // GetAgentCard from 8 daemons, 4 of them after they dropped their connection to the owner, so the card must
      // come from the DHT (where the raw peer answers with its forgeries).
      const askers = agents.filter((a) => ![y1, y2, y3].includes(a)).slice(0, 8);
      const viaDht = askers.slice(0, 4);
      for (const q of viaDht) for (const y of [y1, y2, y3]) await q.client.diag.disconnect({ target: y.did }).catch(() => undefined);
      const seen = await pool(askers.flatMap((q) => [y1, y2, y3].map((y) => ({ q, y }))), 12, async ({ q, y }) => {
        const card = (await q.client.a2a.getAgentCard({ did: y.did }, { timeoutMs: 20_000 })).card!;
        return { q: q.i, y: y.did, card };
      });
      for (const { y, card } of seen) {
        expect(card.did).toBe(y);
        expect(card.description).not.toMatch(/FORGED/);
        expect(card.seq).toBe(real.get(y)!.seq);
        expect(verifyPb(card).did).toBe(y);
      }
      // The raw peer's own DID has no valid card anywhere.
      expect((await errorOf(agents[0]!.client.a2a.getAgentCard({ did: rawId.did }, { timeoutMs: 20_000 }))).code).toBe('NOT_FOUND');

      // FindAgents: the raw peer is a provider of every group capability now; searches to their end.
      const searches = agents.slice(0, 6).flatMap((a) => groupCaps.map((c) => ({ a, c })));
      await pool(searches, 6, async ({ a, c }) => {
        const want = [...expected.get(c)!].sort();
        for (let attempt = 0; ; attempt++) {
          const cards = await find(a, c, 1000, 20_000);
          for (const card of cards) {
            expect(card.description).not.toMatch(/FORGED/);
            expect(card.did).not.toBe(rawId.did);
            expect(verifyPb(card).did).toBe(card.did);
          }
          const got = cards.map((x) => x.did).sort();
          if (JSON.stringify(got) === JSON.stringify(want)) return;
          expect(got.filter((d) => !want.includes(d))).toEqual([]);
          if (attempt > 0) expect(got).toEqual(want); // a stream cut short by its timeout on a loaded loop gets one more try
        }
      });
    }, 90_000);

    it('a replayed older card never replaces the newer one', async () => {
      const d = agents[8]!;
      const old = (await d.client.a2a.getAgentCard({ did: d.did })).card!;
      const oldBytes = signedFromPb(old).bytes;
      expect(verifyCard(oldBytes, { expectedDid: d.did, now: clock.now() }).seq).toBe(old.seq);
      const newer = (await d.client.a2a.publishCard({ description: 'agent 8, second edition' })).card!;
      expect(newer.seq).toBeGreaterThan(old.seq);
      const askers = [agents[1]!, agents[2]!, agents[3]!, agents[11]!, agents[12]!, agents[13]!];
      const dhtAskers = askers.slice(3);
      const readAll = async () => Promise.all(askers.map(async (q) => {
        if (dhtAskers.includes(q)) await q.client.diag.disconnect({ target: d.did }).catch(() => undefined);
        return (await q.client.a2a.getAgentCard({ did: d.did }, { timeoutMs: 20_000 })).card!;
      }));
      // The newer card has reached the mesh (also where it is read from the DHT)…
      await eventually('the newer card everywhere', 20_000, async () => {
        const cards = await readAll();
        return cards.every((c) => c.seq === newer.seq) || `seqs ${cards.map((c) => c.seq).join(',')}`;
      });
      // …then the raw peer puts the old, validly signed one again.
      const seqAt = async () => new Map((await heldAt(cardKey(d.did))).map(([peer, bytes]) => [peer, verifyCard(bytes, { expectedDid: d.did, now: clock.now() }).seq]));
      const before = await seqAt();
      const took = await rawPut(cardKey(d.did), oldBytes);
      for (let round = 0; round < 3; round++) {
        const cards = await readAll();
        expect(cards.map((c) => [c.seq, c.description])).toEqual(askers.map(() => [newer.seq, 'agent 8, second edition']));
      }
      // No storing peer that held the newer card took the old one in its place.
      const after = await seqAt();
      const holders = [...before].filter(([, seq]) => seq >= newer.seq).map(([peer]) => peer);
      console.log(`replay: ${took} daemons answered the put of the old card; ${holders.length} storing peers held the newer one before`);
      expect(holders.length).toBeGreaterThan(0);
      expect(holders.filter((peer) => after.has(peer) && after.get(peer)! < newer.seq)).toEqual([]);
    }, 90_000);
  });

  it('a takeover of a held name is refused with the holder and its expiry', async () => {
    const [a, b] = [agents[1]!, agents[2]!];
    const claim = (await a.client.a2a.claimName({ name: 'swift-falcon' })).record!;
    expect(claim.did).toBe(a.did);
    const err = await errorOf(b.client.a2a.claimName({ name: 'swift-falcon' }));
    expect(err.code).toBe('ALREADY_EXISTS');
    expect(err.message).toBe(`name "swift-falcon" already claimed by ${a.did} (expires ${iso(claim.expiresAtMs)})`);
    expect((await b.client.a2a.listNames({})).records.map((r) => r.name)).not.toContain('swift-falcon');
    expect((await b.client.a2a.resolveName({ name: 'swift-falcon' })).record!.did).toBe(a.did);
  }, 60_000);

  it('two daemons claiming one free name at once end with exactly one owner on every node', async () => {
    const races = [['twin-comet', 3, 10]].map(([name, x, y]) => ({
      name: name as string, pair: [agents[x as number]!, agents[y as number]!],
    }));
    const outcomes = await Promise.all(races.map(({ name, pair }) => Promise.allSettled(pair.map((x) => x.client.a2a.claimName({ name })))));
    for (const o of outcomes.flat()) if (o.status === 'rejected') expect((o.reason as DaemonError).code).toBe('ALREADY_EXISTS');
    for (const pairOutcome of outcomes) expect(pairOutcome.some((o) => o.status === 'fulfilled')).toBe(true);
    console.log(`concurrent claims: ${races.map(({ name }, k) => `${name} ${outcomes[k]!.map((o) => o.status).join('/')}`).join(', ')}`);

    const settled = await Promise.allSettled(races.map(async ({ name, pair }, k) => {
      let owner = -1;
      const resolvedBy = new Map<number, string>();
      // A crossing claim is settled by the claimants' re-checks (2 s, then 8 s after the claim): within ~10 s.
      await eventually(`one owner of ${name} everywhere`, 30_000, async () => {
        const lists = await Promise.all(pair.map(async (x) => (await x.client.a2a.listNames({})).records.some((r) => r.name === name)));
        const holders = pair.filter((_, j) => lists[j]);
        if (holders.length !== 1) return `${holders.length} of the claimants list it`;
        await Promise.all(agents.map(async (x) => {
          const ts = performance.now();
          const r = await x.client.a2a.resolveName({ name }, { timeoutMs: 20_000 })
            .then((v) => `daemon ${agents.findIndex((y) => y.did === v.record!.did)}`, (e: DaemonError) => `${e.code}(${((performance.now() - ts) / 1000).toFixed(1)} s)`);
          resolvedBy.set(x.i, r);
        }));
        const distinct = new Set(resolvedBy.values());
        const want = `daemon ${holders[0]!.i}`;
        if (distinct.size !== 1 || !distinct.has(want)) return `held by ${want}; resolved: ${[...resolvedBy].map(([i, r]) => `${i}→${r}`).join(' ')}`;
        owner = holders[0]!.i;
        return true;
      });
      // The owner's own claim succeeded.
      expect(outcomes[k]![pair.findIndex((x) => x.i === owner)]!.status).toBe('fulfilled');
    }));
    // On failure, say what the storing peers hold (asked once the other races are done, so the answers come in time).
    const failures: string[] = [];
    for (const [k, r] of settled.entries()) {
      if (r.status === 'fulfilled') continue;
      const { name, pair } = races[k]!;
      failures.push(`${(r.reason as Error).message}\nclaimants: daemons ${pair.map((x) => x.i).join(' and ')}; storing peers hold:\n${await nameRecordsAt(name)}`);
    }
    if (failures.length) throw new Error(failures.join('\n\n'));
  }, 90_000);

  it('a restarted daemon keeps its card (seq counting on) and its names', async () => {
    const k = agents[12]!;
    const claim = (await k.client.a2a.claimName({ name: 'steady-harbor' })).record!;
    // The card shows the name once held (a refresh, a new seq).
    let before!: PbCard;
    await eventually('the card of 12 shows its name', 10_000, async () => {
      before = (await k.client.a2a.getAgentCard({ did: k.did })).card!;
      return before.name === 'steady-harbor' || `name "${before.name}"`;
    });
    await stop(k);
    await startAgain(k);
    expect((await k.client.a2a.listNames({})).records).toMatchObject([{ name: 'steady-harbor', did: k.did, claimedAtMs: claim.claimedAtMs, seq: claim.seq }]);
    const own = (await k.client.a2a.getAgentCard({ did: k.did })).card!;
    expect(own.seq).toBeGreaterThan(before.seq);
    expect(own.name).toBe('steady-harbor');
    expect(own.capabilities).toEqual(capsOf(12).map((c) => CAP + c));
    await eventually('the restarted card and name seen from others', 20_000, async () => {
      for (const q of [agents[0]!, agents[7]!, agents[15]!]) {
        const card = (await q.client.a2a.getAgentCard({ did: k.did }, { timeoutMs: 20_000 })).card!;
        if (card.seq < own.seq || card.name !== 'steady-harbor') return `from ${q.i}: seq ${card.seq} name "${card.name}"`;
        const r = (await q.client.a2a.resolveName({ name: 'steady-harbor' }, { timeoutMs: 20_000 })).record!;
        if (r.did !== k.did) return `from ${q.i}: resolved to ${r.did}`;
      }
      return true;
    });
    const found = await find(agents[0]!, 'ring-0', expected.get(`${CAP}ring-0`)!.size);
    expect(found.find((c) => c.did === k.did)?.seq).toBeGreaterThanOrEqual(own.seq);
  }, 60_000);

  it('a name whose owner is gone expires and another DID claims it; live owners keep theirs by renewing', async () => {
    const [e, b, a] = [agents[7]!, agents[9]!, agents[1]!]; // a holds swift-falcon (above)
    const first = (await e.client.a2a.claimName({ name: 'fading-lantern' })).record!;
    const held = (await a.client.a2a.listNames({})).records.find((r) => r.name === 'swift-falcon')!;
    expect(held).toBeDefined();
    await stop(e);

    // 12.5 h: every name's renewal (due 12 h after its claim) and every card's republish (12 h after it was
    // published) fire at once; nothing else falls due before the second jump.
    clock.jump(12.5 * HOUR);
    await eventually('swift-falcon renewed', 30_000, async () => {
      const mine = (await a.client.a2a.listNames({})).records.find((r) => r.name === 'swift-falcon');
      if (!mine || mine.seq <= held.seq) return `held ${JSON.stringify(mine)}`;
      const r = (await b.client.a2a.resolveName({ name: 'swift-falcon' }, { timeoutMs: 20_000 })).record!;
      return (r.did === a.did && r.seq === mine.seq) || `resolved ${r.did} seq ${r.seq}`;
    });
    // fading-lantern's owner is down: nobody renews it, but it is live for another 11.5 h.
    expect((await errorOf(b.client.a2a.claimName({ name: 'fading-lantern' }))).message).toBe(
      `name "fading-lantern" already claimed by ${e.did} (expires ${iso(first.expiresAtMs)})`);

    // 10 minutes after fading-lantern expired; swift-falcon (renewed at 12.5 h) lives on.
    clock.jump(first.expiresAtMs + 10 * 60_000 - clock.now());
    const reclaim = (await b.client.a2a.claimName({ name: 'fading-lantern' })).record!;
    expect(reclaim.did).toBe(b.did);
    expect(reclaim.seq).toBe(1);
    for (const q of [agents[0]!, agents[2]!, agents[15]!]) {
      expect((await q.client.a2a.resolveName({ name: 'fading-lantern' }, { timeoutMs: 20_000 })).record!.did).toBe(b.did);
      expect((await q.client.a2a.resolveName({ name: 'swift-falcon' }, { timeoutMs: 20_000 })).record!.did).toBe(a.did);
    }

    // The old owner comes back: its claim has expired (the renewal it missed is found too late), it sees the new owner.
    await startAgain(e);
    await eventually('the old claim gone on the old owner', 10_000, async () => {
      const names = (await e.client.a2a.listNames({})).records.map((r) => r.name);
      return !names.includes('fading-lantern') || `lists ${names.join(',')}`;
    });
    expect((await e.client.a2a.resolveName({ name: 'fading-lantern' }, { timeoutMs: 20_000 })).record!.did).toBe(b.did);
    const again = await errorOf(e.client.a2a.claimName({ name: 'fading-lantern' }));
    expect(again.message).toBe(`name "fading-lantern" already claimed by ${b.did} (expires ${iso(reclaim.expiresAtMs)})`);
  }, 90_000);
});
