// The gRPC edge over real sockets: validation, error mapping, auth on TCP, stream lifecycle, stubs.
// A small in-memory NodeApi stands in for the daemon so these tests exercise only actors/grpc and sdk/client.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrpcServer, type GrpcServerHandle } from '../../actors/grpc/server.ts';
import type { InboxFilter, InboxMessage, NodeApi, OutboxEntry, ReplayStep } from '../../actors/grpc/node-api.ts';
import { ApiError } from '../../runtime/errors.ts';
import { connectClient, DaemonError, type MoltmeshClient } from '../../sdk/client.ts';

const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const TOKEN = 'test-token-0123456789abcdef0123456789abcdef';
const silent = () => undefined;

interface FakeApi extends NodeApi {
  inbox: InboxMessage[];
  inboxCalls: InboxFilter[];
  outbox: OutboxEntry[];
  subscribers: Set<(m: InboxMessage) => void>;
  unsubscribed: number;
  replayClosed: boolean;
  replayProduced: number;
  shutdownCbs: Array<() => void>;
}

function fakeApi(): FakeApi {
  const subscribers = new Set<(m: InboxMessage) => void>();
  const notHere = () => { throw new ApiError('NOT_FOUND', 'not in this fake'); };
  const noTasks = {
    createTask: async () => notHere(), getTask: notHere, listTasks: () => ({ tasks: [] }), updateTask: async () => notHere(),
    cancelTask: async () => notHere(), waitTask: async () => notHere(), subscribeTasks: () => () => undefined,
    publishTaskEvent: async () => notHere(), taskEvents: notHere,
  };
  const noDiscovery = {
    publishCard: async () => notHere(), getAgentCard: async () => notHere(), findAgents: notHere, withdrawCard: async () => notHere(),
    claimName: async () => notHere(), resolveName: async () => notHere(), releaseName: async () => notHere(), listNames: () => [],
    createThread: async () => notHere(), getThread: notHere, listThreads: () => ({ threads: [] }), joinThread: async () => notHere(),
    appendEntry: async () => notHere(), appendEntryBatch: async () => notHere(), threadEntries: notHere, followThread: notHere, verifyThread: notHere,
  };
  const api: FakeApi = {
    inbox: [],
    inboxCalls: [],
    outbox: [],
    subscribers,
    unsubscribed: 0,
    shutdownCbs: [],
    identity: () => ({ did: DID, publicKeyHex: 'ab'.repeat(32), peerId: '12D3KooWtest', dataDir: '/tmp/x' }),
    sendMessage: async () => ({ messageId: 'msg_01JXAAAAAAAAAAAAAAAAAAAAAA', queued: true }),
    getInbox: async (f) => {
      // The inbox's own semantics: inbox order, afterId by position in the whole inbox, then filters and limit.
      api.inboxCalls.push(f);
      const start = f.afterId === undefined ? 0 : api.inbox.findIndex((m) => m.id === f.afterId) + 1;
      if (start === 0 && f.afterId !== undefined) throw new ApiError('INVALID_ARGUMENT', 'unknown cursor', 'cursor');
      const matching = api.inbox.slice(start).filter((m) => !f.unreadOnly || !m.read);
      return { messages: matching.slice(0, f.limit), unread: api.inbox.filter((m) => !m.read).length };
    },
    ackMessage: async (id) => { throw new ApiError('NOT_FOUND', `message ${id} not found`); },
    subscribeInbox: (onMessage) => {
      subscribers.add(onMessage);
      return () => { if (subscribers.delete(onMessage)) api.unsubscribed++; };
    },
    getOutbox: async () => api.outbox,
    ...noTasks,
    ...noDiscovery,
    health: () => { throw new Error('boom'); },
    info: () => ({ did: DID, publicKeyHex: '', peerId: '', addresses: [], peers: 0, uptimeMs: 5, dataDir: '', grpcAddr: '', version: '0.1.0' }),
    status: async () => ({
      inbox: { total: 1, unread: 1 },
      outbox: { queued: 0, sending: 0, retrying: 0, delivered: 2, expired: 0, rejected: 1, failed: 4 },
      tasks: { working: 2 },
      streams: 3,
    }),
    config: () => ({ daemon: { data_dir: '/tmp/x' } }),
    peers: () => [],
    ping: async () => ({ latencyMs: 1.5 }),
    connect: async (addr: string) => {
      // A daemon's own UNAVAILABLE answer, worded like libp2p's dial errors.
      if (addr.includes('/tcp/1/')) throw new ApiError('UNAVAILABLE', 'cannot connect to /ip4/127.0.0.1/tcp/1: connect ECONNREFUSED 127.0.0.1:1');
      return { peerId: '12D3KooWtest', did: DID };
    },
    disconnect: async () => undefined,
    listStreams: async () => ['outbox/msg_1'],
    replayClosed: false,
    replayProduced: 0,
    replay: async function* (stream): AsyncIterable<ReplayStep> {
      if (stream === 'endless') {
        // A source far larger than any buffer: the server must pull only as the client reads, and stop on cancel.
        try {
          for (let seq = 1; ; seq++, api.replayProduced++) yield { seq, type: 'tick', at: seq, event: { pad: 'x'.repeat(1024) }, state: 's', context: {}, effects: [], timers: [] };
        } finally {
          api.replayClosed = true;
        }
      }
      yield { seq: 1, type: 'queued', at: 10, event: { bytes: new Uint8Array([1, 2]), n: 5n }, state: 'queued', context: {}, effects: ['send'], timers: [] };
      yield { seq: 2, type: 'acked', at: 20, event: {}, state: 'delivered', context: {}, effects: [], timers: [] };
    },
    shutdown: () => undefined,
    onShutdown: (cb) => { api.shutdownCbs.push(cb); },
  };
  return api;
}

