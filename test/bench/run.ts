// `npm run bench`: every benchmark, figures printed (median, p99, ratio against a raw baseline from the same run).
import { benchEventStore } from './event-store.bench.ts';
import { benchCli } from './cli.bench.ts';
import { benchMessaging } from './messaging.bench.ts';
import { benchTasks } from './tasks.bench.ts';
import { benchDiscovery } from './discovery.bench.ts';
import { benchThreads } from './threads.bench.ts';

const only = process.argv[2];
const benches: [string, () => Promise<void>][] = [
  ['event-store', benchEventStore],
  ['cli', benchCli],
  ['messaging', benchMessaging],
  ['tasks', benchTasks],
  ['discovery', benchDiscovery],
  ['threads', benchThreads],
];
console.log(`moltmesh benchmarks — node ${process.version}, ${new Date().toISOString()}`);
for (const [name, run] of benches) {
  if (only && only !== name) continue;
  await run();
}
