import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import type { AppendEntryBatchItem, AppendEntryResponse } from '../../proto/gen/moltmesh/v1/threads.ts';
import { BaseCommand } from '../base.ts';
import { shortHash } from '../thread-format.ts';

/** What one AppendEntryBatch call may carry: the daemon's limit in entries, and bytes well under gRPC's 4 MiB. */
const MAX_ENTRIES_PER_CALL = 1_000;
const MAX_BYTES_PER_CALL = 3 * 1024 * 1024;

/** One line of the file, as given. */
interface Line {
  kind?: unknown;
  payload?: unknown;
  text?: unknown;
  content_type?: unknown;
  entry_id?: unknown;
}

export default class AppendEntries extends BaseCommand {
  static summary = 'Append many entries to a thread from a JSON Lines file, in as few calls as fit; wait until all are committed.';
  static description = 'One entry per line: {"kind": "decision", "payload": <any JSON>} or {"kind": "note", "text": "…"}, '
    + 'optionally with "content_type" (for text) and "entry_id". Every line is checked before anything is sent (a bad '
    + 'line is reported with its number and nothing is appended); the entries then go in AppendEntryBatch calls of up to '
    + '1,000 entries, one after another, in file order. Prints "Appended 2500 entries in 3 calls: heights 12–14 '
    + '(committed)". Give every line an entry_id to make a rerun after a failure safe: ids already in the thread are '
    + 'answered from it, not appended again.';
  static examples = [
    '<%= config.bin %> append-entries --thread thr_01jz… --file decisions.jsonl',
    'cat audit.jsonl | <%= config.bin %> append-entries --thread thr_01jz… --file - --json',
  ];

  static flags = {
    thread: Flags.string({ required: true, summary: 'Thread id (thr_…).' }),
    file: Flags.string({ required: true, summary: 'JSON Lines file of entries ("-": standard input).' }),
    'accept-only': Flags.boolean({ summary: 'Return once accepted here, before the replicas commit them.' }),
  };

  async run() {
    const { flags } = await this.parse(AppendEntries);
    // Loaded here, not at the top: every CLI command loads this file, and the chain module adds to their start-up.
    const entries = this.entries(flags.file, await import('../../machines/chain.ts'));
    const calls = split(entries);
    const client = await this.client(flags);
    const results: AppendEntryResponse[] = [];
    const progress = process.stderr.isTTY && calls.length > 1;
    try {
      for (const call of calls) {
        const res = await client.a2a.appendEntryBatch({ threadId: flags.thread, entries: call, returnOnAccept: flags['accept-only'] });
        results.push(...res.results);
        if (progress) process.stderr.write(`\r\x1b[2Kappended ${results.length} of ${entries.length}…`);
      }
    } finally {
      if (progress) process.stderr.write('\r\x1b[2K');
    }
    const n = `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`;
    const inCalls = `in ${calls.length} ${calls.length === 1 ? 'call' : 'calls'}`;
    if (results.every((r) => r.committed)) {
      // (A loop, not Math.min(...): a file may hold more entries than a call may have arguments.)
      let [low, high] = [Infinity, -Infinity];
      for (const { height } of results) [low, high] = [Math.min(low, height), Math.max(high, height)];
      const where = low === high ? `height ${low}, hash ${shortHash(results[results.length - 1]!.blockHash)}` : `heights ${low}–${high}`;
      this.log(`Appended ${n} ${inCalls}: ${where}  (committed)`);
    } else {
      this.log(`Accepted ${n} ${inCalls}  (${results.filter((r) => !r.committed).length} not committed yet)`);
    }
    return { threadId: flags.thread, results };
  }

  /** Every line checked and turned into a batch item; the first bad one is a usage error naming its line. */
  private entries(file: string, chain: typeof import('../../machines/chain.ts')): AppendEntryBatchItem[] {
    const { apiFieldName, ChainError, checkEntry } = chain;
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (e) {
      this.usageError(`--file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const out: AppendEntryBatchItem[] = [];
    const seen = new Map<string, number>(); // entry_id → its line
    text.split('\n').forEach((raw, i) => {
      if (raw.trim() === '') return;
      const bad = (why: string): never => this.usageError(`${file} line ${i + 1}: ${why}`);
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch (e) {
        return bad(`not JSON (${(e as Error).message})`);
      }
      if (typeof line !== 'object' || line === null || Array.isArray(line)) return bad('not a JSON object');
      const unknown = Object.keys(line).filter((k) => !['kind', 'payload', 'text', 'content_type', 'entry_id'].includes(k));
      if (unknown.length > 0) bad(`unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (fields: kind, payload | text, content_type, entry_id)`);
      if (typeof line.kind !== 'string' || line.kind === '') bad('"kind" is required, e.g. "decision"');
      if ((line.payload === undefined) === (line.text === undefined)) bad('give one of "payload" (any JSON) or "text" (a string)');
      if (line.text !== undefined && typeof line.text !== 'string') bad('"text" must be a string');
      if (line.content_type !== undefined && (typeof line.content_type !== 'string' || line.payload !== undefined)) {
        bad('"content_type" is a string, for "text" only ("payload" is application/json)');
      }
      if (line.entry_id !== undefined && typeof line.entry_id !== 'string') bad('"entry_id" must be a string');
      const isText = line.text !== undefined;
      const item: AppendEntryBatchItem = {
        kind: line.kind as string,
        payload: Buffer.from(isText ? line.text as string : JSON.stringify(line.payload)),
        contentType: isText ? (line.content_type as string | undefined) ?? 'text/plain' : 'application/json',
        entryId: (line.entry_id as string | undefined) ?? '',
      };
      // The daemon's own rules, here, so that no call is sent while a later line would be refused.
      try {
        checkEntry({ thread: '', author: '', id: item.entryId || 'unset', kind: item.kind, contentType: item.contentType, payload: item.payload, submittedAt: 0 });
      } catch (e) {
        if (!(e instanceof ChainError)) throw e;
        bad(`${apiFieldName(e.field)}: ${e.message.replace(`${e.field}: `, '')}`);
      }
      // A repeated id would be answered from the chain with the first line's entry: the second line would be lost.
      if (item.entryId && seen.has(item.entryId)) bad(`"entry_id" ${item.entryId} repeats line ${seen.get(item.entryId)}`);
      if (item.entryId) seen.set(item.entryId, i + 1);
      out.push(item);
    });
    if (out.length === 0) this.usageError(`${file}: no entries (one JSON object per line)`);
    return out;
  }
}

/** The entries in file order, cut into calls that fit (MAX_ENTRIES_PER_CALL, MAX_BYTES_PER_CALL). */
function split(entries: AppendEntryBatchItem[]): AppendEntryBatchItem[][] {
  const calls: AppendEntryBatchItem[][] = [];
  let call: AppendEntryBatchItem[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = e.payload.length + e.kind.length + e.contentType.length + e.entryId.length + 16;
    if (call.length > 0 && (call.length === MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL)) {
      calls.push(call);
      call = [];
      bytes = 0;
    }
    call.push(e);
    bytes += size;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}
