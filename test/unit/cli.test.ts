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
