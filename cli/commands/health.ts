import { BaseCommand, humanDuration } from '../base.ts';
import type { ActorHealth } from '../../proto/gen/moltmesh/v1/diag.ts';

// ActorStatus enum values as the words users see (the generated enum is a runtime import we avoid at start-up).
const STATUS = ['unspecified', 'running', 'restarting', 'stopped', 'failed'];

interface TreeNode { path: string; status: string; restarts: number; lastError: string; children: TreeNode[] }

export default class Health extends BaseCommand {
  static summary = 'Daemon health; --json adds the supervision tree.';
  static description = 'Human output lists actors that are not running; --json includes the whole tree with restart counts.';
  static examples = ['<%= config.bin %> health', '<%= config.bin %> health --json'];

  async run() {
    const { flags } = await this.parse(Health);
    const h = await (await this.client(flags)).diag.health();
    const tree = h.tree ? toNode(h.tree) : undefined;
    const all = tree ? flatten(tree) : [];
    const unwell = all.filter((a) => a.status !== 'running' || a.restarts > 0);
    const env = h.envelopes ?? { received: 0, sent: 0, rejected: {} };
    const rejected = Object.entries(env.rejected);
    const rejectedTotal = rejected.reduce((n, [, v]) => n + v, 0);
    this.rows([
      ['Version', h.version],
      ['DID', `${h.did} (you)`],
      ['Peers', `${h.peers} connected`],
      ['Uptime', humanDuration(h.uptimeMs)],
      ['Actors', `${all.filter((a) => a.status === 'running').length} running, ${all.length - all.filter((a) => a.status === 'running').length} not running`],
      ['Envelopes', `${env.received} received, ${env.sent} sent, ${rejectedTotal} rejected`
        + (rejected.length ? ` (${rejected.map(([k, v]) => `${k} ${v}`).join(', ')})` : '')],
    ]);
    for (const a of unwell) {
      this.log(`  ${a.path}  ${a.status}  restarts ${a.restarts}${a.lastError ? `  last error: ${a.lastError}` : ''}`);
    }
    return { version: h.version, did: h.did, uptimeMs: h.uptimeMs, peers: h.peers, envelopes: env, tree: tree ?? null };
  }
}

function toNode(a: ActorHealth): TreeNode {
  return { path: a.path, status: STATUS[a.status] ?? String(a.status), restarts: a.restarts, lastError: a.lastError, children: a.children.map(toNode) };
}

function flatten(n: TreeNode): TreeNode[] {
  return [n, ...n.children.flatMap(flatten)];
}
