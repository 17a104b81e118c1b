// A raw libp2p peer (none of our transport code on its side) tries to slip messages into a real daemon's inbox.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { peerIdFromDid } from '../../actors/identity/did.ts';
import { openEnvelope, sealEnvelope } from '../../actors/transport/envelope.ts';
import { ENVELOPE_PROTOCOL } from '../../actors/transport/transport.ts';
import { DaemonProcess } from '../support/daemon-process.ts';

const message = (text: string) => ({ id: 'msg_01JX0000000000000000000001', text, data: new Uint8Array(), contentType: 'text/plain', sentAt: Date.now() });

describe('forged envelopes from a raw libp2p peer', () => {
  const daemon = new DaemonProcess();
  let raw: Libp2p;
  let me: Identity;

  beforeAll(async () => {
    await daemon.start();
    me = await identityFromSeed(newSeed());
    raw = await createLibp2p({ privateKey: me.privateKey, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] });
    await raw.dial(multiaddr(daemon.tcpAddr));
  });
  afterAll(async () => {
    await raw?.stop();
    await daemon.dispose();
  });

  /** One frame on a fresh stream; the daemon's answer as `ok:<type>`, `error:<reason>` or `reset`. */
  async function send(bytes: Uint8Array): Promise<string> {
    try {
      const stream = await raw.dialProtocol(peerIdFromDid(daemon.did), ENVELOPE_PROTOCOL);
      stream.send(lp.encode.single(bytes));
      await stream.close();
      for await (const frame of lp.decode(stream)) {
        const reply = openEnvelope(frame.subarray(), { ourDid: me.did, remotePeerId: peerIdFromDid(daemon.did) });
        return reply.type === 'error' ? `error:${(reply.payload as { error: string }).error}` : `ok:${reply.type}`;
      }
      return 'reset';
    } catch {
      return 'reset';
    }
  }

  it('rejects and counts them; none reaches the inbox; the daemon keeps serving', async () => {
    const impostor = await identityFromSeed(newSeed());
    // Signed by a key other than the connection's (claiming another sender).
    expect(await send(sealEnvelope(impostor, { type: 'message', to: daemon.did, payload: message('forged') }).bytes)).toBe('error:sender-mismatch');
    // Claiming our DID but signed with the impostor's key.
    expect(await send(sealEnvelope({ ...me, sign: impostor.sign }, { type: 'message', to: daemon.did, payload: message('bad sig') }).bytes)).toBe('error:bad-signature');
    // Stale, and garbage.
    expect(await send(sealEnvelope(me, { type: 'message', to: daemon.did, payload: message('old'), ts: Date.now() - 3600_000 }).bytes)).toBe('error:stale');
    expect(await send(new Uint8Array(64).fill(7))).toBe('reset');
    // Correctly signed but a malformed message payload: refused by the messaging layer, not stored.
    const refused = await send(sealEnvelope(me, { type: 'message', to: daemon.did, payload: { id: 'nope' } }).bytes);
    expect(refused).toBe('ok:message.ack');

    const inbox = await daemon.client.a2a.getInbox({});
    expect(inbox.messages).toEqual([]);
    const health = await daemon.client.diag.health({});
    expect(health.envelopes?.rejected).toMatchObject({ 'sender-mismatch': 1, 'bad-signature': 1, stale: 1, malformed: 1 });

    // A genuine message from the same raw peer still gets in.
    expect(await send(sealEnvelope(me, { type: 'message', to: daemon.did, payload: message('genuine') }).bytes)).toBe('ok:message.ack');
    const after = await daemon.client.a2a.getInbox({});
    expect(after.messages.map((m) => [m.from, m.text])).toEqual([[me.did, 'genuine']]);
  });
});
