import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { cardJson, cardRows } from '../card-format.ts';

export default class GetAgentCard extends BaseCommand {
  static summary = "An agent's card from the DHT, its signature verified: name, capabilities, skills, addresses.";
  static examples = [
    '<%= config.bin %> get-agent-card did:key:z6MkAbc…',
    '<%= config.bin %> get-agent-card --did did:key:z6MkAbc… --json | jq .skills',
  ];

  static args = {
    did: Args.string({ description: 'The agent\'s DID (did:key:z6Mk…); or --did' }),
  };

  static flags = {
    did: Flags.string({ summary: 'The agent\'s DID (instead of the argument).' }),
  };

  async run() {
    const { args, flags } = await this.parse(GetAgentCard);
    if (args.did && flags.did && args.did !== flags.did) this.usageError('give the DID once: as the argument or as --did');
    const did = args.did ?? flags.did;
    if (!did) this.usageError('which agent? give its DID: get-agent-card did:key:z6Mk…');
    const client = await this.client(flags);
    const [{ card }, self] = await Promise.all([
      client.a2a.getAgentCard({ did }),
      client.a2a.getIdentity().then((r) => r.did, () => ''),
    ]);
    this.rows(cardRows(card!, self));
    return cardJson(card!);
  }
}
