// Tasks between real daemon processes, with the example worker (examples/text-generation-worker.ts) as the
// assignee's agent: the lifecycle, its refusals, streamed events, offline peers and kill -9.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { DaemonProcess } from '../support/daemon-process.ts';
import type { MoltmeshClient } from '../../sdk/client.ts';
import { TaskState, taskEventKindToJSON, taskStateToJSON, type Task } from '../../proto/gen/moltmesh/v1/tasks.ts';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import { peerIdFromDid } from '../../actors/identity/did.ts';
import { openEnvelope, sealEnvelope } from '../../actors/transport/envelope.ts';
import { ENVELOPE_PROTOCOL } from '../../actors/transport/transport.ts';
import { generate } from '../../examples/text-generation-worker.ts';
import { pollUntil } from '../support/poll.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SUMMARY = generate({ prompt: 'the README' }).join(' ');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A daemon with short retries, so a test that waits for a retry waits for milliseconds. */
function daemon(): DaemonProcess {
  const d = new DaemonProcess();
  writeFileSync(join(d.dataDir, 'moltbook.toml'), '[messaging]\nretry_initial = "100ms"\nretry_max = "500ms"\n');
  cleanups.push(() => d.dispose());
  return d;
}

async function pair(): Promise<[DaemonProcess, DaemonProcess]> {
  const [a, b] = [daemon(), daemon()];
  await Promise.all([a.start(), b.start()]);
  await a.client.diag.connect({ multiaddr: b.tcpAddr });
  return [a, b];
}

/** The example worker on `d`'s daemon, as its own process; resolves once it serves. */
async function worker(d: DaemonProcess): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['examples/text-generation-worker.ts', '--data-dir', d.dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  await new Promise<void>((ok, fail) => {
    createInterface({ input: child.stdout! }).on('line', (l) => (output.push(l), l.includes('worker ready') && ok()));
    child.once('exit', (code) => fail(new Error(`worker exited ${code}: ${output.join('\n')}`)));
  });
  return child;
}

/** No push API for "a task reached state X" on the assignee: poll (15 s, every 25 ms). */
const until = <T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 15_000) => pollUntil(what, get, check, timeoutMs, 25);

const getTask = async (c: MoltmeshClient, taskId: string): Promise<Task> => (await c.a2a.getTask({ taskId })).task!;
const inState = (c: MoltmeshClient, taskId: string, state: TaskState, timeoutMs?: number) =>
  until(`${taskId} ${taskStateToJSON(state)}`, () => getTask(c, taskId), (t) => t.state === state, timeoutMs);

async function create(a: DaemonProcess, b: DaemonProcess, metadata: object, extra: object = {}): Promise<Task> {
  const { task } = await a.client.a2a.createTask({ to: b.did, skill: 'text-generation', metadataJson: JSON.stringify(metadata), ...extra });
  return task!;
}

const outputOf = (t: Task) => t.artifacts.flatMap((a) => a.parts.map((p) => p.text ?? '')).join('');

async function tokens(c: MoltmeshClient, taskId: string, fromSeq = 0): Promise<{ seqs: number[]; kinds: string[]; text: string }> {
  const seqs: number[] = [];
  const kinds: string[] = [];
  let text = '';
  for await (const { event } of c.a2a.subscribeTaskEvents({ taskId, fromSeq }, { timeoutMs: 30_000 })) {
    seqs.push(event!.seq);
    const kind = taskEventKindToJSON(event!.kind).replace('TASK_EVENT_KIND_', '');
    kinds.push(kind === 'STATUS' ? `STATUS:${taskStateToJSON(event!.state).replace('TASK_STATE_', '')}` : kind);
    text += event!.text;
  }
  return { seqs, kinds, text };
}

