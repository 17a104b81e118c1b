// CLI cold start of a unary command (`health` against a running daemon) beside bare `node -e 0`.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { DaemonProcess } from '../support/daemon-process.ts';
import { heading, row, summarize } from './stats.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const RUNS = 15;

/** Wall time of one command, started the way a user starts it (the launcher, or bare node for the baseline). */
function time(command: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t;
}

export async function benchCli(): Promise<void> {
  heading(`CLI cold start (${RUNS} runs each, median)`);
  const d = new DaemonProcess();
  try {
    await d.start();
    const launcher = join(ROOT, 'bin/moltmesh-daemon');
    time(launcher, ['health', '--data-dir', d.dataDir]); // warm the compile cache, as a user's second run would
    const cli = summarize(Array.from({ length: RUNS }, () => time(launcher, ['health', '--data-dir', d.dataDir])));
    const bare = summarize(Array.from({ length: RUNS }, () => time(process.execPath, ['-e', '0'])));
    row('`moltmesh-daemon health` (unary gRPC) ms', cli.p50, bare.p50, 'ms', '≤ 300 ms');
  } finally {
    await d.dispose();
  }
}
