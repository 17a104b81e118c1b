import { BaseCommand } from '../base.ts';

export default class WithdrawCard extends BaseCommand {
  static summary = 'Stop advertising our capabilities: withdraw our Agent Card from the DHT.';
  static examples = ['<%= config.bin %> withdraw-card'];

  async run() {
    const { flags } = await this.parse(WithdrawCard);
    await (await this.client(flags)).a2a.withdrawCard();
    this.log('card withdrawn: capabilities no longer advertised');
    return { withdrawn: true };
  }
}
