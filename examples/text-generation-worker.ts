// An example worker agent: serves `text-generation` tasks offered to its daemon by streaming words back as token
// events, then completing the task with the whole text as an artifact. Deterministic, no model needed — the
// shape of a real worker, talking only to its local daemon over gRPC.
//
//   node examples/text-generation-worker.ts [--data-dir DIR] [--grpc-addr ADDR]
//   (or: npx moltmesh-daemon … for the daemon; any language with the .proto files works the same way)
//
// The task's metadata steers it (handy for tests and demos):
//   prompt     what to "generate" for; a prompt about the README gets a canned two-sentence summary
//   words      stream exactly this many words instead (e.g. 10000, for load)
//   ask        ask the requester this question first (input-required), and use the answer
//   fail       fail the task with this reason instead of completing it
//   reject     reject the task with this reason
//   delay_ms   pause between words
import { parseArgs } from 'node:util';
import { connectClient, DaemonError, type MoltmeshClient } from '../sdk/client.ts';
import { TaskEventKind, TaskState, taskStateToJSON, type Task } from '../proto/gen/moltmesh/v1/tasks.ts';

const SKILL = 'text-generation';
const SUMMARY =
  'OpenMolt Network is a peer-to-peer agent protocol: a small daemon beside each agent joins a libp2p mesh, ' +
  'so agents find each other by capability, delegate tasks and stream results live. Agents talk only to their ' +
  'local daemon over gRPC, with no central server and no API keys.';

interface Meta {
  prompt?: string;
  words?: number;
  ask?: string;
  fail?: string;
  reject?: string;
  delay_ms?: number;
}

export function generate(meta: Meta, answer = ''): string[] {
  if (meta.words) return Array.from({ length: meta.words }, (_, i) => `w${i + 1}`);
  const prompt = `${meta.prompt ?? ''} ${answer}`.trim();
  const text = /readme|openmolt/i.test(prompt) ? SUMMARY : `You asked: ${prompt || '(nothing)'}.`;
  return text.split(' ');
}

async function serve(client: MoltmeshClient, task: Task, log: (msg: string) => void): Promise<void> {
  const meta = JSON.parse(task.metadataJson || '{}') as Meta;
  const id = task.id;
  const update = (state: TaskState, message = '', more: object = {}) => client.a2a.updateTask({ taskId: id, state, message, ...more });
  if (meta.reject) return void (await update(TaskState.TASK_STATE_REJECTED, meta.reject));
  await update(TaskState.TASK_STATE_WORKING);
  log(`${id}: working`);

  let answer = '';
  if (meta.ask) {
    await update(TaskState.TASK_STATE_INPUT_REQUIRED, meta.ask);
    answer = await awaitAnswer(client, id);
  }
  if (meta.fail) return void (await update(TaskState.TASK_STATE_FAILED, meta.fail));

  const words = generate(meta, answer);
  // One client stream for all the tokens: the daemon numbers them in order and answers once all are durable.
  async function* tokens() {
    for (const [i, word] of words.entries()) {
      yield { taskId: id, kind: TaskEventKind.TASK_EVENT_KIND_TOKEN, text: i === 0 ? word : ` ${word}` };
      if (meta.delay_ms) await new Promise((r) => setTimeout(r, meta.delay_ms));
    }
  }
  await client.a2a.publishTaskEvents(tokens());
  const text = words.join(' ');
  await update(TaskState.TASK_STATE_COMPLETED, '', {
    artifacts: [{ name: 'text', parts: [{ text: words.length > 1000 ? `${words.length} words` : text, contentType: 'text/plain' }] }],
  });
  log(`${id}: completed (${words.length} words)`);
}

/** Wait for the requester's answer: the task goes back to working with the answer as its newest input part. */
async function awaitAnswer(client: MoltmeshClient, id: string): Promise<string> {
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const { task } = await client.a2a.getTask({ taskId: id });
    if (task!.state === TaskState.TASK_STATE_WORKING) return task!.input.at(-1)?.text ?? '';
    if (task!.state !== TaskState.TASK_STATE_INPUT_REQUIRED) throw new Error(`task ended while waiting for input (${taskStateToJSON(task!.state)})`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

export async function runWorker(client: MoltmeshClient, log: (msg: string) => void = () => undefined): Promise<void> {
  // include_pending: tasks offered while the worker was down are served too.
  const incoming = client.a2a.subscribeIncomingTasks({ skill: SKILL, includePending: true });
  log(`worker ready: serving ${SKILL} tasks`);
  for await (const { task } of incoming) {
    if (!task) continue;
    serve(client, task, log).catch((err: unknown) => {
      // A task canceled under our feet is not our error.
      const why = err instanceof DaemonError ? err.message : String(err);
      log(`${task.id}: stopped: ${why}`);
    });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { 'data-dir': { type: 'string' }, 'grpc-addr': { type: 'string' } } });
  const client = connectClient({ dataDir: values['data-dir'], grpcAddr: values['grpc-addr'] });
  const log = (msg: string) => console.log(JSON.stringify({ level: 'info', msg, at: new Date().toISOString() }));
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  runWorker(client, log).then(
    () => log('the daemon ended the stream; exiting'),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
