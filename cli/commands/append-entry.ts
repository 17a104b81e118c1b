import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../base.ts';
import { isJsonType, shortHash } from '../thread-format.ts';

/** How long an append may take before a terminal is told what it waits for. */
const QUIET_MS = 1000;

export default class AppendEntry extends BaseCommand {
  static summary = 'Sign an entry and append it to a thread; wait until a quorum of replicas has committed it.';
  static description = 'Prints where it landed: "Height 12  Entry 0  Hash 9f2c41…  (committed)" (the block\'s height, '
    + 'the entry\'s place in it and the block hash). With --accept-only it returns once this daemon has durably '
    + 'accepted the entry: "Accepted ent_…  (not committed yet)". The payload is bytes with a content type: --payload '
    + 'and --payload-file are JSON (checked here) unless --content-type says otherwise; --text is text/plain. '
    + 'Appending the same --entry-id again never adds a second entry.';
  static examples = [
    '<%= config.bin %> append-entry --thread thr_01jz… --kind decision --payload \'{"vote":"approve"}\'',
    '<%= config.bin %> append-entry --thread thr_01jz… --kind note --text "deployed v1.2" --entry-id deploy-v1.2',
    '<%= config.bin %> append-entry --thread thr_01jz… --kind report --payload-file report.pdf --content-type application/pdf',
  ];

  static flags = {
    thread: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
    kind: Flags.string({ required: true, summary: 'What the entry is: lowercase letters, digits, . _ - (e.g. decision, vote, tool-call).' }),
    payload: Flags.string({ summary: 'The payload: a JSON document, e.g. \'{"vote":"approve"}\'.' }),
    'payload-file': Flags.string({ summary: 'The payload: this file\'s bytes ("-": standard input).' }),
    text: Flags.string({ summary: 'The payload: this text (content type text/plain).' }),
    'content-type': Flags.string({ summary: 'The payload\'s media type (default application/json; text/plain with --text).' }),
    'entry-id': Flags.string({ summary: 'Choose the entry id (1-128 of A-Z a-z 0-9 . _ : -): retrying with it never duplicates.' }),
    'accept-only': Flags.boolean({ summary: 'Return once accepted here, before the replicas commit it.' }),
  };

  async run() {
    const { flags } = await this.parse(AppendEntry);
    const given = (['payload', 'payload-file', 'text'] as const).filter((f) => flags[f] !== undefined);
    if (given.length !== 1) this.usageError(given.length ? `give one payload, not ${given.map((f) => `--${f}`).join(' and ')}` : 'no payload: give --payload \'{json}\', --payload-file f or --text t');
    const contentType = flags['content-type'] ?? (flags.text !== undefined ? 'text/plain' : 'application/json');
    const payload = this.payload(flags, contentType);

    const client = await this.client(flags);
    const waiting = process.stderr.isTTY && !flags['accept-only']
      ? setTimeout(() => process.stderr.write('waiting for a quorum of replicas…'), QUIET_MS)
      : undefined;
    let res;
    try {
      res = await client.a2a.appendEntry({
        threadId: flags.thread, kind: flags.kind, payload, contentType, entryId: flags['entry-id'] ?? '', returnOnAccept: flags['accept-only'],
      });
    } finally {
      if (waiting) {
        clearTimeout(waiting);
        process.stderr.write('\r\x1b[2K');
      }
    }
    if (res.committed) this.log(`Height ${res.height}  Entry ${res.index}  Hash ${shortHash(res.blockHash)}  (committed)`);
    else this.log(`Accepted ${res.entryId}  (not committed yet)`);
    return { threadId: flags.thread, ...res };
  }

  /** The payload's bytes; JSON content is checked to be JSON (a typo would otherwise be signed into the chain). */
  private payload(flags: { payload?: string; 'payload-file'?: string; text?: string }, contentType: string): Buffer {
    if (flags.text !== undefined) return Buffer.from(flags.text);
    let bytes: Buffer;
    let what = '--payload';
    if (flags.payload !== undefined) bytes = Buffer.from(flags.payload);
    else {
      const file = flags['payload-file']!;
      what = `--payload-file ${file}`;
      try {
        bytes = readFileSync(file === '-' ? 0 : file);
      } catch (e) {
        this.usageError(`--payload-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    if (isJsonType(contentType)) {
      try {
        JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      } catch (e) {
        // The parser's message quotes the offending character, which in a binary file may be a control character.
        const why = (e as Error).message.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
        const shown = flags.payload !== undefined ? `: ${flags.payload}` : '';
        this.usageError(`${what}: not valid JSON (${why})${shown}; for other data give --content-type (or --text)`);
      }
    }
    return bytes;
  }
}
