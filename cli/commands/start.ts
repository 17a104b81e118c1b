import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';

// How long a graceful stop may take before the process gives up on it.
const STOP_GRACE_MS = 15_000;

export default class Start extends BaseCommand {
  static summary = 'Run the daemon in the foreground (Ctrl-C stops it).';
  static description = 'Reads moltbook.toml from --config, ./moltbook.toml or <data-dir>/moltbook.toml (else built-in defaults); '
    + 'flags override the file. Logs one JSON object per line on stdout, starting with {"msg":"daemon started",…}.';
  static examples = ['<%= config.bin %> start', '<%= config.bin %> start --config moltbook.toml --port 4002 --no-mdns'];
  // start logs JSON lines itself; a --json flag would mean nothing here.
  static enableJsonFlag = false;

  static flags = {
    config: Flags.string({ char: 'c', summary: 'Path to moltbook.toml (must exist).' }),
    port: Flags.integer({ min: 0, max: 65535, summary: 'libp2p port for TCP and QUIC (network.port).' }),
    listen: Flags.string({ multiple: true, summary: 'Listen multiaddr, repeatable (network.listen_addresses).' }),
    'ipfs-bootstrap': Flags.boolean({ allowNo: true, summary: 'Dial the public IPFS bootstrap peers (network.ipfs_bootstrap).' }),
    bootstrap: Flags.string({ multiple: true, summary: 'Bootstrap peer multiaddr with /p2p/, repeatable (network.bootstrap_peers).' }),
    mdns: Flags.boolean({ allowNo: true, summary: 'mDNS discovery on the local network (network.mdns).' }),
    verbose: Flags.boolean({ char: 'v', summary: 'Debug log lines (daemon.verbose).' }),
    inspect: Flags.boolean({ summary: 'Show live task machines in the Stately inspector: logs a 127.0.0.1 URL to open in a browser (needs internet for the inspector UI).' }),
    'inspect-port': Flags.integer({ min: 0, max: 65535, default: 8089, summary: 'Port of the inspector page on 127.0.0.1 (with --inspect; 0 = any free port).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Start);
    const { startDaemon } = await import('../../actors/daemon.ts');
    // Handlers go in before the daemon starts: a signal that arrives right after the "daemon started" line
    // must still mean a graceful stop, not Node's default (die with no cleanup).
    let daemon: { stop(): Promise<void> } | undefined;
    let signals = 0;
    const stop = () => {
      const timer = setTimeout(() => {
        process.stderr.write(`error: daemon did not stop within ${STOP_GRACE_MS / 1000}s; exiting\n`);
        process.exit(1);
      }, STOP_GRACE_MS);
      timer.unref();
      daemon!.stop().catch((e: unknown) => {
        process.stderr.write(`error: stopping the daemon: ${(e as Error).message}\n`);
        process.exitCode = 1;
      });
    };
    const onSignal = (sig: NodeJS.Signals) => {
      // A second Ctrl-C means "now": skip the graceful stop.
      if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
      if (daemon) stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const running = await startDaemon({
      config: flags.config,
      dataDir: flags['data-dir'],
      grpcAddr: flags['grpc-addr'],
      port: flags.port,
      listen: flags.listen,
      ipfsBootstrap: flags['ipfs-bootstrap'],
      bootstrap: flags.bootstrap,
      mdns: flags.mdns,
      verbose: flags.verbose || undefined,
      ...(flags.inspect ? { inspectPort: flags['inspect-port'] } : {}),
    });
    daemon = running;
    if (signals > 0) stop(); // signalled while starting
    // Ends on a signal, the Stop RPC (`moltmesh-daemon stop`) or a fatal error inside the daemon.
    await running.stopped;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Normally nothing is left and Node exits now; a handle some library forgot to close must not keep a stopped daemon alive.
    setTimeout(() => process.exit(), 2_000).unref();
  }
}
