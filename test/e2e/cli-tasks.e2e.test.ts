// Tasks through the CLI a person (or a shell-scripted agent) uses, between two real daemons: create-task on A,
// incoming-tasks on B, B working through update-task and publish-event, A following with wait-task and
// subscribe-task-events; cancel, reject and timeout outcomes as wait-task's exit codes; clear errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, followCli as follow, runCli, stopFollowers, type CliFollower as Follower } from '../support/daemon-process.ts';

const OUTPUT = 'OpenMolt Network is a peer-to-peer agent protocol';
const TOKENS = ['OpenMolt ', 'Network ', 'is…'];
const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

describe('tasks through the CLI', () => {
  const a = new DaemonProcess();
  const b = new DaemonProcess();
  /** B's agent: every task offered to B, one JSON object per line. */
  let incoming: Follower;
  const offered = async (id: string) => JSON.parse(await incoming.line((l) => l.includes(id), id)) as Record<string, unknown>;
  const at = (d: DaemonProcess) => ['--data-dir', d.dataDir];

  beforeAll(async () => {
    await Promise.all([a.start(), b.start()]);
    const connect = await runCli(['connect', ...at(a), b.tcpAddr]);
    expect(connect.code, connect.stderr).toBe(0);
    incoming = follow(['incoming-tasks', '--json', '--pending', ...at(b)]);
  });
  afterAll(async () => {
    stopFollowers();
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it('create-task → incoming-tasks → update-task/publish-event → wait-task and subscribe-task-events', async () => {
    const created = await runCli(['create-task', '--json', ...at(a), '--to', b.did, '--skill', 'text-generation',
      '--meta', '{"prompt":"summarise"}', '--input', 'Summarise OpenMolt in one line']);
    expect(created.code, created.stderr).toBe(0);
    const { task } = JSON.parse(created.stdout) as { task: { id: string } };
    expect(task).toMatchObject({ state: 'SUBMITTED', role: 'REQUESTER', requester: a.did, assignee: b.did, skill: 'a2a:v1:cap:text-generation', metadataJson: '{"prompt":"summarise"}' });
    const id = task.id;

    expect(await offered(id)).toMatchObject({ id, state: 'SUBMITTED', role: 'ASSIGNEE', requester: a.did, input: [{ text: 'Summarise OpenMolt in one line' }] });

    // A follows the task: its events live, and its outcome.
    const events = follow(['subscribe-task-events', '--json', '--id', id, ...at(a)]);
    const waited = runCli(['wait-task', '--id', id, '--timeout', '20s', ...at(a)]);

    const working = await runCli(['update-task', '--id', id, '--state', 'working', '--message', 'on it', ...at(b)]);
    expect(working.code, working.stderr).toBe(0);
    expect(working.stdout).toBe(`Task ID  ${id}\nStatus   WORKING\nMessage  "on it"\n`);
    for (const [i, text] of TOKENS.entries()) {
      const r = await runCli(['publish-event', '--id', id, '--kind', 'token', '--text', text, ...at(b)]);
      // Seq 1 is the STATUS event of the move to working.
      expect([r.code, r.stdout, r.stderr]).toEqual([0, `Seq  ${i + 2}\n`, '']);
    }
    const done = await runCli(['update-task', '--id', id, '--state', 'completed', '--artifact-text', OUTPUT, '--artifact-name', 'answer', ...at(b)]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^Status +COMPLETED$/m);

    const w = await waited;
    expect([w.code, w.stdout], w.stderr).toEqual([0, `Status  COMPLETED\nOutput  ${JSON.stringify(OUTPUT)}\n`]);

    // The event stream ends by itself once the task has ended and every event is printed.
    const ev = await events.exited;
    expect(ev.code, ev.stderr).toBe(0);
    const parsed = ev.lines.map((l) => JSON.parse(l) as { seq: number; kind: string; text: string; author: string });
    // The assignee's move to working is a STATUS event before the tokens.
    expect(parsed.map((e) => [e.seq, e.kind, e.text])).toEqual([[1, 'STATUS', 'on it'], ...TOKENS.map((t, i) => [i + 2, 'TOKEN', t])]);
    expect(parsed.every((e) => e.author === b.did)).toBe(true);

    const [human, get, list, replay] = await Promise.all([
      runCli(['subscribe-task-events', '--id', id, '--from-seq', '3', ...at(a)]),
      runCli(['get-task', '--id', id, ...at(a)]),
      runCli(['list-tasks', '--role', 'assignee', '--state', 'completed', ...at(b)]),
      runCli(['replay', `task/${id}`, ...at(a)]),
    ]);
    expect(human.stdout).toBe(`#3  TOKEN  "Network "\n#4  TOKEN  "is…"\n`);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^Requester +${a.did} \\(you\\)$`, 'm'));
    expect(get.stdout).toMatch(/^State +COMPLETED$/m);
    expect(get.stdout).toMatch(/^Input +"Summarise OpenMolt in one line"$/m);
    expect(get.stdout).toContain(`answer: ${JSON.stringify(OUTPUT)}`);
    expect(get.stdout).toMatch(/^Last event +#4$/m);
    expect(list.stdout).toMatch(new RegExp(`^${id}  COMPLETED  text-generation  from ${a.did}  \\S+ ago\\n1 task\\n$`));
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/^#1 +xstate\.init .*open\.status\.submitted.*effects: notifyPeer$/m);
    expect(replay.stdout).toMatch(/^#2 +ACCEPT .*open\.status\.working/m);
    expect(replay.stdout).toMatch(/^#3 +COMPLETE .*→ completed$/m);
  });

  it('wait-task exit codes: canceled, rejected, timed out; the daemon\'s refusals are printed', async () => {
    const create = (skill: string) => runCli(['create-task', ...at(a), '--to', b.did, '--skill', skill]);
    const [c1, c2] = await Promise.all([create('summarize'), create('translate')]);
    for (const c of [c1, c2]) expect(c.stdout, c.stderr).toMatch(/^Task ID  task_\w{26}\nStatus   SUBMITTED\n$/);
    const [toCancel, toReject] = [c1, c2].map((c) => c.stdout.split('\n')[0]!.split(/ +/)[2]!);

    // Canceled by A (the requester) while wait-task waits; the requester may not reject it (the assignee may).
    const cancelWait = runCli(['wait-task', '--json', '--id', toCancel, ...at(a)]);
    const [timedOut, denied] = await Promise.all([
      runCli(['wait-task', '--id', toCancel, '--timeout', '200ms', ...at(a)]),
      runCli(['update-task', '--id', toCancel, '--state', 'rejected', ...at(a)]),
    ]);
    expect([timedOut.code, timedOut.stdout]).toEqual([6, 'Status  SUBMITTED (still open after 200ms)\n']);
    expect([denied.code, denied.stdout]).toEqual([1, '']);
    expect(denied.stderr).toMatch(/^error: the requester may not reject task task_\w+ \(only the other party may\)\n$/);
    const canceled = await runCli(['cancel-task', '--id', toCancel, '--reason', 'no longer needed', ...at(a)]);
    expect(canceled.stdout).toBe(`Task ID  ${toCancel}\nStatus   CANCELED\nReason   "no longer needed"\n`);
    const cw = await cancelWait;
    expect(cw.code, cw.stderr).toBe(4);
    expect(JSON.parse(cw.stdout)).toMatchObject({ task: { id: toCancel, state: 'CANCELED', statusMessage: 'no longer needed' }, timedOut: false, output: '' });

    // Rejected by B (the assignee), once it has the task.
    await offered(toReject);
    const rejectWait = runCli(['wait-task', '--id', toReject, ...at(a)]);
    const rejected = await runCli(['update-task', '--id', toReject, '--state', 'rejected', '--message', 'not my skill', ...at(b)]);
    expect(rejected.code, rejected.stderr).toBe(0);
    const rw = await rejectWait;
    expect([rw.code, rw.stdout], rw.stderr).toEqual([5, 'Status  REJECTED\nReason  "not my skill"\n']);
  });

  it('bad input: a clear error on stderr, nothing on stdout, a non-zero exit', async () => {
    const unknown = 'task_01JY0000000000000000000000';
    const cases: Array<[string[], number, RegExp]> = [
      [['get-task', '--id', 'nope'], 1, /^error: task_id: "nope" is not a task id \(task_ followed by 26 characters\)\n$/],
      [['get-task', '--id', unknown], 1, new RegExp(`^error: task ${unknown} not found\\n$`)],
      [['create-task', '--to', b.did, '--skill', 'x', '--meta', '{bad'], 2, /^error: --meta: not valid JSON \(.+\): \{bad\n$/],
      [['create-task', '--to', b.did, '--skill', 'x', '--meta', '[1]'], 2, /^error: --meta: expected a JSON object/],
      [['update-task', '--id', unknown, '--state', 'bogus'], 2, /^error: Expected --state=bogus to be one of: working, input-required, auth-required, completed, failed, rejected\n/],
      [['publish-event', '--id', unknown, '--kind', 'progress', '--progress', '2'], 2, /^error: --progress: expected a number from 0 to 1, got "2"\n$/],
      [['wait-task', '--id', unknown, '--timeout', 'soon'], 2, /^error: --timeout: expected a duration/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli([...args, ...at(a)])));
    results.forEach((r, i) => {
      const [args, code, stderr] = cases[i]!;
      expect([r.code, r.stdout], args.join(' ')).toEqual([code, '']);
      expect(r.stderr, args.join(' ')).toMatch(stderr);
      noStackTrace(r.stderr);
    });
    // --json: the error is the one document on stdout.
    const j = await runCli(['wait-task', '--json', '--id', 'nope', ...at(a)]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual({ error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('not a task id') } });
  });
});
