// Batching as it looks on the wire, and as callers see it. The server side of the wire tests is a raw libp2p node
// with hand-written replies, so the client is held to the format rather than to our own receiver.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lp from 'it-length-prefixed';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { ApiError } from '../../runtime/errors.ts';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { DEFAULT_MAX_ENVELOPE_BYTES, openEnvelope, sealEnvelope, type Envelope } from '../../actors/transport/envelope.ts';
import { ENVELOPE_PROTOCOL, PeerRejected, Transport } from '../../actors/transport/transport.ts';

const newIdentity = () => identityFromSeed(newSeed());
const LOOPBACK_TCP = ['/ip4/127.0.0.1/tcp/0'];

async function newTransport(extra: Partial<Parameters<typeof Transport.create>[0]> = {}) {
  const t = await Transport.create({
    identity: await newIdentity(), listen: LOOPBACK_TCP, ipfsBootstrap: false, bootstrapPeers: [], mdns: false,
    requestTimeoutMs: 5000, ...extra,
  });
  await t.start();
  return t;
}

type Answer = (env: Envelope) => { type: string; payload: unknown } | null;

describe('batching on the wire (raw server)', () => {
  let me: Identity;
  let raw: Libp2p;
  let client: Transport;
  const frames: Array<{ env: Envelope; size: number }> = [];
  // Default answer: a plain echo, or a batch reply echoing each inner request.
  let answer: Answer;
  const echo: Answer = (env) => env.type === 'batch'
    ? { type: 'batch', payload: (env.payload as Array<{ id: string; payload: unknown }>).map((r) => ({ re: r.id, type: 'echo.ok', payload: r.payload })) }
    : { type: 'echo.ok', payload: env.payload };

  beforeAll(async () => {
    me = await newIdentity();
    raw = await createLibp2p({
      privateKey: me.privateKey, addresses: { listen: LOOPBACK_TCP },
      transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()],
    });
    await raw.handle(ENVELOPE_PROTOCOL, async (stream: Stream, conn) => {
      for await (const frame of lp.decode(stream, { maxDataLength: 2 * 1024 * 1024 })) {
        const bytes = frame.subarray();
        const env = openEnvelope(bytes, { ourDid: me.did, remotePeerId: conn.remotePeer });
        frames.push({ env, size: bytes.length });
        const reply = answer(env);
        if (reply) stream.send(lp.encode.single(sealEnvelope(me, { ...reply, to: env.from, re: env.id }).bytes));
      }
    }, { maxInboundStreams: 64 });
    client = await newTransport({ maxBatch: 4 });
    await client.connect(raw.getMultiaddrs()[0]!.toString());
  });
  afterAll(async () => {
    await Promise.all([client?.stop(), raw?.stop()]);
  });
  const reset = (a: Answer = echo) => {
    frames.length = 0;
    answer = a;
  };

  it('sends a request that is alone as a plain envelope', async () => {
    reset();
    const reply = await client.request(me.did, 'echo', 'solo');
    expect(frames.map((f) => f.env.type)).toEqual(['echo']);
    expect(reply).toMatchObject({ type: 'echo.ok', payload: 'solo', re: frames[0]!.env.id });
  });

  it('seals requests issued together as batches of at most maxBatch, each caller getting its own reply', async () => {
    reset();
    const sentBefore = client.stats().sent;
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => client.request(me.did, 'echo', { i })));
    expect(frames.map((f) => f.env.type)).toEqual(['batch', 'batch', 'batch']);
    expect(frames.map((f) => (f.env.payload as unknown[]).length)).toEqual([4, 4, 2]);
    expect(client.stats().sent - sentBefore).toBe(3);
    const inner = frames.flatMap((f) => f.env.payload as Array<{ id: string; type: string; payload: unknown }>);
    expect(inner.every((r) => Object.keys(r).sort().join() === 'id,payload,type' && r.type === 'echo')).toBe(true);
    replies.forEach((reply, i) => {
      expect(reply).toMatchObject({ type: 'echo.ok', payload: { i }, from: me.did, to: client.did });
      expect(reply.re).toBe(inner[i]!.id);
    });
  });

  it('keeps each batch under the size limit', async () => {
    reset();
    const big = new Uint8Array(300 * 1024);
    const replies = await Promise.all(Array.from({ length: 4 }, () => client.request(me.did, 'echo', big)));
    expect(replies).toHaveLength(4);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...frames.map((f) => f.size))).toBeLessThanOrEqual(DEFAULT_MAX_ENVELOPE_BYTES);
  });

  it('maps inner errors, missing answers and a refused batch to the right callers', async () => {
    reset((env) => {
      const [r0, r1] = env.payload as Array<{ id: string; payload: unknown }>;
      return {
        type: 'batch',
        payload: [
          { re: r0!.id, type: 'echo.ok', payload: 'fine' },
          { re: r1!.id, type: 'error', payload: { error: 'unknown-type', message: 'echo' } },
          // nothing for the third
        ],
      };
    });
    const [ok, refused, missing] = await Promise.allSettled([1, 2, 3].map((i) => client.request(me.did, 'echo', i)));
    expect(ok).toMatchObject({ status: 'fulfilled', value: { payload: 'fine' } });
    expect(refused).toMatchObject({ status: 'rejected', reason: { name: 'PeerRejected', reason: 'unknown-type' } });
    expect((missing as PromiseRejectedResult).reason).toMatchObject({ code: 'INTERNAL' });

    reset(() => ({ type: 'error', payload: { error: 'rate-limited' } }));
    const all = await Promise.allSettled([1, 2].map((i) => client.request(me.did, 'echo', i)));
    for (const r of all) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PeerRejected);
  });

  it('times requests out one by one, also inside a batch', async () => {
    reset(() => null); // never answers
    const t0 = performance.now();
    const results = await Promise.allSettled([200, 400].map((ms) => client.request(me.did, 'echo', ms, { timeoutMs: ms })));
    expect(frames.map((f) => f.env.type)).toEqual(['batch']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(performance.now() - t0).toBeLessThan(1500);
    reset();
    expect((await client.request(me.did, 'echo', 'after')).payload).toBe('after');
  });
});