function message(id: string, data = new Uint8Array()): InboxMessage {
  return { id, from: DID, to: DID, text: data.length ? '' : 'hi', data, contentType: 'text/plain', sentAt: 1, receivedAt: 2, read: false };
}

/** The i-th of many valid message ids, in order. */
const msgId = (i: number) => `msg_01JX${String(i).padStart(22, '0')}`;

async function rejection(p: Promise<unknown>): Promise<DaemonError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonError);
    return e as DaemonError;
  }
  throw new Error('expected the call to fail');
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('gRPC server', () => {
  let dir: string;
  let api: FakeApi;
  let server: GrpcServerHandle;
  let client: MoltmeshClient;
  let tcpAddr: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mm-grpc-'));
    api = fakeApi();
    server = await startGrpcServer({ api, socketPath: join(dir, 'a2a.sock'), tcpAddr: '127.0.0.1:0', token: TOKEN, logger: silent });
    tcpAddr = server.addresses[1];
    client = connectClient({ dataDir: dir });
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on the unix socket with mode 0600, and on TCP', () => {
    expect(server.addresses[0]).toBe(`unix:${join(dir, 'a2a.sock')}`);
    expect(tcpAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(statSync(join(dir, 'a2a.sock')).mode & 0o777).toBe(0o600);
  });

  it('answers identity and diag calls', async () => {
    expect((await client.a2a.getIdentity()).did).toBe(DID);
    const status = await client.diag.status();
    expect(status.outbox).toMatchObject({ delivered: 2, rejected: 1, failed: 4 });
    expect(JSON.parse((await client.diag.getConfig()).configJson)).toEqual({ daemon: { data_dir: '/tmp/x' } });
    expect((await client.diag.version()).apiVersion).toBe('moltmesh.v1');
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field', async () => {
    let e = await rejection(client.a2a.sendMessage({ to: 'did:key:nope', text: 'x' }));
    expect([e.code, e.field, e.message]).toEqual(['INVALID_ARGUMENT', 'to', 'to: not a did:key DID']);
    e = await rejection(client.a2a.sendMessage({ to: DID }));
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'text']);
    e = await rejection(client.a2a.getInbox({ limit: 5000 }));
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'limit']);
    e = await rejection(client.a2a.ackMessage({ messageId: 'nope' }));
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'message_id']);
    e = await rejection(client.diag.ping({ target: 'not-a-peer' }));
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'target']);
    e = await rejection(client.diag.connect({ multiaddr: '/ip4/999.1.1.1/tcp/1' }));
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'multiaddr']);
    const ok = await client.a2a.sendMessage({ to: DID, text: 'hello' });
    expect(ok).toEqual({ messageId: 'msg_01JXAAAAAAAAAAAAAAAAAAAAAA', queued: true });
  });

  it('keeps a daemon\'s UNAVAILABLE answer apart from "daemon not running"', async () => {
    const e = await rejection(client.diag.connect({ multiaddr: '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWHVsW1fmKxeYD2FZDRjSiQnMWRyaQV81MuKd3KHSa8yA9' }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain('cannot connect to /ip4/127.0.0.1/tcp/1');
    const nowhere = connectClient({ grpcAddr: `unix:${join(tmpdir(), 'no-such-daemon.sock')}` });
    try {
      const down = await rejection(nowhere.diag.health({}, { timeoutMs: 2000 }));
      expect(down.message).toMatch(/^daemon not running at unix:/);
    } finally {
      nowhere.close();
    }
  });

  it('maps ApiError NOT_FOUND to NOT_FOUND', async () => {
    const e = await rejection(client.a2a.ackMessage({ messageId: 'msg_01JXAAAAAAAAAAAAAAAAAAAAAA' }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('not found');
  });

  it('turns a throwing handler into INTERNAL and keeps serving', async () => {
    const e = await rejection(client.diag.health());
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('boom');
    expect((await client.diag.info()).version).toBe('0.1.0');
  });

  it('answers UNIMPLEMENTED for areas not built yet, unary and streaming', async () => {
    let e = await rejection(client.a2a.statFile({ cid: 'x' } as never));
    expect(e.code).toBe('UNIMPLEMENTED');
    expect(e.message).toContain('files are not implemented yet');
    const stream = client.a2a.getFile({ cid: 'x' } as never);
    e = await rejection((async () => { for await (const _ of stream) { /* none */ } })());
    expect(e.code).toBe('UNIMPLEMENTED');
    e = await rejection(client.ext.publish({ topic: 't' }));
    expect(e.message).toContain('pub/sub');
  });

  it('requires the bearer token on TCP only', async () => {
    const noToken = connectClient({ dataDir: dir, grpcAddr: tcpAddr, token: '' });
    const wrong = connectClient({ dataDir: dir, grpcAddr: tcpAddr, token: 'wrong' });
    const right = connectClient({ dataDir: dir, grpcAddr: tcpAddr, token: TOKEN });
    try {
      expect((await rejection(noToken.diag.info())).code).toBe('UNAUTHENTICATED');
      expect((await rejection(wrong.diag.info())).code).toBe('UNAUTHENTICATED');
      const stream = wrong.a2a.subscribeInbox({});
      expect((await rejection((async () => { for await (const _ of stream) { /* none */ } })())).code).toBe('UNAUTHENTICATED');
      expect((await right.diag.info()).did).toBe(DID);
    } finally {
      noToken.close(); wrong.close(); right.close();
    }
  });

  it('streams replay steps with JSON fields', async () => {
    const steps = [];
    for await (const s of client.diag.replayStream({ stream: 'outbox/msg_1' })) steps.push(s);
    expect(steps.map((s) => s.seq)).toEqual([1, 2]);
    expect(JSON.parse(steps[0].eventJson)).toEqual({ bytes: { $bytes: 'AQI=' }, n: '5' });
    expect(steps[0].effects).toEqual(['send']);
  });

  it('pulls a stream source only as fast as the client reads, and closes it on cancel', async () => {
    let n = 0;
    for await (const s of client.diag.replayStream({ stream: 'endless' })) {
      if (++n === 3) break;
      expect(s.seq).toBe(n);
      await new Promise((r) => setTimeout(r, 100)); // a slow reader
    }
    await until(() => api.replayClosed);
    // Only what fits in the transport's flow-control windows was produced, not an unbounded backlog.
    expect(api.replayProduced).toBeLessThan(2000);
  });

  it('ends a server stream when the client cancels', async () => {
    const before = api.unsubscribed;
    const stream = client.a2a.subscribeInbox({ includeUnread: false });
    const first = stream.next();
    await until(() => api.subscribers.size === 1);
    for (const s of api.subscribers) s(message('msg_01JXBBBBBBBBBBBBBBBBBBBBBB'));
    expect((await first).value?.message?.id).toBe('msg_01JXBBBBBBBBBBBBBBBBBBBBBB');
    await stream.return(); // like `break` in a for-await loop
    await until(() => api.unsubscribed === before + 1);
    expect(api.subscribers.size).toBe(0);
  });

  it('pages GetInbox by bytes and by limit, with a cursor', async () => {
    // 10 × 700 KiB ≈ 7 MiB: one response would be over gRPC's 4 MiB limit. Pages stop at ~3 MiB: 4, 4, 2.
    api.inbox = Array.from({ length: 10 }, (_, i) => message(msgId(i), new Uint8Array(700 * 1024).fill(i)));
    try {
      const pages: string[][] = [];
      let cursor = '';
      do {
        const res = await client.a2a.getInbox({ cursor });
        pages.push(res.messages.map((m) => m.id));
        expect(res.unread).toBe(10);
        cursor = res.nextCursor;
        if (cursor) expect(cursor).toBe(res.messages.at(-1)?.id);
      } while (cursor && pages.length < 10);
      expect(pages.map((p) => p.length)).toEqual([4, 4, 2]);
      expect(pages.flat()).toEqual(api.inbox.map((m) => m.id));
      expect(api.inboxCalls.at(-1)).toMatchObject({ afterId: pages[1][3], limit: 101 });

      // By limit: a full page whose next page would be empty says so (no cursor).
      api.inbox = api.inbox.map((m) => message(m.id)).slice(0, 6);
      const first = await client.a2a.getInbox({ limit: 3 });
      expect(first.nextCursor).toBe(msgId(2));
      const last = await client.a2a.getInbox({ limit: 3, cursor: first.nextCursor });
      expect(last.messages.map((m) => m.id)).toEqual([msgId(3), msgId(4), msgId(5)]);
      expect(last.nextCursor).toBe('');

      const e = await rejection(client.a2a.getInbox({ cursor: 'nope' }));
      expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'cursor']);
    } finally {
      api.inbox = [];
    }
  });

  it('maps every outbox state, failed and rejected included', async () => {
    const entry = (id: string, state: OutboxEntry['state']): OutboxEntry => ({
      id, to: DID, state, attempts: 1, createdAt: 1, nextAttemptAt: null, deliveredAt: null, lastError: '', expiresAt: 2,
    });
    api.outbox = [entry(msgId(1), 'failed'), entry(msgId(2), 'rejected'), entry(msgId(3), 'delivered')];
    try {
      const { entries } = await client.a2a.getOutbox({});
      expect(entries.map((e) => e.state)).toEqual([6, 7, 4]);
    } finally {
      api.outbox = [];
    }
  });

  it('ends a live subscriber that falls 16 MiB behind with RESOURCE_EXHAUSTED', async () => {
    const before = api.unsubscribed;
    const stream = client.a2a.subscribeInbox({});
    await until(() => api.subscribers.size === 1);
    // The client reads nothing: 40 × 1 MiB is far below the 10,000-message bound but over the byte bound.
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 40 && api.subscribers.size > 0; i++) for (const s of [...api.subscribers]) s(message(msgId(i), big));
    await until(() => api.unsubscribed === before + 1);
    let received = 0;
    const e = await rejection((async () => { for await (const _ of stream) received++; })());
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.message).toMatch(/reader too slow: more than 16 MiB waiting; resubscribe with include_unread/);
    expect(received).toBeLessThan(20);
  });

  it('sends an unread backlog of any size at the pace of the reader, then goes live without duplicates', async () => {
    // More than the 10,000 messages a push-style stream may buffer.
    api.inbox = Array.from({ length: 12_345 }, (_, i) => message(msgId(i)));
    api.inbox[5].read = true;
    api.inboxCalls = [];
    try {
      const stream = client.a2a.subscribeInbox({ includeUnread: true });
      const ids: string[] = [];
      for await (const { message: m } of stream) {
        ids.push(m!.id);
        if (ids.length === 10) {
          // Arrives while the backlog is being written: it is in the inbox (so in a later page) and live.
          const late = message(msgId(20_000));
          api.inbox.push(late);
          for (const s of api.subscribers) s(late);
        }
        if (ids.length === 12_345) {
          for (const s of api.subscribers) s(message(msgId(20_001))); // live
        }
        if (ids.length === 12_346) break;
      }
      const expected = api.inbox.filter((m) => !m.read).map((m) => m.id);
      expect(ids).toEqual([...expected, msgId(20_001)]);
      expect(api.inboxCalls.every((f) => f.unreadOnly && f.limit === 1000)).toBe(true);
      expect(api.inboxCalls.length).toBe(13);
    } finally {
      api.inbox = [];
    }
  });

  it('fails with a clear error when no daemon listens', async () => {
    const c = connectClient({ dataDir: join(dir, 'nowhere') });
    try {
      const e = await rejection(c.diag.info());
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.message).toBe(`daemon not running at unix:${join(dir, 'nowhere', 'a2a.sock')} (start it with \`moltmesh-daemon start\`)`);
    } finally {
      c.close();
    }
  });

  it('refuses a socket another daemon is listening on', async () => {
    await expect(startGrpcServer({ api: fakeApi(), socketPath: join(dir, 'a2a.sock'), logger: silent }))
      .rejects.toThrow(/already listening/);
  });
});

