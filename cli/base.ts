// What every command shares: the global flags, a lazily connected gRPC client, one error format
// (`error: <message>` on stderr, exit 1; 2 for bad usage; never a stack trace) and human formatting helpers.
//
// Start-up cost matters (target ≤ 300 ms per command): this file and the command files import only @oclif/core
// and node: built-ins at the top; the SDK, gRPC and config modules are imported inside run().
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, Errors, Flags } from '@oclif/core';
import type { MoltmeshClient, ServerStream } from '../sdk/client.ts';

export interface GlobalFlags {
  'data-dir'?: string;
  'grpc-addr'?: string;
  json?: boolean;
}

/** Where the daemon is: the data dir (keys, token) and the gRPC address. */
export interface Target { dataDir: string; grpcAddr: string }

export abstract class BaseCommand extends Command {
  // --json: the command's return value is printed as the one JSON document on stdout; this.log() is muted.
  static enableJsonFlag = true;

  static baseFlags = {
    'data-dir': Flags.string({
      env: 'MOLTMESH_DATA_DIR', helpGroup: 'GLOBAL',
      summary: 'Daemon data directory (default ~/.moltmesh).',
    }),
    'grpc-addr': Flags.string({
      helpGroup: 'GLOBAL',
      summary: 'Daemon gRPC address: unix:<path> or host:port (default unix:<data-dir>/a2a.sock).',
    }),
  };

  private conn: MoltmeshClient | undefined;

  /**
   * Finds the daemon: flags first; else the moltbook.toml the daemon would read (./ or <data-dir>/), so a daemon
   * configured with another data_dir or grpc_addr is found without repeating them; else the defaults.
   */
  protected async resolveTarget(flags: GlobalFlags): Promise<Target> {
    const { defaultDataDir, loadDaemonConfigSync } = await import('../actors/daemon-config.ts');
    const dataDir = defaultDataDir(flags['data-dir']);
    const fallback: Target = { dataDir, grpcAddr: flags['grpc-addr'] ?? `unix:${join(dataDir, 'a2a.sock')}` };
    if (!existsSync('moltbook.toml') && !existsSync(join(dataDir, 'moltbook.toml'))) return fallback;
    try {
      const { daemon } = loadDaemonConfigSync({ dataDir: flags['data-dir'], grpcAddr: flags['grpc-addr'] }).config;
      return { dataDir: daemon.data_dir, grpcAddr: daemon.grpc_addr };
    } catch {
      // A broken file cannot have started a daemon: use the defaults and let the connection error speak.
      return fallback;
    }
  }

  /** Connects to the daemon (imported lazily: grpc-js and the generated stubs are most of a command's start-up). */
  protected async client(flags: GlobalFlags): Promise<MoltmeshClient> {
    const target = await this.resolveTarget(flags);
    const { connectClient } = await import('../sdk/client.ts');
    this.conn = connectClient({ dataDir: target.dataDir, grpcAddr: target.grpcAddr });
    return this.conn;
  }

