import { Flags } from '@oclif/core';
import { BaseCommand, plural } from '../base.ts';
import { cardJson, cardLine } from '../card-format.ts';

/** The daemon's longest search (FindAgents refuses more). */
const MAX_TIMEOUT_MS = 120_000;

export default class FindAgents extends BaseCommand {
  static summary = 'Search the DHT for agents offering a capability; print each verified Agent Card as it is found.';
  static description = 'One line per agent, as it arrives: DID, name (or "(unnamed)"), capabilities; our own DID is '
    + 'marked "(you)". The search ends once the DHT has answered, after --limit agents or at --timeout, whichever '
    + 'comes first; then the count is printed. Exit 0 also when none is found. With --json, one document '
    + '{ capability, agents: [cards] } at the end.';
  static examples = [
    '<%= config.bin %> find-agents --capability text-generation',
    '<%= config.bin %> find-agents --capability a2a:v1:cap:embedding --limit 5 --timeout 30s --json | jq -r \'.agents[].did\'',
  ];

  static flags = {
    capability: Flags.string({ required: true, summary: 'Capability name, e.g. text-generation (or a2a:v1:cap:text-generation).' }),
    limit: Flags.integer({ min: 1, max: 1000, summary: 'Stop after this many agents (default 20).' }),
    timeout: Flags.string({ summary: 'Search for at most this long, e.g. "500ms", "10s", "1m" (default 10s; at most 2m).' }),
  };

  async run() {
    const { flags } = await this.parse(FindAgents);
    const { capabilityProblem, CAPABILITY_PREFIX } = await import('../../actors/capability.ts');
    const problem = capabilityProblem(flags.capability);
    if (problem) this.usageError(`--capability: ${problem}`);
    const capability = flags.capability.startsWith(CAPABILITY_PREFIX) ? flags.capability : CAPABILITY_PREFIX + flags.capability;
    let timeoutMs = 0;
    if (flags.timeout !== undefined) {
      const { parseDuration } = await import('../../runtime/config.ts');
      const parsed = parseDuration(flags.timeout);
      if (parsed === undefined || parsed === 0) this.usageError(`--timeout: expected a duration like "500ms", "10s" or "1m", got ${JSON.stringify(flags.timeout)}`);
      if (parsed > MAX_TIMEOUT_MS) this.usageError(`--timeout: at most 2m, got ${flags.timeout}`);
      timeoutMs = parsed;
    }

    const json = this.jsonEnabled();
    const client = await this.client(flags);
    // Our DID marks our own card; asked for once, alongside the search (a failure only loses the mark).
    const self = json ? Promise.resolve('') : client.a2a.getIdentity().then((r) => r.did, () => '');
    // The daemon ends the search itself at the timeout; the call's deadline only guards against a daemon that does not.
    const stream = client.a2a.findAgents({ capability, limit: flags.limit ?? 0, timeoutMs }, { timeoutMs: (timeoutMs || 10_000) + 10_000 });
    const stop = () => stream.cancel();
    process.once('SIGINT', stop);
    process.stderr.write(`# searching DHT for ${capability}...\n`);
    const agents = [];
    const seen = new Set<string>();
    try {
      for await (const { card } of stream) {
        if (!card || seen.has(card.did)) continue;
        seen.add(card.did);
        agents.push(card);
        // Printed as it arrives (this.log would wait for nothing either, but stays muted under --json).
        if (!json) process.stdout.write(`${cardLine(card, await self)}\n`);
      }
    } finally {
      process.off('SIGINT', stop);
    }
    this.log(agents.length ? `# ${plural(agents.length, 'agent')} found` : '# no agents found');
    return { capability, agents: agents.map(cardJson) };
  }
}
