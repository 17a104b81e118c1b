// Two daemons as child processes, A connected to B, for a benchmark run: started, and on every way out — the run's
// end, its failure (with each daemon's last output lines), Ctrl-C — cleaned up, data dirs included.
import { DaemonProcess } from '../support/daemon-process.ts';

export async function withDaemonPair<T>(
  run: (a: DaemonProcess, b: DaemonProcess, onCleanup: (fn: () => void) => void) => Promise<T>,
): Promise<T> {
  const a = new DaemonProcess();
  const b = new DaemonProcess();
  const cleanups: (() => void)[] = [];
  // Ctrl-C mid-run would skip `finally`: kill the daemons and remove their data dirs first.
  let aborted = false;
  const interrupted = (sig: NodeJS.Signals) => {
    aborted = true;
    void Promise.all([a.dispose(), b.dispose()]).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    await Promise.all([a.start(), b.start()]);
    await a.client.diag.connect({ multiaddr: b.tcpAddr });
    return await run(a, b, (fn) => cleanups.push(fn));
  } catch (err) {
    if (aborted) await new Promise(() => {}); // calls fail because we are killing the daemons; exit comes from `interrupted`
    for (const [name, d] of [['A', a], ['B', b]] as const) {
      if (d.output.length) console.error(`--- daemon ${name} output (last 20 lines)\n${d.output.slice(-20).join('\n')}`);
    }
    throw err;
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    for (const fn of cleanups) fn();
    await Promise.all([a.dispose(), b.dispose()]);
  }
}
