import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { cardJson, cardRows, parseSkills } from '../card-format.ts';
import type { Skill } from '../../proto/gen/moltmesh/v1/cards.ts';

export default class PublishCard extends BaseCommand {
  static summary = 'Sign and publish our Agent Card to the DHT, advertising its capabilities; prints the card.';
  static description = 'What is not given comes from moltbook.toml [agent] (name, description, capabilities); a '
    + 'given --capability list replaces the configured one. A name on the card must be one this daemon holds '
    + '(see "name claim"). Publishing again replaces the card (a higher Seq).';
  static examples = [
    '<%= config.bin %> publish-card',
    '<%= config.bin %> publish-card --name swift-falcon --description "Summaries on demand" --capability text-generation --capability embedding',
    '<%= config.bin %> publish-card --skill-file skills.json   # [{"id":"text-generation","name":"Text generation","inputSchema":{…}}]',
  ];

  static flags = {
    name: Flags.string({ summary: 'A name this daemon holds (name claim), e.g. swift-falcon; default: [agent] name.' }),
    description: Flags.string({ summary: 'One line about what this agent does; default: [agent] description.' }),
    capability: Flags.string({ multiple: true, summary: 'A capability to advertise, e.g. text-generation (repeat for several); default: [agent] capabilities.' }),
    'skill-file': Flags.string({ summary: 'A JSON file: an array of skills {id, name, description, inputSchema, outputSchema}.' }),
  };

  async run() {
    const { flags } = await this.parse(PublishCard);
    const capabilities = flags.capability ?? [];
    if (capabilities.length) {
      const { capabilityProblem } = await import('../../actors/capability.ts');
      const problem = capabilities.map(capabilityProblem).find((p) => p !== undefined);
      if (problem) this.usageError(`--capability: ${problem}`);
    }
    if (flags.name) {
      const { nameProblem, NAME_RULE } = await import('../../actors/discovery/names.ts');
      const problem = nameProblem(flags.name);
      if (problem) this.usageError(`--name: ${JSON.stringify(flags.name)} is not a name: ${problem}; ${NAME_RULE}`);
    }
    let skills: Skill[] = [];
    if (flags['skill-file'] !== undefined) {
      let text: string;
      try {
        text = readFileSync(flags['skill-file'], 'utf8');
      } catch (e) {
        this.usageError(`--skill-file: cannot read ${flags['skill-file']}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      try {
        skills = parseSkills(text);
      } catch (e) {
        this.usageError(`--skill-file ${flags['skill-file']}: ${(e as Error).message}`);
      }
    }
    const { card } = await (await this.client(flags)).a2a.publishCard({
      name: flags.name ?? '', description: flags.description ?? '', capabilities, skills,
    });
    this.rows(cardRows(card!, card!.did));
    return cardJson(card!);
  }
}
