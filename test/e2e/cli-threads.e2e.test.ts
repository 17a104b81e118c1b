// Threads through the CLI, between three real daemons: create-thread on A with B and C as replicas (they join by
// themselves: [threads] auto_join), append-entry from A and from B, get-thread-entries and verify-thread agreeing
// on all three, subscribe-thread printing history and then a live block; a thread of one on a daemon with no peers;
// append-entries from a JSON Lines file; the n/f rule refused with the daemon's words. One set of daemons for the whole file; the tests run in order.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp-dir.ts';
import { DaemonProcess, followCli as follow, runCli, runCliUntil, stopFollowers, type CliResult as Result } from '../support/daemon-process.ts';

const until = (args: string[], done: (r: Result) => boolean, what: string, ms = 15_000) => runCliUntil(args, done, what, ms);

const COMMITTED = /^Height (\d+) {2}Entry (\d+) {2}Hash ([0-9a-f]{12})… {2}\(committed\)\n$/;
const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

const json = <T = Record<string, unknown>>(r: Result): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

interface ThreadJson { id: string; backend: string; state: string; replicas: string[]; joined: string[]; faultTolerance: number; height: number; headHash: string }
interface EntryJson { entryId: string; author: string; kind: string; height: number; index: number; payload?: unknown; text?: string }
interface VerifyJson { ok: boolean; blocks: number; entries: number; headHash: string }