describe('tasks between two daemons', () => {
  it('the whole lifecycle with the example worker; both copies end completed, with every token', async () => {
    const [a, b] = await pair();
    await worker(b);
    const created = await create(a, b, { prompt: 'Summarise the OpenMolt Network README in 2 sentences' });
    expect(created).toMatchObject({ state: TaskState.TASK_STATE_SUBMITTED, requester: a.did, assignee: b.did, skill: 'a2a:v1:cap:text-generation' });
    const { task, timedOut } = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 15_000 });
    expect(timedOut).toBe(false);
    expect(task!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(task!)).toBe(SUMMARY);
    // The requester holds every event, in order, before the task ends there: a STATUS event for the assignee's
    // move to working, then the tokens. The feed ends with the task.
    const words = SUMMARY.split(' ').length;
    expect(task!.lastEventSeq).toBe(words + 1);
    const streamed = await tokens(a.client, created.id);
    expect(streamed.seqs).toEqual(Array.from({ length: words + 1 }, (_, i) => i + 1));
    expect(streamed.kinds).toEqual(['STATUS:WORKING', ...Array(words).fill('TOKEN')]);
    expect(streamed.text).toBe(SUMMARY);
    // The assignee's copy converges (its ending is confirmed by the requester).
    expect((await inState(b.client, created.id, TaskState.TASK_STATE_COMPLETED)).role).toBe(2);
    const listed = await b.client.a2a.listTasks({ role: 2, states: [TaskState.TASK_STATE_COMPLETED] });
    expect(listed.tasks.map((t) => t.id)).toEqual([created.id]);
  });

  it('input-required round trip: the worker asks, the requester answers, the task completes with the answer', async () => {
    const [a, b] = await pair();
    await worker(b);
    const created = await create(a, b, { prompt: 'Summarise', ask: 'Which document?' });
    // WaitTask can return when the requester is asked something, not only at the end.
    const asked = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 15_000, untilInputRequired: true });
    expect([asked.timedOut, asked.task!.state, asked.task!.statusMessage]).toEqual([false, TaskState.TASK_STATE_INPUT_REQUIRED, 'Which document?']);
    await a.client.a2a.updateTask({ taskId: created.id, state: TaskState.TASK_STATE_WORKING, parts: [{ text: 'the OpenMolt README' }] });
    const { task } = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 15_000 });
    expect(task!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(task!)).toBe(SUMMARY);
    expect(task!.input.map((p) => p.text)).toEqual(['the OpenMolt README']);
  });

  it('reject, and cancel while working: both copies agree', async () => {
    const [a, b] = await pair();
    await worker(b);
    const rejected = await create(a, b, { reject: 'busy' });
    const r = (await a.client.a2a.waitTask({ taskId: rejected.id, timeoutMs: 15_000 })).task!;
    expect([r.state, r.statusMessage]).toEqual([TaskState.TASK_STATE_REJECTED, 'busy']);
    await inState(b.client, rejected.id, TaskState.TASK_STATE_REJECTED);

    const slow = await create(a, b, { words: 10_000, delay_ms: 20 });
    await inState(a.client, slow.id, TaskState.TASK_STATE_WORKING);
    const canceled = (await a.client.a2a.cancelTask({ taskId: slow.id, reason: 'changed my mind' })).task!;
    expect([canceled.state, canceled.statusMessage]).toEqual([TaskState.TASK_STATE_CANCELED, 'changed my mind']);
    await inState(b.client, slow.id, TaskState.TASK_STATE_CANCELED);
    // Final is final: nothing moves it again.
    await expect(a.client.a2a.cancelTask({ taskId: slow.id })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
  });

  it('a deadline fails the task on the requester side, and the assignee follows', async () => {
    const [a, b] = await pair();
    await worker(b);
    const created = await create(a, b, { words: 1000, delay_ms: 20 }, { deadlineMs: Date.now() + 1500 });
    const { task } = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 15_000 });
    expect([task!.state, task!.statusMessage]).toEqual([TaskState.TASK_STATE_FAILED, 'deadline passed']);
    expect((await inState(b.client, created.id, TaskState.TASK_STATE_FAILED)).statusMessage).toBe('deadline passed');
  });

  it('who may do what: refused transitions change nothing; a third party is refused, over gRPC and on the wire', async () => {
    const [a, b] = await pair();
    const created = await create(a, b, {});
    await inState(b.client, created.id, TaskState.TASK_STATE_SUBMITTED);
    // The requester may not accept its own task (nor reject it); the assignee may not cancel it.
    await expect(a.client.a2a.updateTask({ taskId: created.id, state: TaskState.TASK_STATE_WORKING })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(a.client.a2a.updateTask({ taskId: created.id, state: TaskState.TASK_STATE_REJECTED })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(b.client.a2a.cancelTask({ taskId: created.id })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    // Not possible from here by anyone.
    await expect(b.client.a2a.updateTask({ taskId: created.id, state: TaskState.TASK_STATE_INPUT_REQUIRED, message: '?' })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect((await getTask(a.client, created.id)).state).toBe(TaskState.TASK_STATE_SUBMITTED);

    // A third daemon does not hold the task at all.
    const c = daemon();
    await c.start();
    await expect(c.client.a2a.updateTask({ taskId: created.id, state: TaskState.TASK_STATE_COMPLETED })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // A third party with a valid identity forges a transition on the wire: refused for good, nothing changes.
    const me = await identityFromSeed(newSeed());
    const raw = await createLibp2p({ privateKey: me.privateKey, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] });
    cleanups.push(() => raw.stop());
    await raw.dial(multiaddr(b.tcpAddr));
    const stream = await raw.dialProtocol(peerIdFromDid(b.did), ENVELOPE_PROTOCOL);
    const forged = { taskId: created.id, n: 2, message: { type: 'CANCEL', by: a.did, at: Date.now() } };
    stream.send(lp.encode.single(sealEnvelope(me, { type: 'task', to: b.did, payload: forged }).bytes));
    await stream.close();
    let reply: unknown;
    for await (const frame of lp.decode(stream)) reply = openEnvelope(frame.subarray(), { ourDid: me.did, remotePeerId: peerIdFromDid(b.did) }).payload;
    expect(reply).toMatchObject({ permanent: true, error: expect.stringContaining('not a party') });
    expect((await getTask(b.client, created.id)).state).toBe(TaskState.TASK_STATE_SUBMITTED);
  });

  it('an assignee offline at creation gets the task when it returns, and runs it', async () => {
    const [a, b] = await pair();
    await b.stop();
    const created = await create(a, b, { prompt: 'the README' });
    expect(created.state).toBe(TaskState.TASK_STATE_SUBMITTED);
    await b.start();
    await b.client.diag.connect({ multiaddr: a.tcpAddr });
    await worker(b);
    const { task } = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 20_000 });
    expect(task!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(task!)).toBe(SUMMARY);
  });

  it('kill -9 of the requester mid-stream, then of the assignee: both converge on the same final state', async () => {
    const [a, b] = await pair();
    const w = await worker(b);
    const created = await create(a, b, { words: 400, delay_ms: 5 });
    await until('some tokens on the requester', () => getTask(a.client, created.id), (t) => t.lastEventSeq > 20);
    await a.kill9();
    await a.start();
    await a.client.diag.connect({ multiaddr: b.tcpAddr });
    const { task } = await a.client.a2a.waitTask({ taskId: created.id, timeoutMs: 30_000 });
    expect(task!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    // Nothing was lost while the requester was down: the ending waited for the whole stream.
    const streamed = await tokens(a.client, created.id);
    expect(streamed.seqs).toEqual(Array.from({ length: 401 }, (_, i) => i + 1)); // STATUS working, 400 tokens
    await inState(b.client, created.id, TaskState.TASK_STATE_COMPLETED);

    // The assignee dies while working on another task; back up, its agent finishes the task by hand.
    const second = await create(a, b, { words: 100_000, delay_ms: 5 });
    await inState(a.client, second.id, TaskState.TASK_STATE_WORKING);
    w.kill('SIGKILL');
    await b.kill9();
    await b.start();
    await b.client.diag.connect({ multiaddr: a.tcpAddr });
    expect((await getTask(b.client, second.id)).state).toBe(TaskState.TASK_STATE_WORKING);
    await b.client.a2a.updateTask({ taskId: second.id, state: TaskState.TASK_STATE_FAILED, message: 'restarted, gave up' });
    const failed = (await a.client.a2a.waitTask({ taskId: second.id, timeoutMs: 20_000 })).task!;
    expect([failed.state, failed.statusMessage]).toEqual([TaskState.TASK_STATE_FAILED, 'restarted, gave up']);
    await inState(b.client, second.id, TaskState.TASK_STATE_FAILED);
  });

  it('10,000 streamed events arrive complete and in order, also when the subscriber leaves and resumes midway', async () => {
    const [a, b] = await pair();
    await worker(b);
    const created = await create(a, b, { words: 10_000 });
    // First subscriber reads half, then goes away.
    const first: number[] = [];
    const s1 = a.client.a2a.subscribeTaskEvents({ taskId: created.id, fromSeq: 1 }, { timeoutMs: 60_000 });
    for await (const { event } of s1) {
      first.push(event!.seq);
      if (first.length === 5000) break;
    }
    // It resumes exactly where it stopped.
    const rest = await tokens(a.client, created.id, 5001);
    const all = [...first, ...rest.seqs];
    expect(all).toEqual(Array.from({ length: 10_001 }, (_, i) => i + 1)); // STATUS working, 10,000 tokens
    expect(rest.text.trim().split(' ').at(-1)).toBe('w10000');
    expect((await getTask(a.client, created.id)).state).toBe(TaskState.TASK_STATE_COMPLETED);
  }, 60_000);
});
