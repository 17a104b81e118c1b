import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as lp from 'it-length-prefixed';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { ApiError } from '../../runtime/errors.ts';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { DEFAULT_MAX_ENVELOPE_BYTES, EnvelopeRejected, openEnvelope, sealEnvelope, type Envelope } from '../../actors/transport/envelope.ts';
import { ReplayGuard } from '../../actors/transport/replay-guard.ts';
import { ENVELOPE_PROTOCOL, PeerRejected, Transport } from '../../actors/transport/transport.ts';

const newIdentity = () => identityFromSeed(newSeed());

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof EnvelopeRejected) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('envelope', () => {
  let alice: Identity;
  let bob: Identity;
  beforeAll(async () => {
    alice = await newIdentity();
    bob = await newIdentity();
  });
  const openAsBob = (bytes: Uint8Array, extra: Partial<Parameters<typeof openEnvelope>[1]> = {}) =>
    openEnvelope(bytes, { ourDid: bob.did, remotePeerId: alice.peerId, ...extra });

  // CBOR round-trips JSON values and byte strings exactly, except what cbor-x alters on decode: -0 comes back
  // as 0, and a "__proto__" key as "__proto_" (its guard against prototype pollution).
  const altered = (v: unknown): boolean => Object.is(v, -0) ||
    (typeof v === 'object' && v !== null && (Object.hasOwn(v, '__proto__') || Object.values(v).some(altered)));
  const payload = fc.oneof(
    fc.jsonValue({ noUnicodeString: false }).filter((v) => !altered(v)),
    fc.uint8Array({ maxLength: 512 }),
    fc.record({ text: fc.string(), data: fc.uint8Array({ maxLength: 64 }), n: fc.integer() }),
  );
  const type = fc.stringMatching(/^[a-z][a-z0-9.]{0,20}$/);

  it('seal → open returns the same envelope', () => {
    fc.assert(fc.property(type, payload, (t, p) => {
      const { envelope, bytes } = sealEnvelope(alice, { type: t, to: bob.did, payload: p });
      expect(openAsBob(bytes, { replay: new ReplayGuard() })).toEqual(envelope);
    }), { numRuns: 200 });
  });

  it('rejects any single-bit flip of the wire bytes', () => {
    fc.assert(fc.property(type, payload, fc.nat(), fc.integer({ min: 0, max: 7 }), (t, p, at, bit) => {
      const { bytes } = sealEnvelope(alice, { type: t, to: bob.did, payload: p });
      const flipped = bytes.slice();
      flipped[at % bytes.length] ^= 1 << bit;
      expect(rejection(() => openAsBob(flipped))).not.toBe('accepted');
    }), { numRuns: 500 });
  });

  it('names each rejection reason', () => {
    const now = Date.now();
    const seal = (f: Partial<Parameters<typeof sealEnvelope>[1]> = {}, who = alice) =>
      sealEnvelope(who, { type: 't', to: bob.did, payload: null, ...f }).bytes;
    expect(rejection(() => openAsBob(seal(), { maxBytes: 10 }))).toBe('too-large');
    expect(rejection(() => openAsBob(new Uint8Array([1, 2, 3])))).toBe('malformed');
    expect(rejection(() => openAsBob(seal({}, bob)))).toBe('sender-mismatch');
    expect(rejection(() => openAsBob(seal({ to: alice.did })))).toBe('not-for-us');
    expect(rejection(() => openAsBob(seal({ ts: now - 5 * 60_000 - 1000 }), { now }))).toBe('stale');
    expect(rejection(() => openAsBob(seal({ ts: now + 5 * 60_000 + 1000 }), { now }))).toBe('from-future');
    expect(rejection(() => openAsBob(seal({ ts: now + 31_000 }), { now }))).toBe('from-future');
    expect(rejection(() => openAsBob(seal({ ts: now + 29_000 }), { now }))).toBe('accepted');
    expect(rejection(() => openAsBob(seal({ ts: now - 1000 }), { now, freshnessMs: 500 }))).toBe('stale');
    const forged = { ...alice, sign: bob.sign }; // claims to be alice, signs with bob's key
    expect(rejection(() => openAsBob(seal({}, forged)))).toBe('bad-signature');
    const replay = new ReplayGuard();
    const once = seal();
    expect(rejection(() => openAsBob(once, { replay }))).toBe('accepted');
    expect(rejection(() => openAsBob(once, { replay }))).toBe('duplicate');
  });

  it('refuses to seal what a receiver would call malformed', () => {
    expect(() => sealEnvelope(alice, { type: 'bad type!', to: bob.did, payload: 1 })).toThrow(/bad type/);
    expect(() => sealEnvelope(alice, { type: 't', to: 'did:key:nope', payload: 1 })).toThrow(/bad to/);
  });

  it('ReplayGuard stays bounded per sender without forgetting a replay it could still accept', () => {
    const guard = new ReplayGuard({ windowMs: 60_000, maxEntries: 100 });
    const now = 1_000_000;
    for (let i = 0; i < 250; i++) guard.add('alice', `id${i}`, now - 250 + i, now);
    guard.add('bob', 'id0', now, now);
    expect(guard.size).toBe(101);
    // Forgotten ids are at or below alice's floor, which openEnvelope then refuses as stale; bob's floor is untouched.
    expect(guard.floorFor('alice')).toBe(now - 250 + 149);
    expect(guard.floorFor('bob')).toBe(-Infinity);
    expect(guard.has('alice', 'id149')).toBe(false);
    expect(guard.has('alice', 'id150')).toBe(true);
    expect(guard.has('bob', 'id150')).toBe(false);
    // Expired ids are swept, and senders with nothing left to remember are forgotten.
    guard.add('carol', 'late', now + 61_000, now + 200_000);
    expect(guard.size).toBe(1);
    expect(guard.senderCount).toBe(1);
  });

  it('ReplayGuard clamps floors to our clock', () => {
    const guard = new ReplayGuard({ windowMs: 60_000, maxEntries: 2 });
    const now = 1_000_000;
    for (let i = 0; i < 5; i++) guard.add('mallory', `id${i}`, now + 20_000 + i, now);
    expect(guard.floorFor('mallory')).toBe(now);
  });

  it('ReplayGuard retires the least recently active sender without letting its replays through', () => {
    const guard = new ReplayGuard({ windowMs: 60_000, maxEntries: 10, maxSenders: 2, maxRetired: 2 });
    const now = 1_000_000;
    guard.add('alice', 'a1', now - 10, now);
    guard.add('bob', 'b1', now - 5, now);
    guard.add('carol', 'c1', now - 1, now); // alice is retired: her floor becomes her newest ts
    expect(guard.senderCount).toBe(2);
    expect(guard.has('alice', 'a1')).toBe(false);
    expect(guard.floorFor('alice')).toBe(now - 10); // a1 replayed now is refused as stale
    guard.add('alice', 'a2', now, now); // alice is back (bob retired), keeping her floor
    expect(guard.floorFor('alice')).toBe(now - 10);
    expect(guard.floorFor('bob')).toBe(now - 5);
    // Past maxRetired, a dropped floor still holds for every sender we know nothing about.
    guard.add('dave', 'd1', now + 1, now + 1);
    guard.add('erin', 'e1', now + 2, now + 2);
    guard.add('frank', 'f1', now + 3, now + 3);
    expect(guard.floorFor('bob')).toBeGreaterThanOrEqual(now - 5);
    expect(guard.floorFor('nobody')).toBeGreaterThan(-Infinity);
  });

  it('one sender flooding future-stamped envelopes does not make honest senders stale', async () => {
    const mallory = await newIdentity();
    const replay = new ReplayGuard({ maxEntries: 50 });
    const now = Date.now();
    const open = (sender: Identity, ts: number, at = now) => rejection(() => openEnvelope(
      sealEnvelope(sender, { type: 't', to: bob.did, payload: null, ts }).bytes,
      { ourDid: bob.did, remotePeerId: sender.peerId, now: at, replay },
    ));
    // The old attack: stamped now + 290 s is now simply too far ahead.
    expect(open(mallory, now + 290_000)).toBe('from-future');
    // Within the 30 s skew, many times the per-sender bound: her floor moves, clamped to our clock.
    for (let i = 0; i < 200; i++) expect(open(mallory, now + 29_000)).toBe('accepted');
    expect(replay.floorFor(mallory.did)).toBeLessThanOrEqual(now);
    // Everybody else is unaffected, including envelopes a little in the past.
    expect(open(alice, now)).toBe('accepted');
    expect(open(alice, now - 60_000)).toBe('accepted');
    const carol = await newIdentity();
    expect(open(carol, now - 1)).toBe('accepted');
    expect(open(alice, now + 31_000)).toBe('from-future');
  });
});