  /**
   * Prints a live server stream, one line per item (`line` may skip one with undefined), until it ends, Ctrl-C
   * or a daemon shutdown (a normal end for a subscriber). `notice` goes to stderr even with --json: stdout carries
   * only the items. Resolves with how it ended.
   */
  protected async follow<T>(stream: ServerStream<T>, notice: string, line: (item: T) => string | undefined): Promise<'ended' | 'interrupted' | 'daemon-stopped'> {
    let interrupted = false;
    const stop = () => {
      interrupted = true;
      stream.cancel();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.stderr.write(`${notice} (Ctrl-C to stop)\n`);
    try {
      for await (const item of stream) {
        const text = line(item);
        if (text !== undefined) process.stdout.write(`${text}\n`);
      }
      return interrupted ? 'interrupted' : 'ended';
    } catch (e) {
      if ((e as { code?: string }).code !== 'UNAVAILABLE' || /not running/.test((e as Error).message)) throw e;
      process.stderr.write('daemon stopped; subscription ended\n');
      return 'daemon-stopped';
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  /** Bad usage that the flag parser cannot see (exit 2, like oclif's own parse errors). */
  protected usageError(message: string): never {
    throw new Errors.CLIError(message, { exit: 2 });
  }

  /** Aligned `Label  value` lines, as on the product page. */
  protected rows(pairs: Array<[string, string | number | boolean]>): void {
    this.log(formatRows(pairs));
  }

  protected async catch(err: Error): Promise<any> {
    const e = err as Error & { oclif?: { exit?: number }; code?: unknown };
    // this.exit(n) travels as an error; it is not one.
    if (e.code === 'EEXIT') {
      process.exitCode = e.oclif?.exit ?? 0;
      return;
    }
    const d = describeError(err);
    process.exitCode = d.exit;
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ error: { code: d.code, message: d.message } })}\n`);
    process.stderr.write(`error: ${d.message}\n`);
    if (process.env.DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
  }

  protected async finally(err: Error | undefined): Promise<any> {
    this.conn?.close();
    return super.finally(err);
  }
}

export interface ErrorDescription { code: string; message: string; exit: number }

/** One line (or a few) a user can act on, a code for --json, and the exit status. */
export function describeError(err: unknown): ErrorDescription {
  const e = err as { message?: unknown; code?: unknown; oclif?: { exit?: number } };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // Flag and argument errors from oclif's parser carry exit 2.
  if (e?.oclif?.exit === 2) return { code: 'USAGE', message, exit: 2 };
  // The SDK's DaemonError and our ApiError name a gRPC status ("UNAVAILABLE"); its message is already for humans
  // ("daemon not running at unix:…"). Node's system errors name an errno ("ENOENT").
  const code = typeof e?.code === 'string' && /^[A-Z_]+$/.test(e.code) ? e.code : 'ERROR';
  return { code, message, exit: 1 };
}

/** Values with several lines (a list of addresses) continue under the value column. */
export function formatRows(pairs: Array<[string, string | number | boolean]>): string {
  const width = Math.max(0, ...pairs.map(([label]) => label.length));
  const indent = ' '.repeat(width + 2);
  return pairs.map(([label, value]) => `${label.padEnd(width)}  ${String(value).split('\n').join(`\n${indent}`)}`).join('\n');
}

/** Rows of cells as aligned columns (two spaces apart; the last column is not padded). */
export function formatColumns(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** "/home/me/.moltmesh" → "~/.moltmesh", as users write it. */
export function tildify(path: string): string {
  const home = homedir();
  return path === home ? '~' : path.startsWith(`${home}/`) ? `~${path.slice(home.length)}` : path;
}

/** "38ms", "0.42ms": sub-10 ms latencies keep a decimal, since on a LAN they are all under 10. */
export const ms = (n: number): string => (n < 10 ? `${Number(n.toFixed(2))}ms` : `${Math.round(n)}ms`);

/** "1 unread message", "2 unread messages". */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** 15128000 → "4h 12m 8s"; under a second → "0s"; days when there are any. */
export function humanDuration(millis: number): string {
  let s = Math.floor(millis / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join(' ');
}

/** Local wall-clock time with milliseconds: "12:00:01.123". */
export function clock(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A message body on one line, quoted and escaped. */
export const quote = (text: string): string => JSON.stringify(text);

/** One inbox message on one line: `msg_01…  from did:key:z6Mk…  "text"` (binary bodies as a size and type). */
export function messageLine(m: { id: string; from: string; text: string; data: Uint8Array; contentType: string }): string {
  const body = m.data.length ? `<${m.data.length} bytes ${m.contentType || 'application/octet-stream'}>` : quote(m.text);
  return `${m.id}  from ${m.from}  ${body}`;
}

/** An inbox message for --json: the body as text, or base64 under `dataBase64`. */
export function messageJson<M extends { data: Uint8Array }>(m: M): Omit<M, 'data'> & { dataBase64?: string } {
  const { data, ...rest } = m;
  return data.length ? { ...rest, dataBase64: Buffer.from(data).toString('base64') } : rest;
}
