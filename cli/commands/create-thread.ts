import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { BACKEND_FLAGS, backendOfFlag, threadJson, threadSummaryRows } from '../thread-format.ts';

const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/;

export default class CreateThread extends BaseCommand {
  static summary = 'Start a thread: a replicated, hash-chained log kept by a fixed set of replicas (our DID is one of them).';
  static description = 'Invites the other replicas (through the outbox, like a message); they join by themselves '
    + 'unless their [threads] auto_join is off (then: join-thread). The thread is active once a quorum has joined. '
    + 'Raft tolerates f crashed replicas with n ≥ 2f+1; Tendermint f Byzantine validators with n ≥ 3f+1. '
    + 'Without --replicas the thread is ours alone (no fault tolerance; every entry commits at once).';
  static examples = [
    '<%= config.bin %> create-thread --replicas did:key:z6MkA…,did:key:z6MkB…',
    '<%= config.bin %> create-thread --replicas did:key:z6MkA… --replicas did:key:z6MkB… --backend raft --fault-tolerance 1',
    '<%= config.bin %> create-thread   # just us: an audit log of our own',
  ];

  static flags = {
    replicas: Flags.string({ multiple: true, delimiter: ',', summary: 'Replica DIDs, comma-separated or repeated (ours is added; default: just us).' }),
    backend: Flags.option({ options: BACKEND_FLAGS, summary: 'Consensus: raft (crash faults; default) or tendermint (Byzantine faults).' })(),
    'fault-tolerance': Flags.integer({ min: 1, summary: 'Faults to tolerate, f (default: the most the replica count allows).' }),
  };

  async run() {
    const { flags } = await this.parse(CreateThread);
    const replicas = (flags.replicas ?? []).map((r) => r.trim()).filter((r) => r !== '');
    for (const r of replicas) if (!DID.test(r)) this.usageError(`--replicas: ${JSON.stringify(r)} is not a DID (did:key:z6Mk…)`);
    const { thread } = await (await this.client(flags)).a2a.createThread({
      replicas,
      backend: flags.backend ? backendOfFlag(flags.backend) : 0,
      faultTolerance: flags['fault-tolerance'] ?? 0,
    });
    this.rows(threadSummaryRows(thread!, thread!.creator));
    return { thread: threadJson(thread!) };
  }
}
