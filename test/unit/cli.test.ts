// The CLI through its real launcher, as a user runs it: no daemon needed for any of these.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const launcher = fileURLToPath(new URL('../../bin/moltmesh-daemon', import.meta.url));
let root: string;
let dataDir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cli-test-'));
  dataDir = join(root, 'data');
});
const daemons: ChildProcess[] = [];
afterAll(() => {
  // A failed assertion must not leave a daemon behind.
  for (const d of daemons) if (d.exitCode === null) d.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** Runs the launcher from an empty directory (no moltbook.toml), with the data dir in the environment. */
function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(launcher, args, {
    cwd: root, encoding: 'utf8', timeout: 20_000,
    // NODE_ENV=test (vitest's) stays: oclif must still not look for ts-node/tsx.
    env: { ...process.env, MOLTMESH_DATA_DIR: dataDir, NO_COLOR: '1', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

describe('launcher', () => {
  it('runs --help with the project Node', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('USAGE');
    for (const cmd of ['start', 'identity', 'send-message', 'get-inbox', 'subscribe-inbox', 'replay', 'stop']) expect(r.stdout).toContain(cmd);
    expect(r.stderr).toBe('');
  });

  it('works through a symlink, as npm links bins', () => {
    const link = join(root, 'linked-bin');
    symlinkSync(launcher, link);
    const r = spawnSync(link, ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: '/usr/bin:/bin' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^moltmesh-daemon\/\d+\.\d+\.\d+ .* node-v(2[2-9]|[3-9]\d)\./);
  });

  it('without a bundled Node, refuses an old node on PATH with a clear error', () => {
    const pkg = join(root, 'pkg');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    copyFileSync(launcher, join(pkg, 'bin', 'moltmesh-daemon'));
    writeFileSync(join(pkg, 'bin', 'run.ts'), 'console.log("ran with", process.version);\n');
    const fakeBin = join(root, 'fake-bin');
    mkdirSync(fakeBin);
    // An "old node": answers the launcher's version probe like Node 20 would.
    writeFileSync(join(fakeBin, 'node'), '#!/bin/sh\nif [ "$1" = --version ]; then echo v20.20.2; else echo false; fi\n');
    chmodSync(join(fakeBin, 'node'), 0o755);
    const old = spawnSync(join(pkg, 'bin', 'moltmesh-daemon'), [], { encoding: 'utf8', env: { PATH: `${fakeBin}:/usr/bin:/bin` } });
    expect(old.status).toBe(1);
    expect(old.stderr).toContain('needs Node.js 22.18 or newer (found: v20.20.2)');

    // A new enough node on PATH is accepted.
    const goodBin = join(root, 'good-bin');
    mkdirSync(goodBin);
    symlinkSync(process.execPath, join(goodBin, 'node'));
    const good = spawnSync(join(pkg, 'bin', 'moltmesh-daemon'), [], { encoding: 'utf8', env: { PATH: `${goodBin}:/usr/bin:/bin` } });
    expect(good.stdout).toBe(`ran with ${process.version}\n`);
  });
});

describe('identity (no daemon)', () => {
  it('creates the key once and prints it, as JSON and for humans', () => {
    const first = cli(['identity', '--json']);
    expect(first.code).toBe(0);
    const id = JSON.parse(first.stdout);   // the whole of stdout is one JSON document
    expect(id.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    expect(id.publicKeyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(id.dataDir).toBe(dataDir);
    expect(id.created).toBe(true);

    const human = cli(['identity']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`DID         ${id.did}\n`);
    expect(human.stdout).toContain(`Public key  ed25519:${id.publicKeyHex}\n`);
    expect(human.stdout).toMatch(/^Data dir {4}\S+/m);
    expect(JSON.parse(cli(['identity', '--json', '--data-dir', dataDir]).stdout)).toMatchObject({ did: id.did, created: false });
  });
});

describe('errors', () => {
  it('bad flags and arguments: a clear error and exit 2', () => {
    for (const args of [['identity', '--bogus'], ['ping'], ['send-message', '--to', 'did:key:z6Mkx'], ['get-inbox', '--limit', 'abc']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^error: \S/);
      expect(r.stdout).toBe('');
      noStackTrace(r.stderr);
    }
  });

  it('no daemon: one line on stderr, exit 1; with --json the error is the one document on stdout', () => {
    const r = cli(['status']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: daemon not running at unix:${dataDir}/a2a.sock (start it with \`moltmesh-daemon start\`)\n`);
    expect(r.stdout).toBe('');

    const j = cli(['status', '--json']);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual({ error: { code: 'UNAVAILABLE', message: expect.stringContaining('daemon not running') } });
  });

  it('version works without a daemon', () => {
    const r = cli(['version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ client: { version: expect.any(String) }, daemon: null });
  });
});

/** Like cli(), without blocking this process (so an in-process fake daemon can answer). */
function cliAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(launcher, args, { cwd: root, env: { ...process.env, MOLTMESH_DATA_DIR: dataDir, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('against a fake daemon', () => {
  it('shows failed and rejected outbox states and counts, and the inbox cursor', async () => {
    const { startGrpcServer } = await import('../../actors/grpc/server.ts');
    const did = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const id = (i: number) => `msg_01JX${String(i).padStart(22, '0')}`;
    const entry = (i: number, state: string) => ({
      id: id(i), to: did, state, attempts: 2, createdAt: 1, nextAttemptAt: null, deliveredAt: null, lastError: 'too big', expiresAt: 2,
    });
    const inbox = [1, 2, 3].map((i) => ({ id: id(i), from: did, to: did, text: `m${i}`, data: new Uint8Array(), contentType: 'text/plain', sentAt: 1, receivedAt: 2, read: false }));
    const api = {
      getOutbox: async () => [entry(1, 'failed'), entry(2, 'rejected')],
      status: async () => ({
        inbox: { total: 3, unread: 3 }, streams: 2, tasks: { working: 2, completed: 0 },
        outbox: { queued: 0, sending: 0, retrying: 0, delivered: 0, expired: 0, rejected: 1, failed: 1 },
      }),
      getInbox: async (f: { limit?: number; afterId?: string }) => {
        const start = f.afterId ? inbox.findIndex((m) => m.id === f.afterId) + 1 : 0;
        return { messages: inbox.slice(start, start + (f.limit ?? 100)), unread: 3 };
      },
      onShutdown: () => undefined,
    };
    const sock = join(root, 'fake.sock');
    const server = await startGrpcServer({ api: api as never, socketPath: sock, logger: () => undefined });
    try {
      const at = ['--grpc-addr', `unix:${sock}`];
      const outbox = await cliAsync(['outbox', ...at]);
      expect(outbox.stdout).toMatch(new RegExp(`^${id(1)}  to ${did}  failed +2 attempts  last error: too big$`, 'm'));
      expect(outbox.stdout).toMatch(new RegExp(`^${id(2)}  to ${did}  rejected +2 attempts`, 'm'));
      expect(JSON.parse((await cliAsync(['outbox', '--json', ...at])).stdout).entries.map((e: { state: string }) => e.state)).toEqual(['failed', 'rejected']);
      const status = (await cliAsync(['status', ...at])).stdout;
      expect(status).toContain('0 expired, 1 rejected, 1 failed');
      expect(status).toMatch(/^Tasks +2 working$/m);

      const page = await cliAsync(['get-inbox', '--limit', '2', ...at]);
      expect(page.stdout.trimEnd().split('\n').at(-1)).toBe(`more: --cursor ${id(2)}`);
      const next = JSON.parse((await cliAsync(['get-inbox', '--json', '--limit', '2', '--cursor', id(2), ...at])).stdout);
      expect([next.messages.map((m: { id: string }) => m.id), next.nextCursor]).toEqual([[id(3)], '']);
    } finally {
      await server.stop();
    }
  }, 30_000);
});

describe('outbox', () => {
  it('has a word for every OutboxState', async () => {
    const { OutboxState } = await import('../../proto/gen/moltmesh/v1/messaging.ts');
    const { STATE } = await import('../../cli/commands/outbox.ts');
    for (const [name, n] of Object.entries(OutboxState)) {
      if (n >= 0) expect(STATE[n], name).toBe(name.replace('OUTBOX_STATE_', '').toLowerCase());
    }
    expect(STATE.slice(6)).toEqual(['failed', 'rejected']);
  });
});

describe('task commands', () => {
  it('have a word for every TaskState, TaskRole and TaskEventKind, and flag spellings in enum order', async () => {
    const gen = await import('../../proto/gen/moltmesh/v1/tasks.ts');
    const f = await import('../../cli/task-format.ts');
    const check = (e: Record<string, number>, prefix: string, words: string[]) => {
      for (const [name, n] of Object.entries(e)) if (n >= 0) expect(words[n], name).toBe(name.replace(prefix, ''));
      expect(words.length).toBe(Object.values(e).filter((n) => n >= 0).length);
    };
    check(gen.TaskState, 'TASK_STATE_', f.TASK_STATE);
    check(gen.TaskRole, 'TASK_ROLE_', f.TASK_ROLE);
    check(gen.TaskEventKind, 'TASK_EVENT_KIND_', f.TASK_EVENT_KIND);
    for (const s of f.STATE_FLAGS) expect(f.TASK_STATE[f.stateOfFlag(s)]).toBe(s.toUpperCase().replace('-', '_'));
    for (const k of f.KIND_FLAGS) expect(f.TASK_EVENT_KIND[f.kindOfFlag(k)]).toBe(k.toUpperCase().replace('-', '_'));
    expect([f.roleOfFlag('requester'), f.roleOfFlag('assignee')]).toEqual([gen.TaskRole.TASK_ROLE_REQUESTER, gen.TaskRole.TASK_ROLE_ASSIGNEE]);
  });
});

describe('discovery and name commands', () => {
  it('are listed in help, the name commands under their topic', () => {
    const help = cli(['--help']);
    for (const cmd of ['find-agents', 'get-agent-card', 'publish-card', 'withdraw-card']) expect(help.stdout).toContain(cmd);
    const names = cli(['name', '--help']);
    expect(names.code).toBe(0);
    for (const cmd of ['claim', 'resolve', 'release', 'list']) expect(names.stdout).toContain(`name ${cmd}`);
  });

  it('refuse a bad name, capability or timeout before contacting the daemon (exit 2; none is running here)', () => {
    const rule = 'a name is two or more words of lowercase letters a-z and digits joined by "-"';
    const cases: Array<[string[], string]> = [
      [['name', 'claim', 'Swift', 'falcon'], `error: name: "Swift-falcon" is not a name: use lowercase letters only; ${rule}`],
      [['name', 'claim', 'swift'], `error: name: "swift" is not a name: needs two or more words joined by "-"; ${rule}`],
      [['name', 'resolve', 'swift_falcon'], 'error: name: "swift_falcon" is not a name: "_" is not allowed'],
      [['name', 'release', '7-up'], 'error: name: "7-up" is not a name: must start with a letter'],
      [['find-agents', '--capability', 'Text!'], 'error: --capability: "Text!" is not a capability'],
      [['find-agents', '--capability', 'x', '--timeout', 'soon'], 'error: --timeout: expected a duration'],
      [['find-agents', '--capability', 'x', '--timeout', '5m'], 'error: --timeout: at most 2m, got 5m'],
      [['publish-card', '--capability', 'A B'], 'error: --capability: "A B" is not a capability'],
      [['publish-card', '--skill-file', join(root, 'missing.json')], `error: --skill-file: cannot read ${join(root, 'missing.json')}: ENOENT`],
      [['get-agent-card'], 'error: which agent?'],
    ];
    for (const [args, stderr] of cases) {
      const r = cli(args);
      expect([r.code, r.stdout], args.join(' ')).toEqual([2, '']);
      expect(r.stderr.startsWith(stderr), `${args.join(' ')}: ${r.stderr}`).toBe(true);
      noStackTrace(r.stderr);
    }
  });

  it('against a fake A2ANode: streamed cards, rows, names, the daemon\'s refusals', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { A2ANodeService } = await import('../../proto/gen/moltmesh/v1/a2a_node.ts');
    const self = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const other = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH';
    const T = Date.UTC(2026, 4, 30, 14, 22, 0, 123);
    const card = (did: string, name: string, caps: string[]) => ({
      did, name, description: name ? `${name} at work` : '', capabilities: caps.map((c) => `a2a:v1:cap:${c}`),
      skills: [{ id: caps[0], name: 'Text generation', description: '', inputSchemaJson: '{"type":"object"}', outputSchemaJson: '' }],
      addresses: ['/ip4/127.0.0.1/tcp/4001'], protocolVersion: 'a2a/1', issuedAtMs: T, expiresAtMs: T + 86_400_000, seq: 3,
      signature: new Uint8Array([0xab, 0xcd]),
    });
    const record = (name: string, did: string, autoRenew: boolean) => ({ name, did, claimedAtMs: T, expiresAtMs: T + 86_400_000, seq: 1, autoRenew });
    // find-agents must print a card as it arrives: the second is sent only once the first line has been seen.
    let firstPrinted!: () => void;
    const printed = new Promise<void>((ok) => (firstPrinted = ok));
    const seen: Record<string, unknown> = {};
    const fail = (code: number, details: string) => Object.assign(new Error(details), { code, details });
    const impl = {
      getIdentity: (_: unknown, cb: Function) => cb(null, { did: self, publicKeyHex: '', peerId: '', dataDir }),
      findAgents: async (call: { request: unknown; write(m: unknown): void; end(): void }) => {
        seen.findAgents = call.request;
        call.write({ card: card(other, 'swift-falcon', ['text-generation', 'embedding']) });
        if ((call.request as { limit: number }).limit !== 1) {
          await printed;
          call.write({ card: card(self, '', ['text-generation']) });
        }
        call.end();
      },
      getAgentCard: (call: { request: { did: string } }, cb: Function) =>
        call.request.did === other ? cb(null, { card: card(other, 'swift-falcon', ['text-generation']) }) : cb(fail(grpc.status.NOT_FOUND, `no card for ${call.request.did}`)),
      publishCard: (call: { request: { name: string; capabilities: string[]; skills: unknown[] } }, cb: Function) => {
        seen.publishCard = call.request;
        cb(null, { card: { ...card(self, call.request.name, ['text-generation']), skills: [] } });
      },
      withdrawCard: (_: unknown, cb: Function) => cb(null, {}),
      claimName: (call: { request: { name: string } }, cb: Function) => call.request.name === 'swift-falcon'
        ? cb(null, { record: record('swift-falcon', self, true) })
        : cb(fail(grpc.status.ALREADY_EXISTS, `name "${call.request.name}" already claimed by ${other} (expires 2026-05-31T14:22:00Z)`)),
      resolveName: (call: { request: { name: string } }, cb: Function) => call.request.name === 'bright-harbor'
        ? cb(null, { record: record('bright-harbor', other, false) })
        : cb(fail(grpc.status.NOT_FOUND, `name "${call.request.name}" is not claimed`)),
      releaseName: (_: unknown, cb: Function) => cb(null, {}),
      listNames: (_: unknown, cb: Function) => cb(null, { records: [record('swift-falcon', self, true), record('quiet-river-2', self, false)] }),
    };
    const server = new grpc.Server();
    server.addService(A2ANodeService, impl as never);
    const sock = join(root, 'fake-a2a.sock');
    await new Promise<void>((ok, ko) => server.bindAsync(`unix:${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? ko(e) : ok())));
    const at = ['--grpc-addr', `unix:${sock}`];
    try {
      // Streamed: the first line is on stdout before the search ends.
      const child = spawn(launcher, ['find-agents', '--capability', 'text-generation', '--timeout', '2s', ...at], { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) firstPrinted();
      });
      const code = await new Promise((ok) => child.on('close', ok));
      expect([code, stderr]).toEqual([0, '# searching DHT for a2a:v1:cap:text-generation...\n']);
      expect(stdout).toBe(`${other}  swift-falcon      text-generation, embedding\n${self} (you)  (unnamed)         text-generation\n# 2 agents found\n`);
      expect(seen.findAgents).toEqual({ capability: 'a2a:v1:cap:text-generation', limit: 0, timeoutMs: 2000 });

      const [one, json, get, getJson, missing, published, withdrawn] = await Promise.all([
        cliAsync(['find-agents', '--capability', 'a2a:v1:cap:text-generation', '--limit', '1', ...at]),
        cliAsync(['find-agents', '--capability', 'text-generation', '--limit', '1', '--json', ...at]),
        cliAsync(['get-agent-card', other, ...at]),
        cliAsync(['get-agent-card', '--did', other, '--json', ...at]),
        cliAsync(['get-agent-card', self, ...at]),
        (async () => {
          const file = join(root, 'skills.json');
          writeFileSync(file, JSON.stringify([{ id: 'text-generation', name: 'Text generation', inputSchema: { type: 'object' } }]));
          return cliAsync(['publish-card', '--name', 'swift-falcon', '--capability', 'text-generation', '--skill-file', file, ...at]);
        })(),
        cliAsync(['withdraw-card', ...at]),
      ]);
      expect(one.stdout.split('\n').slice(1)).toEqual(['# 1 agent found', '']);
      expect(JSON.parse(json.stdout)).toMatchObject({
        capability: 'a2a:v1:cap:text-generation',
        agents: [{ did: other, name: 'swift-falcon', signature: 'abcd', skills: [{ id: 'text-generation', inputSchema: { type: 'object' } }] }],
      });
      expect(get.stdout).toBe([
        `DID           ${other}`,
        'Name          swift-falcon',
        'Description   swift-falcon at work',
        'Capabilities  text-generation',
        'Skills        text-generation: Text generation',
        'Addresses     /ip4/127.0.0.1/tcp/4001',
        'Protocol      a2a/1',
        'Issued        2026-05-30T14:22:00Z',
        'Expires       2026-05-31T14:22:00Z',
        'Seq           3',
        '',
      ].join('\n'));
      expect(JSON.parse(getJson.stdout)).toMatchObject({ did: other, expiresAt: '2026-05-31T14:22:00Z', signature: 'abcd' });
      expect([missing.code, missing.stderr]).toEqual([1, `error: no card for ${self}\n`]);
      expect(published.stdout).toMatch(new RegExp(`^DID +${self} \\(you\\)\\nName +swift-falcon\\n`));
      expect(seen.publishCard).toMatchObject({
        name: 'swift-falcon', description: '', capabilities: ['text-generation'],
        skills: [{ id: 'text-generation', name: 'Text generation', inputSchemaJson: '{"type":"object"}', outputSchemaJson: '' }],
      });
      expect(withdrawn.stdout).toBe('card withdrawn: capabilities no longer advertised\n');

      const [claimed, taken, resolved, unclaimed, released, list, listJson] = await Promise.all([
        cliAsync(['name', 'claim', 'swift', 'falcon', ...at]),
        cliAsync(['name', 'claim', 'bright-harbor', ...at]),
        cliAsync(['name', 'resolve', 'bright-harbor', ...at]),
        cliAsync(['name', 'resolve', 'x-y', ...at]),
        cliAsync(['name', 'release', 'swift-falcon', ...at]),
        cliAsync(['name', 'list', ...at]),
        cliAsync(['name', 'list', '--json', ...at]),
      ]);
      expect(claimed.stdout).toBe(`Name     swift-falcon\nDID      ${self} (you)\nExpires  2026-05-31T14:22:00Z (auto-renewed)\n`);
      expect([taken.code, taken.stdout, taken.stderr]).toEqual([1, '', `error: name "bright-harbor" already claimed by ${other} (expires 2026-05-31T14:22:00Z)\n`]);
      expect(resolved.stdout).toBe(`Name     bright-harbor\nDID      ${other}\nExpires  2026-05-31T14:22:00Z\n`);
      expect([unclaimed.code, unclaimed.stderr]).toEqual([1, 'error: name "x-y" is not claimed\n']);
      expect(released.stdout).toBe('released swift-falcon\n');
      expect(list.stdout).toBe('NAME           EXPIRES                              SEQ\nswift-falcon   2026-05-31T14:22:00Z (auto-renewed)  1\nquiet-river-2  2026-05-31T14:22:00Z                 1\n');
      expect(JSON.parse(listJson.stdout).names.map((n: { name: string; expiresAt: string }) => [n.name, n.expiresAt]))
        .toEqual([['swift-falcon', '2026-05-31T14:22:00Z'], ['quiet-river-2', '2026-05-31T14:22:00Z']]);
    } finally {
      firstPrinted();
      server.forceShutdown();
    }
  }, 30_000);
});

describe('thread commands', () => {
  it('have a word for every ThreadBackend and ThreadState, and the backend flags in enum order', async () => {
    const gen = await import('../../proto/gen/moltmesh/v1/threads.ts');
    const f = await import('../../cli/thread-format.ts');
    const check = (e: Record<string, number>, prefix: string, words: string[]) => {
      for (const [name, n] of Object.entries(e)) if (n >= 0) expect(words[n], name).toBe(name.replace(prefix, '').toLowerCase());
      expect(words.length).toBe(Object.values(e).filter((n) => n >= 0).length);
    };
    check(gen.ThreadBackend, 'THREAD_BACKEND_', f.THREAD_BACKEND);
    check(gen.ThreadState, 'THREAD_STATE_', f.THREAD_STATE);
    for (const b of f.BACKEND_FLAGS) expect(f.THREAD_BACKEND[f.backendOfFlag(b)]).toBe(b);
    const raft = gen.ThreadBackend.THREAD_BACKEND_RAFT;
    const tm = gen.ThreadBackend.THREAD_BACKEND_TENDERMINT;
    expect([f.toleranceText(raft, 3, 1), f.toleranceText(raft, 5, 2), f.toleranceText(raft, 2, 0), f.toleranceText(raft, 1, 0), f.toleranceText(tm, 4, 1), f.toleranceText(tm, 7, 2)]).toEqual([
      'tolerates 1 crashed replica of 3', 'tolerates 2 crashed replicas of 5', 'tolerates no crashed replica of 2',
      'a single replica: no fault tolerance', 'tolerates 1 Byzantine validator of 4', 'tolerates 2 Byzantine validators of 7',
    ]);
    const sig = { validator: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', round: 0, signature: Buffer.from([1]) };
    const block = { height: 3, hash: 'ab'.repeat(32), parentHash: '', entriesRoot: '', proposer: sig.validator, timeMs: 0, entries: [], commit: [sig, sig, sig] };
    expect(f.blockText(block)).toBe(`Height 3  Hash ${'ab'.repeat(6)}…  0 entries  proposer did:key:z6MkhaXgBZDv…  3 precommits`);
    expect(f.blockJson(block).commit).toEqual([{ ...sig, signature: '01' }, { ...sig, signature: '01' }, { ...sig, signature: '01' }]);
    expect([f.isJsonType('application/json'), f.isJsonType('application/ld+json; charset=utf-8'), f.isJsonType('text/json'), f.isJsonType('application/jsonl')]).toEqual([true, true, false, false]);
  });

  it('are listed in help', () => {
    const help = cli(['--help']);
    for (const cmd of ['create-thread', 'get-thread', 'list-threads', 'join-thread', 'append-entry', 'get-thread-entries', 'subscribe-thread', 'verify-thread']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    }
  });

  it('refuse bad usage before contacting the daemon (exit 2; none is running here)', async () => {
    const thr = 'thr_01JZ0000000000000000000000';
    const payloadFile = join(root, 'payload.bin');
    writeFileSync(payloadFile, Buffer.from([0, 1, 2]));
    const cases: Array<[string[], string]> = [
      [['append-entry', '--thread', thr, '--payload', '{}'], 'error: The following error occurred:\n  Missing required flag kind'],
      [['append-entry', '--kind', 'decision', '--payload', '{}'], 'error: The following error occurred:\n  Missing required flag thread'],
      [['append-entry', '--thread', thr, '--kind', 'decision', '--payload', '{"vote":'], 'error: --payload: not valid JSON ('],
      [['append-entry', '--thread', thr, '--kind', 'decision', '--payload', 'approve'], 'error: --payload: not valid JSON ('],
      [['append-entry', '--thread', thr, '--kind', 'decision'], 'error: no payload: give --payload \'{json}\', --payload-file f or --text t'],
      [['append-entry', '--thread', thr, '--kind', 'decision', '--payload', '{}', '--text', 'x'], 'error: give one payload, not --payload and --text'],
      [['append-entry', '--thread', thr, '--kind', 'blob', '--payload-file', payloadFile], `error: --payload-file ${payloadFile}: not valid JSON (Unexpected token '\\x00'`],
      [['append-entry', '--thread', thr, '--kind', 'blob', '--payload-file', join(root, 'missing.bin')], `error: --payload-file: cannot read ${join(root, 'missing.bin')}: ENOENT`],
      [['create-thread', '--backend', 'pbft'], 'error: Expected --backend=pbft to be one of: raft, tendermint'],
      [['create-thread', '--replicas', 'did:key:z6MkA,bob'], 'error: --replicas: "bob" is not a DID (did:key:z6Mk…)'],
      [['create-thread', '--fault-tolerance', '0'], 'error: Parsing --fault-tolerance \n\tExpected an integer greater than or equal to 1 but received: 0'],
      [['get-thread'], 'error: The following error occurred:\n  Missing required flag id'],
      [['get-thread-entries', '--id', thr, '--since', '-1'], 'error: Parsing --since \n\tExpected an integer greater than or equal to 0 but received: -1'],
      [['list-threads', '--limit', '0'], 'error: Parsing --limit \n\tExpected an integer greater than or equal to 1 but received: 0'],
      [['subscribe-thread', '--id', thr, '--since', 'x'], 'error: Parsing --since \n\tExpected an integer but received: x'],
      [['verify-thread'], 'error: The following error occurred:\n  Missing required flag id'],
    ];
    const results = await Promise.all(cases.map(([args]) => cliAsync(args)));
    results.forEach((r, i) => {
      const [args, stderr] = cases[i]!;
      expect([r.code, r.stdout], args.join(' ')).toEqual([2, '']);
      expect(r.stderr.startsWith(stderr), `${args.join(' ')}: ${r.stderr}`).toBe(true);
      noStackTrace(r.stderr);
    });
  });

  it('against a fake A2ANode: rows, lines, pages, the stream, verification and the daemon\'s refusals', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { A2ANodeService } = await import('../../proto/gen/moltmesh/v1/a2a_node.ts');
    const self = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const b = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH';
    const c = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
    const id = 'thr_01JZ0000000000000000000001';
    const head = '9f2c41a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8';
    const T = Date.now() - 65_000;
    const thread = (over: Record<string, unknown> = {}) => ({
      id, backend: 1, creator: self, replicas: [self, b, c], faultTolerance: 1, state: 2, failureReason: '', height: 12, headHash: head,
      leader: b, evidence: [], createdAtMs: T, joined: [self, b, c], ...over,
    });
    const entry = (height: number, index: number, kind: string, payload: string | Uint8Array, contentType: string, author = self) => ({
      entryId: `ent_${height}_${index}`, author, kind, payload: Buffer.from(payload), contentType, submittedAtMs: T, signature: Buffer.from([0xab, 0xcd]), height, index,
    });
    const entries = [
      entry(10, 0, 'decision', '{ "vote": "approve" }', 'application/json'),
      entry(10, 1, 'note', `shipped ${'x'.repeat(120)}`, 'text/plain', b),
      entry(11, 0, 'blob', new Uint8Array([0, 1, 2]), 'application/octet-stream', c),
    ];
    const block = (height: number, es: ReturnType<typeof entry>[]) => ({
      height, hash: `${height}${head.slice(2)}`, parentHash: head, entriesRoot: head, proposer: b, timeMs: T, entries: es, commit: [],
    });
    const seen: Record<string, unknown> = {};
    const created: unknown[] = [];
    const fail = (code: number, details: string) => Object.assign(new Error(details), { code, details });
    const impl = {
      getIdentity: (_: unknown, cb: Function) => cb(null, { did: self, publicKeyHex: '', peerId: '', dataDir }),
      createThread: (call: { request: { replicas: string[]; faultTolerance: number } }, cb: Function) => {
        created.push(call.request);
        if (call.request.faultTolerance === 1 && call.request.replicas.length === 1) {
          return cb(fail(grpc.status.INVALID_ARGUMENT, 'fault_tolerance: raft needs n ≥ 2f+1 replicas: tolerating 1 crashed replica takes 3, and there are 2'));
        }
        cb(null, { thread: thread({ state: 1, height: 0, leader: '', joined: [self] }) });
      },
      getThread: (call: { request: { threadId: string } }, cb: Function) => call.request.threadId === id
        ? cb(null, { thread: thread() })
        : cb(null, { thread: thread({
          id: call.request.threadId, backend: 2, creator: b, replicas: [b, self, c, 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG'], state: 3,
          failureReason: 'consensus failed: crashed 5 times', joined: [b, self], leader: '',
          evidence: [{ validator: c, height: 4, round: 1, kind: 'duplicate-vote', detailJson: '{}', observedAtMs: T }],
        }) }),
      listThreads: (call: { request: unknown }, cb: Function) => {
        seen.listThreads = call.request;
        cb(null, { threads: [thread(), thread({ id: 'thr_01JZ0000000000000000000002', replicas: [self], state: 4, height: 0 })], nextPageToken: 'thr_01JZ0000000000000000000002' });
      },
      joinThread: (_: unknown, cb: Function) => cb(null, { thread: thread({ creator: b, joined: [b, self], leader: '' }) }),
      appendEntry: (call: { request: { payload: Buffer; returnOnAccept: boolean; kind: string } }, cb: Function) => {
        seen[`append ${call.request.kind}`] = { ...call.request, payload: call.request.payload.toString() };
        if (call.request.kind === 'stuck') return cb(fail(grpc.status.DEADLINE_EXCEEDED, 'entry ent_9 is accepted but not committed yet (is a quorum of replicas reachable?)'));
        cb(null, call.request.returnOnAccept
          ? { entryId: 'ent_01JZACCEPTED', committed: false, height: 0, index: 0, blockHash: '' }
          : { entryId: 'ent_01JZCOMMITTED', committed: true, height: 12, index: 0, blockHash: head });
      },
      getThreadEntries: (call: { request: { sinceHeight: number; pageToken: string } }, cb: Function) => {
        seen[`entries ${call.request.sinceHeight} ${call.request.pageToken}`] = call.request;
        cb(null, call.request.pageToken ? { entries: [], nextPageToken: '' } : { entries, nextPageToken: '11.0' });
      },
      subscribeThread: (call: { request: { sinceHeight: number }; write(m: unknown): void; end(): void }) => {
        seen[`subscribe ${call.request.sinceHeight}`] = call.request;
        call.write({ block: block(10, entries.slice(0, 2)) });
        call.write({ block: block(11, entries.slice(2)) });
        call.end();
      },
      verifyThread: (call: { request: { threadId: string } }, cb: Function) => cb(null, call.request.threadId === id
        ? { ok: true, blocks: 12, entries: 31, headHash: head, error: '' }
        : { ok: false, blocks: 6, entries: 9, headHash: head, firstBadHeight: 7, error: 'entry 2: bad signature' }),
    };
    const server = new grpc.Server();
    server.addService(A2ANodeService, impl as never);
    const sock = join(root, 'fake-threads.sock');
    await new Promise<void>((ok, ko) => server.bindAsync(`unix:${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? ko(e) : ok())));
    const at = ['--grpc-addr', `unix:${sock}`];
    const broken = 'thr_01JZ0000000000000000000009';
    try {
      const [create, refused, get, getFailed, list, joined] = await Promise.all([
        cliAsync(['create-thread', '--replicas', `${b},${c}`, '--backend', 'raft', ...at]),
        cliAsync(['create-thread', '--replicas', b, '--fault-tolerance', '1', ...at]),
        cliAsync(['get-thread', '--id', id, ...at]),
        cliAsync(['get-thread', '--id', broken, ...at]),
        cliAsync(['list-threads', '--limit', '2', ...at]),
        cliAsync(['join-thread', '--id', id, ...at]),
      ]);
      expect(create.stdout).toBe([
        `Thread ID  ${id}`,
        'Backend    raft (tolerates 1 crashed replica of 3)',
        'State      inviting (1 of 3 replicas joined)',
        `Replicas   ${self} (you)  joined, creator`,
        `           ${b}  not joined yet`,
        `           ${c}  not joined yet`,
        '',
      ].join('\n'));
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([1, '', 'error: fault_tolerance: raft needs n ≥ 2f+1 replicas: tolerating 1 crashed replica takes 3, and there are 2\n']);
      expect(get.stdout).toMatch(new RegExp([
        `^ID        ${id}`,
        'Backend   raft \\(tolerates 1 crashed replica of 3\\)',
        'State     active',
        `Creator   ${self} \\(you\\)`,
        `Replicas  ${self} \\(you\\)  joined, creator`,
        `          ${b}  joined, leader`,
        `          ${c}  joined`,
        'Height    12',
        `Head      ${head}`,
        'Created   \\S+Z \\(1m \\d+s ago\\)\\n$',
      ].join('\\n')));
      expect(getFailed.stdout).toContain([
        'Backend   tendermint (tolerates 1 Byzantine validator of 4)',
        'State     failed: consensus failed: crashed 5 times',
        `Creator   ${b}`,
        `Replicas  ${b}  joined, creator`,
        `          ${self} (you)  joined`,
        `          ${c}`,
      ].join('\n'));
      expect(getFailed.stdout).toContain(`Evidence  1\n          height 4 round 1  duplicate-vote  ${c}\n`);
      expect(list.stdout).toMatch(new RegExp([
        `^${id}  raft  active   3 replicas  height 12  1m \\d+s ago`,
        'thr_01JZ0000000000000000000002  raft  invited  1 replica   height 0   1m \\d+s ago',
        '2 threads',
        'more: --page-token thr_01JZ0000000000000000000002\\n$',
      ].join('\\n')));
      expect(seen.listThreads).toEqual({ pageSize: 2, pageToken: '' });
      expect(joined.stdout).toBe([`Thread ID  ${id}`, 'Backend    raft (tolerates 1 crashed replica of 3)', 'State      active',
        `Replicas   ${self} (you)  joined`, `           ${b}  joined, creator`, `           ${c}`, ''].join('\n'));
      expect(created).toEqual(expect.arrayContaining([{ replicas: [b, c], backend: 1, faultTolerance: 0 }, { replicas: [b], backend: 0, faultTolerance: 1 }]));

      const [appended, appendedJson, accepted, stuck, page, pageJson, next, verified, verifiedJson, bad, badJson] = await Promise.all([
        cliAsync(['append-entry', '--thread', id, '--kind', 'decision', '--payload', '{"vote":"approve"}', ...at]),
        cliAsync(['append-entry', '--thread', id, '--kind', 'decision', '--payload', '{"vote":"approve"}', '--json', ...at]),
        cliAsync(['append-entry', '--thread', id, '--kind', 'note', '--text', 'hi', '--accept-only', ...at]),
        cliAsync(['append-entry', '--thread', id, '--kind', 'stuck', '--text', 'hi', ...at]),
        cliAsync(['get-thread-entries', '--id', id, '--since', '10', ...at]),
        cliAsync(['get-thread-entries', '--id', id, '--json', ...at]),
        cliAsync(['get-thread-entries', '--id', id, '--page-token', '11.0', ...at]),
        cliAsync(['verify-thread', '--id', id, ...at]),
        cliAsync(['verify-thread', '--id', id, '--json', ...at]),
        cliAsync(['verify-thread', '--id', broken, ...at]),
        cliAsync(['verify-thread', '--id', broken, '--json', ...at]),
      ]);
      expect([appended.code, appended.stdout, appended.stderr]).toEqual([0, 'Height 12  Entry 0  Hash 9f2c41a0b1c2…  (committed)\n', '']);
      expect(JSON.parse(appendedJson.stdout)).toEqual({ threadId: id, entryId: 'ent_01JZCOMMITTED', committed: true, height: 12, index: 0, blockHash: head });
      expect(accepted.stdout).toBe('Accepted ent_01JZACCEPTED  (not committed yet)\n');
      expect(seen['append stuck']).toMatchObject({ threadId: id, kind: 'stuck', payload: 'hi', contentType: 'text/plain', returnOnAccept: false, entryId: '' });
      expect(seen['append decision']).toMatchObject({ payload: '{"vote":"approve"}', contentType: 'application/json', returnOnAccept: false });
      expect(seen['append note']).toMatchObject({ contentType: 'text/plain', returnOnAccept: true });
      expect([stuck.code, stuck.stdout, stuck.stderr]).toEqual([1, '', 'error: entry ent_9 is accepted but not committed yet (is a quorum of replicas reachable?)\n']);
      expect(page.stdout).toBe([
        '#10.0  did:key:z6MkhaXgBZDv…  decision  {"vote":"approve"}',
        `#10.1  did:key:z6MkpTHR8VNs…  note  "shipped ${'x'.repeat(92)}…"`,
        '#11.0  did:key:z6MkiTBz1ymu…  blob  <3 bytes application/octet-stream>',
        'more: --page-token 11.0',
        '',
      ].join('\n'));
      expect([seen['entries 10 '], seen['entries 0 11.0']]).toEqual([
        { threadId: id, sinceHeight: 10, pageSize: 0, pageToken: '' }, { threadId: id, sinceHeight: 0, pageSize: 0, pageToken: '11.0' }]);
      const pj = JSON.parse(pageJson.stdout);
      expect(pj.nextPageToken).toBe('11.0');
      expect(pj.entries.map((e: Record<string, unknown>) => [e.payload, e.text, e.payloadBase64, e.signature])).toEqual([
        [{ vote: 'approve' }, undefined, undefined, 'abcd'], [undefined, `shipped ${'x'.repeat(120)}`, undefined, 'abcd'], [undefined, undefined, 'AAEC', 'abcd'],
      ]);
      expect(next.stdout).toBe('no entries\n');
      expect([verified.code, verified.stdout]).toEqual([0, 'Verified 12 blocks, 31 entries, chain head 9f2c41a0b1c2…\n']);
      expect(JSON.parse(verifiedJson.stdout)).toEqual({ threadId: id, ok: true, blocks: 12, entries: 31, headHash: head, error: '' });
      expect([bad.code, bad.stdout, bad.stderr]).toEqual([1, '', 'error: chain broken at height 7: entry 2: bad signature\n']);
      expect([badJson.code, JSON.parse(badJson.stdout)]).toEqual([1, { threadId: broken, ok: false, blocks: 6, entries: 9, headHash: head, firstBadHeight: 7, error: 'entry 2: bad signature' }]);

      // The stream: blocks with their entries indented; --json one block per line.
      const [sub, subJson] = await Promise.all([
        cliAsync(['subscribe-thread', '--id', id, '--since', '10', ...at]),
        cliAsync(['subscribe-thread', '--id', id, '--json', ...at]),
      ]);
      expect(sub.stdout).toBe([
        `Height 10  Hash 10${head.slice(2, 12)}…  2 entries  proposer did:key:z6MkpTHR8VNs…`,
        '  #10.0  did:key:z6MkhaXgBZDv…  decision  {"vote":"approve"}',
        `  #10.1  did:key:z6MkpTHR8VNs…  note  "shipped ${'x'.repeat(92)}…"`,
        `Height 11  Hash 11${head.slice(2, 12)}…  1 entry  proposer did:key:z6MkpTHR8VNs…`,
        '  #11.0  did:key:z6MkiTBz1ymu…  blob  <3 bytes application/octet-stream>',
        '',
      ].join('\n'));
      expect(sub.stderr).toBe(`following thread ${id} from height 10... (Ctrl-C to stop)\n`);
      const lines = subJson.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.height, l.entries.length])).toEqual([[10, 2], [11, 1]]);
      expect(lines[0].entries[0]).toMatchObject({ kind: 'decision', payload: { vote: 'approve' }, author: self });
      expect([seen['subscribe 10'], seen['subscribe 1']]).toEqual([{ threadId: id, sinceHeight: 10 }, { threadId: id, sinceHeight: 1 }]);
    } finally {
      server.forceShutdown();
    }
  }, 30_000);
});

describe('config --local', () => {
  it('prints the resolved config as one JSON document', () => {
    const r = cli(['config', '--local', '--json', '--port', '1']);
    expect(r.code).toBe(2);   // --port belongs to `start`, not `config`
    const ok = cli(['config', '--local', '--json']);
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.stdout);
    expect(doc.source).toBe('defaults');
    expect(doc.config.network.port).toBe(4001);
    expect(doc.config.daemon.data_dir).toBe(dataDir);
  });

  it('names the key of a bad value', () => {
    const file = join(root, 'bad.toml');
    writeFileSync(file, '[network]\nport = "abc"\n');
    const r = cli(['config', '--local', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: network.port: expected an integer 0–65535, got "abc" (in ${file})\n`);
  });
});

describe('against a running daemon', () => {
  /** Starts `moltmesh-daemon start` and resolves with its "daemon started" log line. */
  async function startDaemon(dir: string) {
    const child = spawn(launcher, ['start', '--data-dir', dir, '--port', '0', '--no-ipfs-bootstrap', '--no-mdns'], {
      cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    daemons.push(child);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const started = await new Promise<{ did: string; grpc: string }>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.includes('"daemon started"'));
        if (line) resolve(JSON.parse(line));
      });
      void exited.then((code) => reject(new Error(`daemon exited ${code}: ${err}`)));
    });
    return { child, exited, started };
  }

  it('start, unary commands with --json, stop; Ctrl-C also stops cleanly', async () => {
    const dir = join(root, 'daemon-1');
    const d = await startDaemon(dir);
    expect(d.started.grpc).toBe(`unix:${dir}/a2a.sock`);

    const info = cli(['info', '--json', '--data-dir', dir]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ did: d.started.did, dataDir: dir });
    expect(JSON.parse(cli(['health', '--json', '--data-dir', dir]).stdout).tree.path).toBe('daemon');
    expect(cli(['info', '--data-dir', dir]).stdout).toMatch(new RegExp(`^DID {8}${d.started.did} \\(you\\)$`, 'm'));
    expect(cli(['status', '--data-dir', dir]).stdout).toMatch(/^Outbox +0 queued, 0 sending, 0 retrying, 0 delivered, 0 expired, 0 rejected, 0 failed$/m);
    expect(JSON.parse(cli(['status', '--json', '--data-dir', dir]).stdout).outbox).toMatchObject({ rejected: 0, failed: 0 });
    expect(JSON.parse(cli(['get-inbox', '--json', '--data-dir', dir]).stdout)).toEqual({ unread: 0, messages: [], nextCursor: '' });
    const badCursor = cli(['get-inbox', '--cursor', 'nope', '--data-dir', dir]);
    expect([badCursor.code, badCursor.stderr]).toEqual([1, 'error: cursor: not a message id (msg_<ULID>)\n']);

    const stop = cli(['stop', '--data-dir', dir]);
    expect(stop.code).toBe(0);
    expect(await d.exited).toBe(0);

    const again = await startDaemon(dir);   // stop waited for the data-dir lock to be released
    expect(again.started.did).toBe(d.started.did);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  }, 60_000);
});
