import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDuration, loadConfig, parseDuration, type Schema } from '../../runtime/config.ts';
import { daemonSchema, loadDaemonConfig } from '../../actors/daemon-config.ts';
import { ApiError } from '../../runtime/errors.ts';

const schema = {
  net: {
    port: { type: 'int', default: 4001, min: 0, max: 65535, doc: 'port' },
    peers: { type: 'string[]', default: [], doc: 'peers' },
    mdns: { type: 'bool', default: true, doc: 'mdns' },
  },
  daemon: {
    dir: { type: 'string', default: '/var/x', doc: 'dir' },
    sock: { type: 'string', default: (r) => `${r.daemon.dir}/a.sock`, doc: 'computed from dir' },
    ttl: { type: 'duration', default: '24h', doc: 'ttl' },
  },
} satisfies Schema;

let root: string;
let cwd: string;
let dataDir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'config-test-'));
  cwd = join(root, 'cwd');
  dataDir = join(root, 'data');
  mkdirSync(cwd);
  mkdirSync(dataDir);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** The ApiError a failing call throws. */
function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected an error');
}

describe('lookup order', () => {
  it('uses the defaults when there is no file', () => {
    const { config, source } = loadConfig(schema, { cwd, dataDir });
    expect(source).toBe('defaults');
    expect(config).toEqual({ net: { port: 4001, peers: [], mdns: true }, daemon: { dir: '/var/x', sock: '/var/x/a.sock', ttl: 86_400_000 } });
  });

  it('prefers --config, then ./moltbook.toml, then <data_dir>/moltbook.toml', () => {
    writeFileSync(join(dataDir, 'moltbook.toml'), '[net]\nport = 3\n');
    expect(loadConfig(schema, { cwd, dataDir }).config.net.port).toBe(3);
    writeFileSync(join(cwd, 'moltbook.toml'), '[net]\nport = 2\n');
    const fromCwd = loadConfig(schema, { cwd, dataDir });
    expect([fromCwd.config.net.port, fromCwd.source]).toEqual([2, join(cwd, 'moltbook.toml')]);
    writeFileSync(join(root, 'other.toml'), '[net]\nport = 1\n');
    expect(loadConfig(schema, { cwd, dataDir, configPath: '../other.toml' }).config.net.port).toBe(1);
  });

  it('refuses a --config that does not exist, even when other files do', () => {
    writeFileSync(join(cwd, 'moltbook.toml'), '');
    const e = errorOf(() => loadConfig(schema, { cwd, dataDir, configPath: 'nope.toml' }));
    expect(e.field).toBe('config');
    expect(e.message).toContain('file not found');
    expect(e.message).toContain(join(cwd, 'nope.toml'));
  });
});

describe('overrides', () => {
  it('win over the file, which wins over defaults; computed defaults see the result', () => {
    writeFileSync(join(cwd, 'moltbook.toml'), '[net]\nport = 2\nmdns = false\n[daemon]\ndir = "/from/file"\n');
    const { config } = loadConfig(schema, { cwd, overrides: { 'net.port': 7, 'net.peers': '/ip4/1.2.3.4', 'daemon.ttl': undefined } });
    expect(config.net).toEqual({ port: 7, peers: ['/ip4/1.2.3.4'], mdns: false });
    expect(config.daemon).toEqual({ dir: '/from/file', sock: '/from/file/a.sock', ttl: 86_400_000 });
  });

  it('are checked like the file', () => {
    const e = errorOf(() => loadConfig(schema, { cwd, overrides: { 'net.port': 70_000 } }));
    expect(e.field).toBe('net.port');
    expect(errorOf(() => loadConfig(schema, { cwd, overrides: { 'net.nope': 1 } })).field).toBe('net.nope');
  });
});

describe('errors name the key', () => {
  const load = (toml: string) => {
    writeFileSync(join(cwd, 'moltbook.toml'), toml);
    return errorOf(() => loadConfig(schema, { cwd }));
  };

  it('bad values', () => {
    const e = load('[net]\nport = "abc"\n');
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe('net.port');
    expect(e.message).toMatch(/^net\.port: expected an integer 0–65535, got "abc" \(in .*moltbook\.toml\)$/);
    expect(load('[net]\nport = 1.5\n').field).toBe('net.port');
    expect(load('[net]\nmdns = "yes"\n').message).toContain('net.mdns: expected true or false');
    expect(load('[net]\npeers = "/ip4/1.2.3.4"\n').message).toContain('net.peers: expected an array of strings');
    expect(load('[daemon]\nttl = 5\n').message).toContain('daemon.ttl: expected a duration');
    expect(load('[daemon]\nttl = "5 parsecs"\n').field).toBe('daemon.ttl');
  });

  it('unknown keys and sections, with a suggestion for a near miss', () => {
    expect(load('[net]\nprot = 1\n').message).toMatch(/^net\.prot: unknown key .*did you mean net\.port\?$/);
    expect(load('[nett]\nport = 1\n').message).toMatch(/^nett: unknown section \[nett\].*did you mean \[net\]\?$/);
    expect(load('port = 1\n').message).toContain('did you mean net.port?');
    expect(load('[net]\nzzzzzz = 1\n').message).not.toContain('did you mean');
    expect(load('net = 1\n').field).toBe('net');
  });

  it('TOML syntax errors with file, line and column', () => {
    const e = load('[net]\nport = 1\nmdns = = true\n');
    expect(e.field).toBe('config');
    expect(e.message).toContain(`${join(cwd, 'moltbook.toml')}:3:`);
    expect(e.message).toContain('invalid TOML');
  });
});

