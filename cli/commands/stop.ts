import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BaseCommand } from '../base.ts';

// How long to wait for the daemon to finish stopping after Shutdown returns.
const WAIT_MS = 15_000;

export default class Stop extends BaseCommand {
  static summary = 'Stop the daemon gracefully and wait until it has exited.';
  static examples = ['<%= config.bin %> stop'];

  async run() {
    const { flags } = await this.parse(Stop);
    const target = await this.resolveTarget(flags);
    const client = await this.client(flags);
    const { dataDir, did } = await client.diag.info();
    await client.diag.shutdown();
    // Shutdown returns before the daemon exits. Wait until it stops answering and has released its data-dir lock
    // (actors/daemon.ts removes <data_dir>/daemon.pid last), so that `stop && start` works.
    const { connectClient } = await import('../../sdk/client.ts');
    const lock = join(dataDir, 'daemon.pid');
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (!existsSync(lock) && !(await answers(connectClient({ dataDir: target.dataDir, grpcAddr: target.grpcAddr })))) break;
      if (Date.now() > deadline) throw new Error(`the daemon at ${target.grpcAddr} has not stopped ${WAIT_MS / 1000}s after Shutdown`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.rows([['Stopped', did], ['gRPC', target.grpcAddr]]);
    return { stopped: true, did, grpcAddr: target.grpcAddr };
  }
}

async function answers(probe: { diag: { version(req?: object, opts?: { timeoutMs?: number }): Promise<unknown> }; close(): void }): Promise<boolean> {
  try {
    await probe.diag.version({}, { timeoutMs: 500 });
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== 'UNAVAILABLE';
  } finally {
    probe.close();
  }
}
