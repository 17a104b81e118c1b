import { BaseCommand, tildify } from '../base.ts';

export default class Identity extends BaseCommand {
  static summary = "This agent's DID and public key (no daemon needed).";
  static description = 'Reads the key in <data-dir>/identity.key, creating it on first use exactly as the daemon would, '
    + 'so the DID shown is the one the daemon will use.';
  static examples = ['<%= config.bin %> identity', '<%= config.bin %> identity --json'];

  async run() {
    const { flags } = await this.parse(Identity);
    const { dataDir } = await this.resolveTarget(flags);
    const { readIdentity } = await import('../../actors/identity/key-file.ts');
    const id = await readIdentity(dataDir);
    const publicKeyHex = Buffer.from(id.publicKey).toString('hex');
    if (id.created) this.logToStderr(`created a new identity in ${id.keyPath}`);
    this.rows([
      ['DID', id.did],
      ['Public key', `ed25519:${publicKeyHex}`],
      ['Peer ID', id.peerId.toString()],
      ['Data dir', tildify(dataDir)],
    ]);
    return { did: id.did, publicKeyHex, peerId: id.peerId.toString(), dataDir, keyPath: id.keyPath, created: id.created };
  }
}