describe('gRPC server shutdown', () => {
  it('replaces a stale socket file and ends live streams with UNAVAILABLE on stop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-grpc-'));
    const sock = join(dir, 'a2a.sock');
    // A process killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(sock)).toBe(true);

    const api = fakeApi();
    const umask = process.umask(0o002); // a loose umask: the socket must still never be more than 0600
    const server = await startGrpcServer({ api, socketPath: sock, logger: silent });
    expect(process.umask(umask)).toBe(0o002); // restored after the bind
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const client = connectClient({ grpcAddr: `unix:${sock}` });
    try {
      const stream = client.a2a.subscribeInbox({});
      const ended = rejection((async () => { for await (const _ of stream) { /* none */ } })());
      await until(() => api.subscribers.size === 1);
      const t0 = Date.now();
      await server.stop();
      expect(Date.now() - t0).toBeLessThan(1500); // streams ended first, so no waiting out the grace period
      const e = await ended;
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.message).toBe('daemon shutting down');
      expect(api.subscribers.size).toBe(0);
      expect(existsSync(sock)).toBe(false);
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends live streams when the daemon begins shutting down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-grpc-'));
    const api = fakeApi();
    const server = await startGrpcServer({ api, socketPath: join(dir, 'a2a.sock'), logger: silent });
    const client = connectClient({ dataDir: dir });
    try {
      const stream = client.a2a.subscribeInbox({});
      const ended = rejection((async () => { for await (const _ of stream) { /* none */ } })());
      await until(() => api.subscribers.size === 1);
      for (const cb of api.shutdownCbs) cb();
      expect((await ended).code).toBe('UNAVAILABLE');
      // New streams are refused from then on; unary calls still answer until the server stops.
      const late = client.a2a.subscribeInbox({});
      expect((await rejection((async () => { for await (const _ of late) { /* none */ } })())).code).toBe('UNAVAILABLE');
      expect((await client.diag.info()).did).toBe(DID);
    } finally {
      client.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
