import { BaseCommand, formatColumns } from '../../base.ts';
import { nameCells, nameJson } from '../../card-format.ts';

export default class NameList extends BaseCommand {
  static summary = 'The names this daemon holds, with when each claim expires.';
  static examples = ['<%= config.bin %> name list', '<%= config.bin %> name list --json | jq -r \'.names[].name\''];

  async run() {
    const { flags } = await this.parse(NameList);
    const { records } = await (await this.client(flags)).a2a.listNames();
    this.log(records.length ? formatColumns(nameCells(records)) : 'no names claimed');
    return { names: records.map(nameJson) };
  }
}