describe('batching between two transports', () => {
  let a: Transport;
  let b: Transport;
  let calls = 0;
  beforeAll(async () => {
    [a, b] = await Promise.all([newTransport(), newTransport()]);
    b.handle('echo', async (env) => {
      calls++;
      return { type: 'echo.ok', payload: { got: env.payload, from: env.from, id: env.id } };
    });
    b.handle('boom', async () => {
      throw new ApiError('INVALID_ARGUMENT', 'text: too long');
    });
    b.handle('crash', async () => {
      throw new Error('secret internals');
    });
    await a.connect(b.addresses()[0]!);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('verifies one envelope for many requests and answers each, with per-request counters', async () => {
    const before = { a: a.stats(), b: b.stats(), calls };
    const results = await Promise.allSettled([
      a.request(b.did, 'echo', 1), a.request(b.did, 'nope', null), a.request(b.did, 'boom', null),
      a.request(b.did, 'crash', null), a.request(b.did, 'echo', 2),
    ]);
    expect(b.stats().received - before.b.received).toBe(1);
    expect(a.stats().sent - before.a.sent).toBe(1);
    expect(calls - before.calls).toBe(2);
    const [e1, nope, boom, crash, e2] = results;
    expect(e1).toMatchObject({ status: 'fulfilled', value: { type: 'echo.ok', from: b.did, payload: { got: 1, from: a.did } } });
    expect(e2).toMatchObject({ status: 'fulfilled', value: { payload: { got: 2 } } });
    // The handler saw each inner request under its own id, the one its reply answers.
    const v1 = (e1 as PromiseFulfilledResult<Envelope>).value;
    expect((v1.payload as { id: string }).id).toBe(v1.re);
    expect((nope as PromiseRejectedResult).reason).toMatchObject({ name: 'PeerRejected', reason: 'unknown-type' });
    expect((boom as PromiseRejectedResult).reason.message).toMatch(/handler-error \(text: too long\)/);
    expect((crash as PromiseRejectedResult).reason.message).not.toMatch(/secret/);
    const rejected = b.stats().rejected;
    expect((rejected['unknown-type'] ?? 0) - (before.b.rejected['unknown-type'] ?? 0)).toBe(1);
    expect((rejected['handler-error'] ?? 0) - (before.b.rejected['handler-error'] ?? 0)).toBe(2);
  });

  it('serves a burst of concurrent requests in few envelopes', async () => {
    const sent = a.stats().sent;
    const n = 1000;
    const t0 = performance.now();
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => a.request(b.did, 'echo', i)));
    const perSec = n / ((performance.now() - t0) / 1000);
    expect(replies.map((r) => (r.payload as { got: number }).got)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(a.stats().sent - sent).toBeLessThanOrEqual(Math.ceil(n / 128) + 2);
    console.log(`${n} concurrent requests (both nodes in one process): ${perSec.toFixed(0)}/s in ${a.stats().sent - sent} envelopes`);
  });
});
