// One-way messages (Transport.tell, teller.ts): sealed and checked like requests, handled in order, never answered,
// and what is sent in one turn travels as one envelope.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import type { Envelope } from '../../actors/transport/envelope.ts';
import { Transport } from '../../actors/transport/transport.ts';

async function newTransport() {
  const t = await Transport.create({
    identity: await identityFromSeed(newSeed()), listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, bootstrapPeers: [], mdns: false,
    requestTimeoutMs: 5000,
  });
  await t.start();
  return t;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('tells between two transports', () => {
  let a: Transport;
  let b: Transport;
  const got: Envelope[] = [];
  beforeAll(async () => {
    [a, b] = await Promise.all([newTransport(), newTransport()]);
    b.handle('note', async (env) => {
      got.push(env);
      return { type: 'note.ok', payload: null };
    });
    b.handle('crash', async () => {
      throw new Error('secret internals');
    });
    await a.connect(b.addresses()[0]!);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('delivers what is told in one turn as one signed envelope, in order, and writes nothing back', async () => {
    const before = { a: a.stats(), b: b.stats() };
    for (let i = 0; i < 50; i++) expect(a.tell(b.did, 'note', { i })).toBe(true);
    await until(() => got.length === 50);
    expect(got.map((e) => (e.payload as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(got.every((e) => e.from === a.did && e.to === b.did)).toBe(true);
    expect(a.stats().sent - before.a.sent).toBe(1);
    expect(b.stats().received - before.b.received).toBe(1);
    // No reply envelope: B sent nothing, A received nothing.
    expect(b.stats().sent - before.b.sent).toBe(0);
    expect(a.stats().received - before.a.received).toBe(0);
  });

  it('reuses one stream; tells in later turns go out as they come', async () => {
    got.length = 0;
    for (let i = 0; i < 5; i++) {
      a.tell(b.did, 'note', i);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => got.length === 5);
    expect(got.map((e) => e.payload)).toEqual([0, 1, 2, 3, 4]);
    const streams = a.libp2p.getConnections(b.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === '/moltmesh/tell/1.0.0');
    expect(streams.length).toBe(1);
  });

  it('counts what the receiver cannot handle, and carries on', async () => {
    got.length = 0;
    const before = b.stats().rejected;
    a.tell(b.did, 'nope', null);
    a.tell(b.did, 'crash', null);
    a.tell(b.did, 'note', 'after');
    await until(() => got.length === 1);
    expect(got[0]!.payload).toBe('after');
    const rejected = b.stats().rejected;
    expect((rejected['unknown-type'] ?? 0) - (before['unknown-type'] ?? 0)).toBe(1);
    expect((rejected['handler-error'] ?? 0) - (before['handler-error'] ?? 0)).toBe(1);
  });

  it('refuses at once what it cannot send: our own DID, a bad DID, a message over the size limit', () => {
    expect(a.tell(a.did, 'note', null)).toBe(false);
    expect(a.tell('did:key:nope', 'note', null)).toBe(false);
    expect(a.tell(b.did, 'note', new Uint8Array(2 * 1024 * 1024))).toBe(false);
    expect(() => a.tell(b.did, 'bad type!', null)).toThrow(TypeError);
  });
});