// ---- real nodes on 127.0.0.1 ----

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'];

async function newTransport(identity?: Identity, extra: Partial<Parameters<typeof Transport.create>[0]> = {}) {
  const t = await Transport.create({
    identity: identity ?? await newIdentity(), listen: LOOPBACK, ipfsBootstrap: false, bootstrapPeers: [], mdns: false,
    requestTimeoutMs: 5000, ...extra,
  });
  await t.start();
  return t;
}

describe('transport between two nodes', () => {
  let a: Transport;
  let b: Transport;
  const connectedSeen: string[] = [];
  beforeAll(async () => {
    const t0 = performance.now();
    [a, b] = await Promise.all([newTransport(), newTransport()]);
    // Without bootstrap peers or mDNS, start touches nothing but our own sockets.
    expect(performance.now() - t0).toBeLessThan(3000);
    a.onPeerConnected((did) => connectedSeen.push(did));
    b.handle('echo', async (env) => ({ type: 'echo.ok', payload: { got: env.payload, from: env.from } }));
    b.handle('boom', async () => {
      throw new ApiError('INVALID_ARGUMENT', 'text: too long');
    });
    b.handle('crash', async () => {
      throw new Error('secret internals');
    });
    b.handle('slow', async () => {
      await new Promise((r) => setTimeout(r, 600));
      return { type: 'slow.ok', payload: null };
    });
  });
  afterAll(async () => {
    const t0 = performance.now();
    await Promise.all([a?.stop(), b?.stop()]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('connects by multiaddr and learns the DID', async () => {
    expect(b.addresses().every((x) => x.endsWith(`/p2p/${b.peerId}`))).toBe(true);
    const tcpAddr = b.addresses().find((x) => x.includes('/tcp/'))!;
    expect(await a.connect(tcpAddr)).toEqual({ peerId: b.peerId.toString(), did: b.did });
    expect(a.isConnected(b.did)).toBe(true);
    await expect.poll(() => connectedSeen).toContain(b.did);
    expect(a.peers()).toEqual([expect.objectContaining({ did: b.did, peerId: b.peerId.toString() })]);
  });

  it('pings by DID, by peer id and by multiaddr (dialing it first)', async () => {
    expect(await a.ping(b.did)).toBeGreaterThanOrEqual(0);
    expect(await a.ping(b.peerId.toString())).toBeGreaterThanOrEqual(0);
    expect(a.peers()[0].latencyMs).not.toBeNull();
    const c = await newTransport();
    try {
      expect(c.isConnected(b.did)).toBe(false);
      expect(await c.ping(b.addresses().find((x) => x.includes('/tcp/'))!)).toBeGreaterThanOrEqual(0);
      expect(c.isConnected(b.did)).toBe(true);
      await expect(c.ping('/ip4/127.0.0.1/tcp/1')).rejects.toMatchObject({ field: 'multiaddr' });
    } finally {
      await c.stop();
    }
  });

  it('request → signed reply round trip', async () => {
    const reply = await a.request(b.did, 'echo', { text: 'hi', data: new Uint8Array([1, 2]) });
    expect(reply).toMatchObject({ type: 'echo.ok', from: b.did, to: a.did, payload: { from: a.did } });
    expect((reply.payload as any).got.text).toBe('hi');
    expect(Array.from((reply.payload as any).got.data)).toEqual([1, 2]);
  });

  it('reports refusals and handler errors as PeerRejected, leaking no internals', async () => {
    await expect(a.request(b.did, 'no.such.type', null)).rejects.toMatchObject({ name: 'PeerRejected', reason: 'unknown-type' });
    await expect(a.request(b.did, 'boom', null)).rejects.toThrow(/handler-error \(text: too long\)/);
    const err = await a.request(b.did, 'crash', null).catch((e) => e);
    expect(err).toBeInstanceOf(PeerRejected);
    expect(err.message).not.toMatch(/secret/);
    expect(b.stats().rejected).toMatchObject({ 'unknown-type': 1, 'handler-error': 2 });
  });

  it('validates the target DID and payload size before touching the network', async () => {
    await expect(a.request('did:key:zBad', 'echo', null)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'to' });
    await expect(a.request(a.did, 'echo', null)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'to' });
    await expect(a.request(b.did, 'echo', new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES))).rejects.toMatchObject({ field: 'payload' });
    await expect(a.connect('/ip4/127.0.0.1/tcp/1')).rejects.toMatchObject({ field: 'multiaddr' });
    await expect(a.connect('not a multiaddr')).rejects.toMatchObject({ field: 'multiaddr' });
  });

  it('fails in bounded time for a peer nobody can reach', async () => {
    const nobody = await newIdentity();
    const t0 = performance.now();
    const err = await a.request(nobody.did, 'echo', null, { timeoutMs: 1500 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain(err.code);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('fails at once, saying why, for a peer it has no way to find', async () => {
    const alone = await newTransport();
    try {
      const nobody = await newIdentity();
      await expect(alone.request(nobody.did, 'echo', null)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('no known address') });
      await expect(alone.ping(nobody.did)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('no known address') });
    } finally {
      await alone.stop();
    }
  });

  it('serves many concurrent requests (latency printed)', async () => {
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await a.request(b.did, 'echo', { i });
      lat.push(performance.now() - t0);
    }
    lat.sort((x, y) => x - y);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.request(b.did, 'echo', { i })));
    const perSec = 300 / ((performance.now() - t0) / 1000);
    console.log(`loopback request (both nodes in one process): p50 ${lat[100].toFixed(2)} ms, p99 ${lat[198].toFixed(2)} ms, 300 concurrent ${perSec.toFixed(0)}/s`);
  });

  it('reuses one stream per peer for many requests', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.request(b.did, 'echo', { i })));
    const streams = a.libp2p.getConnections(b.peerId).flatMap((c) => c.streams)
      .filter((st) => st.protocol === ENVELOPE_PROTOCOL && st.direction === 'outbound');
    expect(streams).toHaveLength(1);
  });

  it('a timed-out request fails alone; the session keeps serving the others', async () => {
    const before = a.stats().rejected['stray-reply'] ?? 0;
    const slow = a.request(b.did, 'slow', null, { timeoutMs: 200 });
    const fast = a.request(b.did, 'echo', 'fast');
    await expect(slow).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect((await fast).payload).toMatchObject({ got: 'fast' });
    // The late reply arrives on the session and is dropped, not mistaken for another reply.
    await expect.poll(() => a.stats().rejected['stray-reply'] ?? 0, { timeout: 2000 }).toBe(before + 1);
    expect((await a.request(b.did, 'echo', 'after')).payload).toMatchObject({ got: 'after' });
  });

  it('disconnects, and a new connection gets a fresh session', async () => {
    await a.disconnect(b.did);
    expect(a.isConnected(b.did)).toBe(false);
    // b's addresses are still in a's peer store: a request dials again by peer id.
    expect((await a.request(b.did, 'echo', 'again')).payload).toMatchObject({ got: 'again' });
    await a.disconnect(b.did);
  });
});