describe('durations', () => {
  it('parse the usual forms', () => {
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1h 30m')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    for (const bad of ['', '1', '1x', '-1s', '1.5h', 'h', '1s2']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('round-trip through the canonical form', () => {
    fc.assert(fc.property(fc.nat({ max: 10 * 365 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms));
    expect(formatDuration(86_400_000)).toBe('24h');
    expect(formatDuration(5_400_500)).toBe('1h30m500ms');
  });
});

describe('the daemon schema', () => {
  let savedEnv: string | undefined;
  beforeEach(() => {
    savedEnv = process.env.MOLTMESH_DATA_DIR;
    delete process.env.MOLTMESH_DATA_DIR;
  });
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.MOLTMESH_DATA_DIR;
    else process.env.MOLTMESH_DATA_DIR = savedEnv;
  });

  it('moltbook.toml.example documents every key with its default', async () => {
    const example = readFileSync(new URL('../../moltbook.toml.example', import.meta.url), 'utf8');
    for (const [sec, fields] of Object.entries(daemonSchema)) {
      expect(example).toContain(`[${sec}]`);
      for (const key of Object.keys(fields)) expect(example).toMatch(new RegExp(`^# ${key} = `, 'm'));
    }
    // Uncommented, the example is a valid file that changes nothing.
    writeFileSync(join(cwd, 'moltbook.toml'), example.replace(/^# (\w+ = )/gm, '$1'));
    const fromExample = await loadDaemonConfig({ cwd });
    const defaults = await loadDaemonConfig({ cwd: dataDir, dataDir: join(root, 'empty') });
    expect(fromExample.source).toBe(join(cwd, 'moltbook.toml'));
    expect(fromExample.config).toEqual({ ...defaults.config, daemon: fromExample.config.daemon });
    expect(fromExample.config.daemon.grpc_addr).toBe(`unix:${fromExample.config.daemon.data_dir}/a2a.sock`);
  });

  it('finds the file in the data dir named by the flag, then lets flags win', async () => {
    writeFileSync(join(dataDir, 'moltbook.toml'), '[network]\nport = 4100\nmdns = true\n[messaging]\nmessage_ttl = "1h"\n');
    const { config, source } = await loadDaemonConfig({ cwd, dataDir, mdns: false, grpcAddr: '127.0.0.1:7000' });
    expect(source).toBe(join(dataDir, 'moltbook.toml'));
    expect(config.network.port).toBe(4100);
    expect(config.network.mdns).toBe(false);
    expect(config.messaging.message_ttl).toBe(3_600_000);
    expect(config.daemon).toMatchObject({ data_dir: dataDir, grpc_addr: '127.0.0.1:7000' });
  });

  it('defaults data_dir to $MOLTMESH_DATA_DIR and the socket inside it', async () => {
    process.env.MOLTMESH_DATA_DIR = dataDir;
    const { config } = await loadDaemonConfig({ cwd });
    expect(config.daemon).toMatchObject({ data_dir: dataDir, grpc_addr: `unix:${dataDir}/a2a.sock` });
  });

  it('rejects bad multiaddrs, peer ids, addresses and sizes by key', async () => {
    const fails = async (toml: string) => {
      writeFileSync(join(cwd, 'moltbook.toml'), toml);
      return loadDaemonConfig({ cwd, dataDir }).then(() => { throw new Error('expected an error'); }, (e: ApiError) => e);
    };
    expect((await fails('[network]\nbootstrap_peers = ["/ip4/1.2.3.4/tcp/4001"]\n')).field).toBe('network.bootstrap_peers');
    expect((await fails('[network]\nbootstrap_peers = ["/ip4/1.2.3.4/tcp/4001/p2p/nope"]\n')).message).toContain('invalid peer id');
    expect((await fails('[network]\nlisten_addresses = ["/ip4/999.1.1.1/tcp/1"]\n')).field).toBe('network.listen_addresses');
    expect((await fails('[daemon]\ngrpc_addr = "localhost"\n')).field).toBe('daemon.grpc_addr');
    expect((await fails('[messaging]\nmax_message_bytes = 2000000\n')).field).toBe('messaging.max_message_bytes');
    expect((await fails('[messaging]\nretry_initial = "10m"\nretry_max = "1m"\n')).field).toBe('messaging.retry_max');
    expect((await fails('[agent]\ncapabilities = ["text generation"]\n')).field).toBe('agent.capabilities');
    // The same rule as a task's skill: lowercase, digits, - _ . (optionally a2a:v1:cap:).
    expect((await fails('[agent]\ncapabilities = ["Text-Generation"]\n')).message).toContain('lowercase letters');
  });
});
