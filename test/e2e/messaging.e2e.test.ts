// Two (or three) real daemon processes on 127.0.0.1, driven through gRPC on their unix sockets.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, runCli } from '../support/daemon-process.ts';
import type { MoltmeshClient } from '../../sdk/client.ts';
import { OutboxState } from '../../proto/gen/moltmesh/v1/messaging.ts';

const daemons: DaemonProcess[] = [];
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.dispose()));
});

/** Short retries so a test that waits for a retry waits for milliseconds, not minutes. */
function daemon(): DaemonProcess {
  const d = new DaemonProcess();
  writeFileSync(join(d.dataDir, 'moltbook.toml'), '[messaging]\nretry_initial = "100ms"\nretry_max = "500ms"\n');
  daemons.push(d);
  return d;
}

async function connected(a: DaemonProcess, b: DaemonProcess) {
  await a.client.diag.connect({ multiaddr: b.tcpAddr });
}

/** The next message on a live inbox subscription. */
async function nextMessage(client: MoltmeshClient, timeoutMs = 10_000) {
  // include_unread closes the race between opening the stream and the message arriving.
  const stream = client.a2a.subscribeInbox({ includeUnread: true }, { timeoutMs });
  for await (const { message } of stream) {
    stream.cancel();
    return message!;
  }
  throw new Error('inbox subscription ended without a message');
}

async function waitDelivered(client: MoltmeshClient, messageId: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  // The outbox has no push API; poll the daemon's answer (not a sleep-then-assert).
  for (;;) {
    const { entries } = await client.a2a.getOutbox({ messageId });
    if (entries[0]?.state === OutboxState.OUTBOX_STATE_DELIVERED) return entries[0];
    if (Date.now() > deadline) throw new Error(`message ${messageId} not delivered: ${JSON.stringify(entries[0])}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('messaging between daemons', () => {
  it('delivers live to a subscribed inbox, and ack marks it read', async () => {
    const [a, b] = [daemon(), daemon()];
    await Promise.all([a.start(), b.start()]);
    await connected(a, b);
    const arriving = nextMessage(b.client);
    const sent = await a.client.a2a.sendMessage({ to: b.did, text: 'Hey, available for a task?' });
    expect(sent.queued).toBe(false);
    const m = await arriving;
    expect(m).toMatchObject({ id: sent.messageId, from: a.did, text: 'Hey, available for a task?' });
    const unread = await b.client.a2a.getInbox({ unreadOnly: true });
    expect(unread.messages.map((x) => x.id)).toEqual([sent.messageId]);
    await b.client.a2a.ackMessage({ messageId: sent.messageId });
    expect((await b.client.a2a.getInbox({ unreadOnly: true })).messages).toEqual([]);
  });

  it('a message to a stopped receiver is delivered exactly once after it returns', async () => {
    const [a, b] = [daemon(), daemon()];
    await Promise.all([a.start(), b.start()]);
    await connected(a, b);
    await b.stop();
    const sent = await a.client.a2a.sendMessage({ to: b.did, text: 'while you were away' });
    expect(sent.messageId).toMatch(/^msg_/);
    await b.start();
    await connected(b, a); // B comes back (on a new port) and reaches A; A retries at once
    await waitDelivered(a.client, sent.messageId);
    // Retries and restarts on both sides still leave exactly one copy.
    await b.stop();
    await b.start();
    const inbox = await b.client.a2a.getInbox({});
    expect(inbox.messages.filter((m) => m.id === sent.messageId)).toHaveLength(1);
  });

  it('survives kill -9 of the sender right after SendMessage returned, and finds the peer again by itself', async () => {
    const [a, b] = [daemon(), daemon()];
    await Promise.all([a.start(), b.start()]);
    await connected(a, b); // A learns B's address (kept in its persistent peer store)
    const bPort = b.tcpAddr.split('/')[4];
    await b.stop(); // receiver offline, so the message can only be in A's outbox
    const sent = await a.client.a2a.sendMessage({ to: b.did, text: 'accepted means durable' });
    expect(sent.queued).toBe(true);
    await a.kill9();
    // B returns at its old address; A restarts and, with no help, recovers the outbox and delivers.
    b.extraArgs = ['--listen', `/ip4/127.0.0.1/tcp/${bPort}`];
    await b.start();
    await a.start();
    await waitDelivered(a.client, sent.messageId);
    const inbox = await b.client.a2a.getInbox({});
    expect(inbox.messages.map((m) => m.text)).toEqual(['accepted means durable']);
  });

  it('a message the receiver refuses for good ends rejected, not retried for a day', async () => {
    const [a, b] = [daemon(), daemon()];
    writeFileSync(join(b.dataDir, 'moltbook.toml'), '[messaging]\nmax_message_bytes = 1024\n');
    await Promise.all([a.start(), b.start()]);
    await connected(a, b);
    const sent = await a.client.a2a.sendMessage({ to: b.did, text: 'x'.repeat(4096) });
    expect(sent.queued).toBe(true);
    const deadline = Date.now() + 10_000;
    let entry;
    do {
      [entry] = (await a.client.a2a.getOutbox({ messageId: sent.messageId })).entries;
      if (entry?.state === OutboxState.OUTBOX_STATE_REJECTED) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    expect(entry).toMatchObject({ state: OutboxState.OUTBOX_STATE_REJECTED, attempts: 1, lastError: expect.stringContaining('over our limit') });
    // The session to B still works for everything else.
    const ok = await a.client.a2a.sendMessage({ to: b.did, text: 'small' });
    expect(ok.queued).toBe(false);
  });

  it('bad input gets a clear error and the daemon keeps running', async () => {
    const a = daemon();
    await a.start();
    const err = (p: Promise<unknown>) => p.then(() => { throw new Error('expected an error'); }, (e) => e as { code: string; message: string });
    expect(await err(a.client.a2a.sendMessage({ to: 'did:key:nope', text: 'x' }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('to') });
    const other = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
    expect(await err(a.client.a2a.sendMessage({ to: other, text: '' }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('empty') });
    expect(await err(a.client.a2a.sendMessage({ to: other, text: 'x'.repeat(300 * 1024) }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('limit') });
    expect(await err(a.client.a2a.ackMessage({ messageId: 'msg_01JX0000000000000000000000' }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await err(a.client.a2a.ackMessage({ messageId: 'hello' }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const health = await a.client.diag.health({});
    expect(health.did).toBe(a.did);
    // A bad config is refused before anything starts, naming the key.
    const bad = new DaemonProcess();
    daemons.push(bad);
    writeFileSync(join(bad.dataDir, 'moltbook.toml'), '[network]\nport = "abc"\n');
    const r = await runCli(['start', '--data-dir', bad.dataDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('network.port');
  });
});