describe('a peer that goes away and comes back', () => {
  // TCP only: a dial to a stopped peer's old QUIC address blocks for the QUIC handshake timeout (5 s, the napi
  // dial ignores abort signals), and libp2p joins any new dial to that peer — even connect() to its new address —
  // onto the pending one. Over TCP the old address is refused at once.
  const TCP_ONLY = { listen: ['/ip4/127.0.0.1/tcp/0'] };

  it('fails pending and new requests cleanly, then serves the restarted peer on a fresh session', async () => {
    const a = await newTransport(undefined, TCP_ONLY);
    const bId = await newIdentity();
    let b = await newTransport(bId, TCP_ONLY);
    const serveEcho = (t: Transport) => t.handle('echo', async (env) => ({ type: 'echo.ok', payload: env.payload }));
    serveEcho(b);
    try {
      await a.connect(b.addresses()[0]);
      expect((await a.request(b.did, 'echo', 1)).payload).toBe(1);
      b.handle('hang', () => new Promise(() => {}));
      const pending = a.request(b.did, 'hang', null).catch((e) => e);
      await new Promise((r) => setTimeout(r, 50));
      await b.stop();
      const err = await pending;
      expect(err).toBeInstanceOf(ApiError);
      expect(err.code).toBe('UNAVAILABLE');
      await expect(a.request(b.did, 'echo', 2, { timeoutMs: 1000 })).rejects.toBeInstanceOf(ApiError);

      b = await newTransport(bId, TCP_ONLY); // same identity, new port
      serveEcho(b);
      await a.connect(b.addresses()[0]);
      expect((await a.request(b.did, 'echo', 3)).payload).toBe(3);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('a raw libp2p peer sending hostile envelopes', () => {
  let server: Transport;
  let rawId: Identity;
  let raw: Libp2p;
  let calls = 0;
  beforeAll(async () => {
    server = await newTransport();
    server.handle('echo', async (env) => {
      calls++;
      return { type: 'echo.ok', payload: env.payload };
    });
    // A plain libp2p node: its own Ed25519 key, none of our code on its side of the wire.
    rawId = await newIdentity();
    raw = await createLibp2p({
      privateKey: rawId.privateKey,
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
    await raw.dial(multiaddr(server.addresses().find((x) => x.includes('/tcp/'))!));
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), raw?.stop()]);
  });

  /** Sends raw bytes as one frame; returns the error reason the server answered with, or 'reset'. */
  async function send(frame: Uint8Array): Promise<string> {
    const stream = await raw.dialProtocol(server.peerId, ENVELOPE_PROTOCOL);
    try {
      stream.send(frame);
      await stream.close();
      for await (const msg of lp.decode(stream, { maxDataLength: 2 * 1024 * 1024 })) {
        const reply = openEnvelope(msg.subarray(), { ourDid: rawId.did, remotePeerId: server.peerId });
        const p = reply.payload as { error?: string };
        return reply.type === 'error' ? `error:${p.error}` : `ok:${reply.type}`;
      }
      return 'reset';
    } catch {
      return 'reset';
    }
  }
  const envelope = (f: Partial<Parameters<typeof sealEnvelope>[1]> = {}, who: Identity = rawId) =>
    lp.encode.single(sealEnvelope(who, { type: 'echo', to: server.did, payload: 'x', ...f }).bytes).subarray();

  it('rejects each forgery by reason, never calls the handler, and keeps serving', async () => {
    const other = await newIdentity();
    // (a) signed by a key that is not the connection's: as itself, and claiming to be the raw peer.
    expect(await send(envelope({}, other))).toBe('error:sender-mismatch');
    expect(await send(envelope({}, { ...rawId, sign: other.sign }))).toBe('error:bad-signature');
    // (b) stale
    expect(await send(envelope({ ts: Date.now() - 10 * 60_000 }))).toBe('error:stale');
    // (c) a replayed duplicate: the original is served once, the replay refused.
    const original = envelope({ payload: 'once' });
    expect(await send(original)).toBe('ok:echo.ok');
    expect(calls).toBe(1);
    expect(await send(original)).toBe('error:duplicate');
    // (d) garbage, framed and unframed
    expect(await send(lp.encode.single(new Uint8Array(100).fill(0xab)).subarray())).toBe('reset');
    expect(await send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe('reset');
    // (e) oversized: refused from the length prefix, before the body is read
    expect(await send(lp.encode.single(new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 1)).subarray())).toBe('reset');
    // not for us / unknown type
    expect(await send(envelope({ to: other.did }))).toBe('error:not-for-us');
    expect(await send(envelope({ type: 'nope' }))).toBe('error:unknown-type');

    expect(calls).toBe(1);
    const stats = server.stats();
    expect(stats.rejected).toMatchObject({
      'sender-mismatch': 1, 'bad-signature': 1, stale: 1, duplicate: 1, 'too-large': 1, 'not-for-us': 1, 'unknown-type': 1,
    });
    expect(stats.rejected.malformed).toBe(2);

    // Still serving: the raw peer, and a real transport.
    expect(await send(envelope({ payload: 'after' }))).toBe('ok:echo.ok');
    const client = await newTransport();
    try {
      await client.connect(server.addresses()[0]);
      expect((await client.request(server.did, 'echo', 'hello')).payload).toBe('hello');
    } finally {
      await client.stop();
    }
    expect(calls).toBe(3);
  });
});