describe('threads through the CLI', () => {
  const a = new DaemonProcess();
  const b = new DaemonProcess();
  const c = new DaemonProcess();
  /** A daemon with no peers at all. */
  const lone = new DaemonProcess();
  const at = (d: DaemonProcess) => ['--data-dir', d.dataDir];
  let thread = '';

  beforeAll(async () => {
    await Promise.all([a.start(), b.start(), c.start(), lone.start()]);
    // Every replica talks to every other (a new Raft leader may be any of them).
    const connects = await Promise.all([runCli(['connect', ...at(a), b.tcpAddr]), runCli(['connect', ...at(a), c.tcpAddr]), runCli(['connect', ...at(b), c.tcpAddr])]);
    for (const r of connects) expect(r.code, r.stderr).toBe(0);
  });
  const cleanups: (() => void)[] = [];
  afterAll(async () => {
    for (const c of cleanups) c();
    stopFollowers();
    await Promise.all([a, b, c, lone].map((d) => d.dispose()));
  });

  it('create-thread on A with B and C; B and C join by themselves; entries from A and B agree on all three', async () => {
    const created = await runCli(['create-thread', '--replicas', `${b.did},${c.did}`, '--backend', 'raft', ...at(a)]);
    expect(created.code, created.stderr).toBe(0);
    const id = /^Thread ID {2}(thr_\w{26})$/m.exec(created.stdout)?.[1];
    expect(id, created.stdout).toBeDefined();
    thread = id!;
    expect(created.stdout).toContain('\nBackend    raft (tolerates 1 crashed replica of 3)\n');
    expect(created.stdout).toMatch(/^State {6}(inviting \(1 of 3 replicas joined\)|active)$/m);
    expect(created.stdout).toContain(`Replicas   ${a.did} (you)  joined, creator\n`);
    for (const d of [b, c]) expect(created.stdout).toMatch(new RegExp(`^ {11}${d.did}  (not joined yet|joined)$`, 'm'));

    // Invites travel through A's outbox; each replica joins, and A is active once a quorum has.
    const active = (d: DaemonProcess) => until(['get-thread', '--json', '--id', thread, ...at(d)],
      (r) => r.code === 0 && JSON.parse(r.stdout).thread.state === 'active', `thread active on ${d === a ? 'A' : d === b ? 'B' : 'C'}`);
    const [onA, onB] = await Promise.all([active(a), active(b), active(c)]);
    const t = json<{ thread: ThreadJson }>(onB).thread;
    expect(t).toMatchObject({ id: thread, backend: 'raft', faultTolerance: 1, replicas: [a.did, b.did, c.did] });
    expect(json<{ thread: ThreadJson }>(onA).thread.state).toBe('active');

    const fromA = await runCli(['append-entry', '--thread', thread, '--kind', 'decision', '--payload', '{"vote":"approve"}', ...at(a)]);
    expect([fromA.code, fromA.stderr]).toEqual([0, '']);
    expect(fromA.stdout).toMatch(COMMITTED);
    const fromB = json<{ committed: boolean; height: number; index: number; blockHash: string; entryId: string }>(
      await runCli(['append-entry', '--json', '--thread', thread, '--kind', 'note', '--text', 'B agrees', '--entry-id', 'b-agrees', ...at(b)]));
    expect(fromB).toMatchObject({ committed: true, entryId: 'b-agrees' });
    expect(fromB.blockHash).toMatch(/^[0-9a-f]{64}$/);
    expect(fromB.height).toBeGreaterThan(Number(COMMITTED.exec(fromA.stdout)![1]));
    // The same entry id again adds nothing: the same place in the chain.
    const again = json<typeof fromB>(await runCli(['append-entry', '--json', '--thread', thread, '--kind', 'note', '--text', 'B agrees', '--entry-id', 'b-agrees', ...at(b)]));
    expect(again).toEqual(fromB);

    // Every replica ends with the same chain: the same entries, the same head, each signature checked here.
    const verified = await Promise.all([a, b, c].map((d) => until(['verify-thread', '--json', '--id', thread, ...at(d)],
      (r) => r.code === 0 && JSON.parse(r.stdout).entries === 2, `both entries on ${d.did}`)));
    const reports = verified.map((r) => json<VerifyJson>(r));
    expect(reports.map((r) => r.ok)).toEqual([true, true, true]);
    expect(new Set(reports.map((r) => r.headHash)).size).toBe(1);
    expect(reports[0]!.blocks).toBe(fromB.height);
    const [human, ...entries] = await Promise.all([
      runCli(['verify-thread', '--id', thread, ...at(c)]),
      ...[a, b, c].map((d) => runCli(['get-thread-entries', '--json', '--id', thread, ...at(d)])),
    ]);
    expect([human.code, human.stderr]).toEqual([0, '']);
    expect(human.stdout).toBe(`Verified ${fromB.height} block${fromB.height === 1 ? '' : 's'}, 2 entries, chain head ${reports[0]!.headHash.slice(0, 12)}…\n`);
    const lists = entries.map((r) => json<{ entries: EntryJson[]; nextPageToken: string }>(r));
    for (const l of lists) {
      expect(l.nextPageToken).toBe('');
      expect(l.entries.map((e) => [e.author, e.kind, e.payload, e.text])).toEqual([[a.did, 'decision', { vote: 'approve' }, undefined], [b.did, 'note', undefined, 'B agrees']]);
      expect(l.entries).toEqual(lists[0]!.entries);
    }
    const [lines, since, page, get, list] = await Promise.all([
      runCli(['get-thread-entries', '--id', thread, ...at(c)]),
      runCli(['get-thread-entries', '--id', thread, '--since', String(fromB.height), ...at(c)]),
      runCli(['get-thread-entries', '--id', thread, '--limit', '1', ...at(c)]),
      runCli(['get-thread', '--id', thread, ...at(b)]),
      runCli(['list-threads', ...at(c)]),
    ]);
    const first = lists[0]!.entries[0]!;
    const lineA = `#${first.height}.${first.index}  ${a.did.slice(0, 20)}…  decision  {"vote":"approve"}`;
    const lineB = `#${fromB.height}.${fromB.index}  ${b.did.slice(0, 20)}…  note  "B agrees"`;
    expect(lines.stdout).toBe(`${lineA}\n${lineB}\n`);
    expect(since.stdout).toBe(`${lineB}\n`);
    expect(page.stdout).toBe(`${lineA}\nmore: --page-token ${first.height}.${first.index}\n`);

    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^ID +${thread}\\nBackend +raft \\(tolerates 1 crashed replica of 3\\)\\nState +active\\nCreator +${a.did}\\n`));
    expect(get.stdout).toMatch(new RegExp(`^ +${b.did} \\(you\\)  joined`, 'm'));
    expect(get.stdout).toMatch(new RegExp(`^Height +${fromB.height}\\nHead +${reports[0]!.headHash}\\n`, 'm'));

    expect(list.stdout).toMatch(new RegExp(`^${thread}  raft  active  3 replicas  height ${fromB.height}  \\d.* ago\\n1 thread\\n$`));
  });

  it('replay thread-raft/<id>: each step of the consensus log in words (term, vote, commit, the entries written)', async () => {
    const [text, asJson] = await Promise.all([runCli(['replay', `thread-raft/${thread}`, ...at(b)]), runCli(['replay', '--json', `thread-raft/${thread}`, ...at(b)])]);
    expect([text.code, text.stderr]).toEqual([0, '']);
    const lines = text.stdout.trimEnd().split('\n');
    for (const l of lines) expect(l).toMatch(/^#\d+  READY  at \d\d:\d\d:\d\d\.\d{3}  .+$/);
    expect(text.stdout).toMatch(/ term \d+, vote (…\w{6}|none), commit \d+/); // none: B joined after the election
    expect(text.stdout).toMatch(/ log \d+ \(term \d+\): the new leader's empty entry/);
    expect(text.stdout).toContain(`: 1 entry: b-agrees note by …${b.did.slice(-6)}`);
    const steps = json<{ event: { summary: string; entries: { entries?: string[] }[] } }[]>(asJson);
    expect(steps.map((s) => s.event.summary)).toEqual(lines.map((l) => l.split(/  /).slice(3).join('  ')));
    const written = steps.flatMap((s) => s.event.entries.flatMap((e) => e.entries ?? []));
    expect(written).toContain(`b-agrees note by …${b.did.slice(-6)}`);
  });

  it('subscribe-thread --since 1 --json: the history, then a block committed while it runs', async () => {
    const sub = follow(['subscribe-thread', '--json', '--id', thread, '--since', '1', ...at(c)]);
    const heights = () => sub.lines.map((l) => (JSON.parse(l) as { height: number }).height);
    const { thread: t } = json<{ thread: ThreadJson }>(await runCli(['get-thread', '--json', '--id', thread, ...at(c)]));
    await sub.line((l) => JSON.parse(l).height === t.height, `the stored head (height ${t.height})`);
    expect(heights()).toEqual(Array.from({ length: t.height }, (_, i) => i + 1));

    const appended = await runCli(['append-entry', '--thread', thread, '--kind', 'vote', '--payload', '{"live":true}', ...at(a)]);
    expect(appended.code, appended.stderr).toBe(0);
    const height = Number(COMMITTED.exec(appended.stdout)![1]);
    const live = JSON.parse(await sub.line((l) => JSON.parse(l).height === height, `the live block ${height}`)) as { hash: string; entries: EntryJson[]; proposer: string };
    expect(heights()).toEqual(Array.from({ length: height }, (_, i) => i + 1));   // no gap, no repeat
    expect(live.entries.map((e) => [e.author, e.kind, e.payload])).toEqual([[a.did, 'vote', { live: true }]]);
    expect(live.hash.slice(0, 12)).toBe(COMMITTED.exec(appended.stdout)![3]);
    expect(sub.stderr()).toBe(`following thread ${thread} from height 1... (Ctrl-C to stop)\n`);
    sub.child.kill('SIGINT');
  });

  it('a thread of one, on a daemon with no peers: active at once, every entry committed at once', async () => {
    const created = await runCli(['create-thread', ...at(lone)]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(new RegExp([
      '^Thread ID  thr_\\w{26}',
      'Backend    raft \\(a single replica: no fault tolerance\\)',
      'State      active',
      `Replicas   ${lone.did} \\(you\\)  joined, creator, leader\\n$`,
    ].join('\\n')));
    const id = created.stdout.split('\n')[0]!.split(/ +/)[2]!;
    const [one, two] = [
      await runCli(['append-entry', '--thread', id, '--kind', 'decision', '--payload', '{"solo":1}', ...at(lone)]),
      await runCli(['append-entry', '--thread', id, '--kind', 'note', '--text', 'second', '--accept-only', ...at(lone)]),
    ];
    expect([one.code, one.stderr]).toEqual([0, '']);
    expect(one.stdout).toMatch(/^Height 1 {2}Entry 0 {2}Hash [0-9a-f]{12}… {2}\(committed\)\n$/);
    expect(two.stdout).toMatch(/^(Accepted ent_\w{26} {2}\(not committed yet\)|Height 2 {2}Entry 0 {2}Hash [0-9a-f]{12}… {2}\(committed\))\n$/);
    const verified = await until(['verify-thread', '--id', id, ...at(lone)], (r) => r.stdout.startsWith('Verified 2 blocks'), 'the accepted entry committed');
    expect(verified.stdout).toMatch(/^Verified 2 blocks, 2 entries, chain head [0-9a-f]{12}…\n$/);
  });

  it('append-entries: a JSON Lines file in as few calls as fit, in file order; a rerun adds nothing; a bad line appends nothing', async () => {
    const created = await runCli(['create-thread', ...at(lone)]);
    const id = created.stdout.split('\n')[0]!.split(/ +/)[2]!;
    const dir = tempDir('mm-cli-entries-');
    cleanups.push(dir.cleanup);
    const lines = Array.from({ length: 1_205 }, (_, i) => JSON.stringify(i % 2
      ? { kind: 'note', text: `line ${i + 1}`, entry_id: `line-${i + 1}` }
      : { kind: 'decision', payload: { n: i + 1 }, entry_id: `line-${i + 1}` }));
    const good = join(dir.path, 'entries.jsonl');
    writeFileSync(good, `${lines.join('\n')}\n`);
    const appended = await runCli(['append-entries', '--thread', id, '--file', good, ...at(lone)]);
    expect([appended.code, appended.stderr]).toEqual([0, '']);
    expect(appended.stdout).toMatch(/^Appended 1205 entries in 2 calls: heights \d+–\d+ {2}\(committed\)\n$/);
    const again = json<{ results: { entryId: string; committed: boolean }[] }>(await runCli(['append-entries', '--thread', id, '--file', good, '--json', ...at(lone)]));
    expect(again.results.map((r) => r.entryId)).toEqual(lines.map((_, i) => `line-${i + 1}`));
    const entries = json<{ entries: EntryJson[] }>(await runCli(['get-thread-entries', '--id', id, '--limit', '3', '--json', ...at(lone)]));
    expect(entries.entries.slice(0, 3).map((e) => [e.entryId, e.kind])).toEqual([['line-1', 'decision'], ['line-2', 'note'], ['line-3', 'decision']]);

    const fine = JSON.stringify({ kind: 'note', text: 'fine', entry_id: 'never' });
    const badFiles: [string[], string][] = [
      [[fine, '', '{"kind": "note"}'], 'line 3: give one of "payload" (any JSON) or "text" (a string)'],
      [[fine, JSON.stringify({ kind: 'Decision', payload: 1 })], 'line 2: kind: lowercase letters'],
      [[fine, JSON.stringify({ kind: 'note', text: 'again', entry_id: 'never' })], 'line 2: "entry_id" never repeats line 1'],
    ];
    const refusals = await Promise.all(badFiles.map(([content], k) => {
      const file = join(dir.path, `bad-${k}.jsonl`);
      writeFileSync(file, content.join('\n'));
      return runCli(['append-entries', '--thread', id, '--file', file, ...at(lone)]);
    }));
    refusals.forEach((r, k) => {
      expect([r.code, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toContain(badFiles[k]![1]);
    });
    const verified = json<VerifyJson>(await runCli(['verify-thread', '--id', id, '--json', ...at(lone)]));
    expect([verified.ok, verified.entries]).toEqual([true, 1_205]);
  });

  it('refusals: the n/f rule in the daemon\'s words, unknown threads, bad usage', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['create-thread', '--replicas', b.did, '--fault-tolerance', '1', ...at(a)], 1,
        /^error: fault_tolerance: raft needs n ≥ 2f\+1 replicas: tolerating 1 crashed replica takes 3, and there are 2\n$/],
      [['get-thread', '--id', 'thr_01JZ0000000000000000000000', ...at(a)], 1, /^error: thread thr_01JZ0000000000000000000000 not found\n$/],
      [['verify-thread', '--id', 'nope', ...at(a)], 1, /^error: thread_id: "nope" is not a thread id \(thr_…\)\n$/],
      [['append-entry', '--thread', thread, '--kind', 'Decision', '--payload', '{}', ...at(a)], 1, /^error: kind: lowercase letters/],
      [['append-entry', '--thread', thread, '--kind', 'decision', '--payload', '{vote}', ...at(a)], 2, /^error: --payload: not valid JSON \(.+\): \{vote\}; for other data give --content-type \(or --text\)\n$/],
      [['subscribe-thread', '--id', 'thr_01JZ0000000000000000000000', ...at(a)], 1, /^error: thread thr_01JZ0000000000000000000000 not found\n$/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      const [args, code, stderr] = cases[i]!;
      expect([r.code, r.stdout], args.join(' ')).toEqual([code, '']);
      expect(r.stderr, args.join(' ')).toMatch(stderr);
      noStackTrace(r.stderr);
    });
    const j = await runCli(['create-thread', '--json', '--replicas', b.did, '--fault-tolerance', '1', ...at(a)]);
    expect([j.code, JSON.parse(j.stdout)]).toEqual([1, { error: { code: 'FAILED_PRECONDITION', message: expect.stringContaining('raft needs n ≥ 2f+1 replicas') } }]);
  });
});
