import { Flags } from '@oclif/core';
import { BaseCommand, plural } from '../base.ts';
import { shortHash } from '../thread-format.ts';

export default class VerifyThread extends BaseCommand {
  static summary = 'Recompute a thread\'s chain here: every block hash, parent link, entries root and entry signature.';
  static description = 'Prints "Verified 12 blocks, 31 entries, chain head 9f2c41…" (compare the head across '
    + 'replicas), or "error: chain broken at height H: <what failed>" on stderr with exit status 1. '
    + 'With --json the report is printed in both cases ({ ok, blocks, entries, headHash, firstBadHeight, error }).';
  static examples = ['<%= config.bin %> verify-thread --id thr_01jz…', '<%= config.bin %> verify-thread --id thr_01jz… --json | jq -r .headHash'];

  static flags = {
    id: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
  };

  async run() {
    const { flags } = await this.parse(VerifyThread);
    const r = await (await this.client(flags)).a2a.verifyThread({ threadId: flags.id });
    if (r.ok) this.log(`Verified ${plural(r.blocks, 'block')}, ${r.entries} ${r.entries === 1 ? 'entry' : 'entries'}, chain head ${shortHash(r.headHash)}`);
    else {
      process.stderr.write(`error: chain broken at height ${r.firstBadHeight ?? '?'}: ${r.error || 'no reason given'}\n`);
      process.exitCode = 1;
    }
    return { threadId: flags.id, ...r };
  }
}
