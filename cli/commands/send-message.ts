import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';

export default class SendMessage extends BaseCommand {
  static summary = 'Send a message to an agent by DID (queued while offline).';
  static examples = [
    '<%= config.bin %> send-message --to did:key:z6MkAbc… --message "Hey, available for a task?"',
    '<%= config.bin %> send-message --to did:key:z6MkAbc… --data-file report.pdf --content-type application/pdf',
  ];

  static flags = {
    to: Flags.string({ required: true, summary: 'Recipient DID (did:key:z6Mk…).' }),
    message: Flags.string({ char: 'm', summary: 'Text body.', exactlyOne: ['message', 'data-file'] }),
    'data-file': Flags.string({ summary: 'Send the bytes of this file instead of text.', exactlyOne: ['message', 'data-file'] }),
    'content-type': Flags.string({ summary: 'MIME type (default text/plain, or application/octet-stream with --data-file).' }),
    ttl: Flags.string({ summary: 'Give up after this long undelivered, e.g. "1h" (default: the daemon\'s messaging.message_ttl).' }),
  };

  async run() {
    const { flags } = await this.parse(SendMessage);
    let ttlMs = 0;
    if (flags.ttl !== undefined) {
      const { parseDuration } = await import('../../runtime/config.ts');
      const parsed = parseDuration(flags.ttl);
      if (!parsed) this.usageError(`--ttl: expected a duration like "1h", "90s" or "500ms", got ${JSON.stringify(flags.ttl)}`);
      ttlMs = parsed;
    }
    const data = flags['data-file'] ? await readFile(flags['data-file']) : undefined;
    const res = await (await this.client(flags)).a2a.sendMessage({
      to: flags.to, text: flags.message ?? '', data, contentType: flags['content-type'] ?? '', ttlMs,
    });
    this.rows([
      ['Message ID', res.messageId],
      ['Queued', res.queued ? 'true (peer offline; will retry)' : 'false (delivered live)'],
    ]);
    return res;
  }
}
