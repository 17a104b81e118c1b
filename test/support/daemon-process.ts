// Real daemons as child processes, for end-to-end tests: started through the CLI exactly as a user would,
// on loopback with a free port, no public bootstrap and no mDNS. Killed processes and temp dirs are cleaned up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { connectClient, type MoltmeshClient } from '../../sdk/client.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = process.execPath; // vitest runs on the project's Node

export interface StartedLine {
  did: string;
  grpc: string;
  addresses: string[];
}

export class DaemonProcess {
  readonly dataDir: string;
  readonly #ownsDir: boolean;
  #child: ChildProcess | undefined;
  #client: MoltmeshClient | undefined;
  started: StartedLine | undefined;
  /** Every stdout/stderr line, for failure messages. */
  readonly output: string[] = [];
  /** Extra `start` flags; may be changed between restarts (e.g. to come back on the same port). */
  extraArgs: string[];

  constructor(options: { dataDir?: string; args?: string[] } = {}) {
    this.#ownsDir = !options.dataDir;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'mm-e2e-'));
    this.extraArgs = options.args ?? [];
  }

  get did(): string {
    return this.started!.did;
  }

  /** The TCP multiaddr of this daemon on 127.0.0.1, for `connect`. */
  get tcpAddr(): string {
    const a = this.started!.addresses.find((x) => x.includes('/tcp/') && x.startsWith('/ip4/127.0.0.1/'));
    if (!a) throw new Error(`no loopback TCP address in ${this.started!.addresses.join(' ')}`);
    return a;
  }

  get client(): MoltmeshClient {
    this.#client ??= connectClient({ dataDir: this.dataDir });
    return this.#client;
  }

  async start(timeoutMs = 20_000): Promise<StartedLine> {
    const args = [join(ROOT, 'bin/run.ts'), 'start', '--data-dir', this.dataDir, '--port', '0', '--no-ipfs-bootstrap', '--no-mdns', ...this.extraArgs];
    // cwd = the data dir: a moltbook.toml lying in the checkout must not configure the test's daemons.
    const child = spawn(NODE, args, { cwd: this.dataDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOLTMESH_DATA_DIR: '' } });
    this.#child = child;
    const lines = createInterface({ input: child.stdout! });
    createInterface({ input: child.stderr! }).on('line', (l) => this.output.push(`[stderr] ${l}`));
    this.started = await new Promise<StartedLine>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`daemon did not start within ${timeoutMs} ms:\n${this.output.join('\n')}`)), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`daemon exited with ${code} before starting:\n${this.output.join('\n')}`));
      });
      lines.on('line', (line) => {
        this.output.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'daemon started') {
            clearTimeout(timer);
            ok(j as StartedLine);
          }
        } catch {
          // not JSON: keep reading
        }
      });
    });
    return this.started;
  }

  /** SIGKILL: no shutdown code runs, like a power cut for the process (not for the disk). */
  async kill9(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /** Graceful stop through SIGTERM. */
  async stop(): Promise<number | null> {
    return this.#signal('SIGTERM');
  }

  async #signal(sig: NodeJS.Signals): Promise<number | null> {
    this.#client?.close();
    this.#client = undefined;
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  get running(): boolean {
    return !!this.#child && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Stop (if running) and remove the data dir this harness created. */
  async dispose(): Promise<void> {
    await this.kill9();
    if (this.#ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Run the CLI as a user would; resolves with exit code and output. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(NODE, ['bin/run.ts', ...args], { cwd: ROOT, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`CLI ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

export type CliResult = Awaited<ReturnType<typeof runCli>>;

/**
 * Runs `args` until `done` accepts the result or `ms` pass (then fails with the last result). No sleeps: each try is
 * a CLI run, itself a bounded wait.
 */
export async function runCliUntil(args: string[], done: (r: CliResult) => boolean, what: string, ms: number): Promise<CliResult> {
  const deadline = Date.now() + ms;
  let last: CliResult;
  do {
    last = await runCli(args);
    if (done(last)) return last;
  } while (Date.now() < deadline);
  throw new Error(`${what}: not within ${ms} ms; last try (exit ${last.code}):\n${last.stdout}\n${last.stderr}`);
}

/** A long-running CLI command (a subscription): its stdout lines as they arrive, and how it ended. */
export interface CliFollower {
  /** Resolves with the first line (from the start) that satisfies `match`; fails after 15 s or when it exits. */
  line(match: (l: string) => boolean, what: string): Promise<string>;
  lines: string[];
  stderr(): string;
  exited: Promise<{ code: number | null; lines: string[]; stderr: string }>;
  child: ChildProcess;
}

const followers = new Set<CliFollower>();

/** Starts a long-running CLI command; `stopFollowers()` kills whatever is still running. */
export function followCli(args: string[]): CliFollower {
  const child = spawn(NODE, ['bin/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; lines: string[]; stderr: string }>((ok) => {
    child.once('close', (code) => {
      for (const w of waiters) w();
      ok({ code, lines, stderr });
    });
  });
  const f: CliFollower = {
    child,
    lines,
    exited,
    stderr: () => stderr,
    line: (match, what) => new Promise((ok, fail) => {
      const timer = setTimeout(() => done(new Error(`no line with ${what} from ${args[0]} within 15 s:\n${lines.join('\n')}\n${stderr}`)), 15_000);
      const check = () => {
        const l = lines.find(match);
        if (l !== undefined) done(undefined, l);
        else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`${args[0]} exited before a line with ${what}:\n${stderr}`));
      };
      const done = (err?: Error, l?: string) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) fail(err);
        else ok(l!);
      };
      waiters.add(check);
      check();
    }),
  };
  followers.add(f);
  return f;
}

export function stopFollowers(): void {
  for (const f of followers) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  followers.clear();
}
