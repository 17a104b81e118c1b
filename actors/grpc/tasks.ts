// Task RPCs of A2ANode: CreateTask, GetTask, ListTasks, UpdateTask, CancelTask, WaitTask, SubscribeIncomingTasks,
// PublishTaskEvent, SubscribeTaskEvents — protobuf in, domain calls out (actors/tasks), and back.
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import type { Part as PbPart } from '../../proto/gen/moltmesh/v1/common.ts';
import {
  TaskEventKind as PbKind,
  TaskRole as PbRole,
  TaskState as PbState,
  type Artifact as PbArtifact,
  type PublishTaskEventRequest,
  type PublishTaskEventsResponse,
  type SubscribeIncomingTasksResponse,
  type SubscribeTaskEventsResponse,
  type Task as PbTask,
  type TaskEvent as PbTaskEvent,
} from '../../proto/gen/moltmesh/v1/tasks.ts';
import { invalid } from '../../runtime/errors.ts';
import { newId } from '../../runtime/ids.ts';
import { TASK_STATES, type TaskArtifact, type TaskPart, type TaskState } from '../../machines/task.ts';
import { ContentBudget, jsonObject, jsonValue, parseArtifacts, parseParts, TASK_ID, TASK_LIMITS } from '../tasks/protocol.ts';
import { capabilityId } from '../capability.ts';
import type { StreamEvent, StreamEventContent, StreamEventKind } from '../tasks/task-events.ts';
import type { TaskInfo } from '../tasks/tasks.ts';
import type { NodeApi } from './node-api.ts';
import { clientStream, serverStream, unary, type HandlerContext } from './rpc.ts';
import { boundedText, limit, nonNegative, optionalDid, requireDid } from './validate.ts';

type TaskHandlers = Pick<A2ANodeServer,
  'createTask' | 'getTask' | 'listTasks' | 'updateTask' | 'cancelTask' | 'waitTask' | 'subscribeIncomingTasks'
  | 'publishTaskEvent' | 'publishTaskEvents' | 'subscribeTaskEvents'>;

/** A PublishTaskEvents call keeps at most this many events waiting for their append before it reads more. */
const PUBLISH_WINDOW = 4096;

/** setTimeout's ceiling (~24.8 days): "wait until terminal" waits this long, or until the call's own deadline. */
const FOREVER_MS = 2 ** 31 - 1;

export function taskHandlers(api: NodeApi, ctx: HandlerContext): TaskHandlers {
  return {
    createTask: unary(ctx, 'CreateTask', async (req) => {
      const budget = new ContentBudget();
      const task = await api.createTask({
        to: requireDid('to', req.to),
        skill: capabilityId('skill', req.skill),
        metadata: req.metadataJson ? jsonObject('metadata_json', parseJson('metadata_json', req.metadataJson)) : {},
        input: parseParts('input', req.input.map((p, i) => fromPbPart(`input[${i}]`, p)), budget),
        ...(req.deadlineMs === undefined ? {} : { deadline: nonNegative('deadline_ms', req.deadlineMs) }),
        ...(req.taskId ? { taskId: taskId('task_id', req.taskId) } : {}),
      });
      return { task: toPbTask(task) };
    }),

    getTask: unary(ctx, 'GetTask', (req) => ({ task: toPbTask(api.getTask(taskId('task_id', req.taskId))) })),

    listTasks: unary(ctx, 'ListTasks', (req) => {
      if (req.pageToken && !TASK_ID.test(req.pageToken)) throw invalid('page_token', 'not a token from a previous ListTasks page');
      const { tasks, next } = api.listTasks({
        ...(req.role === PbRole.TASK_ROLE_UNSPECIFIED ? {} : { role: req.role === PbRole.TASK_ROLE_REQUESTER ? 'requester' : 'assignee' }),
        states: req.states.map((s, i) => fromPbState(`states[${i}]`, s)),
        ...(req.skill ? { skill: capabilityId('skill', req.skill) } : {}),
        ...(req.peer ? { peer: optionalDid('peer', req.peer) } : {}),
        pageSize: limit('page_size', req.pageSize, 50),
        ...(req.pageToken ? { after: req.pageToken } : {}),
      });
      return { tasks: tasks.map(toPbTask), nextPageToken: next ?? '' };
    }),

    updateTask: unary(ctx, 'UpdateTask', async (req) => {
      const budget = new ContentBudget();
      const target = fromPbState('state', req.state);
      const task = await api.updateTask(taskId('task_id', req.taskId), target, {
        message: boundedText('message', req.message, TASK_LIMITS.text),
        parts: parseParts('parts', req.parts.map((p, i) => fromPbPart(`parts[${i}]`, p)), budget),
        artifacts: parseArtifacts('artifacts', req.artifacts.map((a, i) => fromPbArtifact(`artifacts[${i}]`, a)), budget),
      });
      return { task: toPbTask(task) };
    }),

    cancelTask: unary(ctx, 'CancelTask', async (req) => ({
      task: toPbTask(await api.cancelTask(taskId('task_id', req.taskId), boundedText('reason', req.reason, TASK_LIMITS.text))),
    })),

    waitTask: unary(ctx, 'WaitTask', async (req, call) => {
      const timeoutMs = nonNegative('timeout_ms', req.timeoutMs);
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      const { task, timedOut } = await api.waitTask(taskId('task_id', req.taskId), Math.min(timeoutMs || FOREVER_MS, FOREVER_MS), abort.signal, {
        untilInputRequired: req.untilInputRequired,
      });
      return { task: toPbTask(task), timedOut };
    }),

    subscribeIncomingTasks: serverStream<{ skill: string; includePending: boolean }, SubscribeIncomingTasksResponse>(
      ctx, 'SubscribeIncomingTasks', async (req, sink): Promise<'live'> => {
        const skill = req.skill ? capabilityId('skill', req.skill) : undefined;
        const wanted = (t: TaskInfo) => t.role === 'assignee' && t.state === 'submitted' && (!skill || t.skill === skill);
        // Offered tasks still waiting (submitted): each is sent once, whether listed or announced live.
        const sent = new Set<string>();
        const push = (t: TaskInfo) => {
          if (t.state !== 'submitted') return void sent.delete(t.id); // moved on: forget it (the set stays small)
          if (!wanted(t) || sent.has(t.id)) return;
          sent.add(t.id);
          sink.send({ task: toPbTask(t) }, taskBytes(t));
        };
        // Subscribe first, so nothing created while the pending ones are listed is missed (the set drops repeats).
        sink.onClose(api.subscribeTasks(push));
        if (req.includePending) {
          let after: string | undefined;
          const pending: TaskInfo[] = [];
          for (;;) {
            const page = api.listTasks({ role: 'assignee', states: ['submitted'], ...(skill ? { skill } : {}), pageSize: 1000, ...(after ? { after } : {}) });
            pending.push(...page.tasks);
            if (!page.next) break;
            after = page.next;
          }
          // Oldest first, as they arrived.
          for (const t of pending.reverse()) push(t);
        }
        return 'live';
      },
    ),

    publishTaskEvent: unary(ctx, 'PublishTaskEvent', async (req) => ({
      seq: await api.publishTaskEvent(taskId('task_id', req.taskId), streamEventContent(req)),
    })),

    publishTaskEvents: clientStream<PbPublishRequest, PublishTaskEventsResponse>(ctx, 'PublishTaskEvents', async (requests) => {
      const appending = new Set<Promise<number>>();
      let first = 0;
      let last = 0;
      let count = 0;
      let failure: unknown;
      const settle = (seq: number) => {
        first = first === 0 ? seq : Math.min(first, seq);
        last = Math.max(last, seq);
        count += 1;
      };
      try {
        for await (const req of requests) {
          // Validated one by one; an append is not awaited before the next is read, so they share commits.
          const p = api.publishTaskEvent(taskId('task_id', req.taskId), streamEventContent(req));
          appending.add(p);
          void p.then(settle, (err: unknown) => void (failure ??= err)).finally(() => appending.delete(p));
          if (appending.size >= PUBLISH_WINDOW) await Promise.race(appending);
        }
      } finally {
        // Whatever was accepted is durable before the call answers, also when it answers with an error.
        await Promise.allSettled([...appending]);
      }
      if (failure) throw failure;
      return { count, firstSeq: first, lastSeq: last };
    }),

    subscribeTaskEvents: serverStream<{ taskId: string; fromSeq: number }, SubscribeTaskEventsResponse>(
      ctx, 'SubscribeTaskEvents', async (req, sink): Promise<'live' | void> => {
        const id = taskId('task_id', req.taskId);
        const from = Math.max(1, nonNegative('from_seq', req.fromSeq));
        // Stored events from `from`, then live ones, with no gap and no repeat: the feed hands them over in order.
        const feed = api.taskEvents(id, from);
        sink.onClose(() => feed.close());
        for await (const e of feed) {
          if (!(await sink.write({ event: toPbEvent(e) }, eventBytes(e)))) return 'live';
        }
        // The feed ends when the task is final and every event is here.
      },
    ),
  };
}

// ── Validation and mapping ─────────────────────────────────────────────────────────────────────────────

type PbPublishRequest = Pick<PublishTaskEventRequest, 'taskId' | 'kind' | 'text' | 'dataJson' | 'artifact' | 'progress'>;

function streamEventContent(req: PbPublishRequest): StreamEventContent {
  const kind = fromPbKind(req.kind);
  const event: StreamEventContent = {
    kind,
    text: boundedText('text', req.text, TASK_LIMITS.contentBytes),
    ...(req.dataJson ? { data: jsonValue('data_json', parseJson('data_json', req.dataJson)) } : {}),
    ...(req.artifact ? { artifact: parseArtifacts('artifact', [fromPbArtifact('artifact', req.artifact)])[0]! } : {}),
    ...(kind === 'progress' ? { progress: progress(req.progress) } : {}),
  };
  if (kind === 'artifact' && !event.artifact) throw invalid('artifact', 'required for an ARTIFACT event');
  return event;
}

function taskId(field: string, v: string): string {
  if (!v) throw invalid(field, 'required (task_<ULID>)');
  if (!TASK_ID.test(v)) throw invalid(field, `"${v}" is not a task id (task_ followed by 26 characters)`);
  return v;
}


function parseJson(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(field, `not valid JSON (${(err as Error).message})`);
  }
}

function progress(v: number): number {
  if (!Number.isFinite(v) || v < 0 || v > 1) throw invalid('progress', 'must be between 0 and 1');
  return v;
}

const STATE_TO_PB: Record<TaskState, PbState> = {
  submitted: PbState.TASK_STATE_SUBMITTED,
  working: PbState.TASK_STATE_WORKING,
  'input-required': PbState.TASK_STATE_INPUT_REQUIRED,
  'auth-required': PbState.TASK_STATE_AUTH_REQUIRED,
  completed: PbState.TASK_STATE_COMPLETED,
  failed: PbState.TASK_STATE_FAILED,
  canceled: PbState.TASK_STATE_CANCELED,
  rejected: PbState.TASK_STATE_REJECTED,
};

function fromPbState(field: string, s: PbState): TaskState {
  const state = TASK_STATES.find((t) => STATE_TO_PB[t] === s);
  if (!state) throw invalid(field, 'not a task state');
  return state;
}

const KIND_TO_PB: Record<StreamEventKind, PbKind> = {
  token: PbKind.TASK_EVENT_KIND_TOKEN,
  'tool-call': PbKind.TASK_EVENT_KIND_TOOL_CALL,
  progress: PbKind.TASK_EVENT_KIND_PROGRESS,
  artifact: PbKind.TASK_EVENT_KIND_ARTIFACT,
  status: PbKind.TASK_EVENT_KIND_STATUS,
};

function fromPbKind(k: PbKind): StreamEventKind {
  const kind = (Object.keys(KIND_TO_PB) as StreamEventKind[]).find((x) => KIND_TO_PB[x] === k);
  if (!kind) throw invalid('kind', 'required: TOKEN, TOOL_CALL, PROGRESS, ARTIFACT or STATUS');
  return kind;
}

/** A proto Part as the machine's TaskPart (checked afterwards by parseParts, with everything else). */
function fromPbPart(field: string, p: PbPart): unknown {
  if (p.text !== undefined) return { kind: 'text', text: p.text, ...(p.contentType ? { mimeType: p.contentType } : {}) };
  if (p.data !== undefined) return { kind: 'data', data: new Uint8Array(p.data), mimeType: p.contentType || 'application/octet-stream' };
  if (p.json !== undefined) return { kind: 'json', json: parseJson(`${field}.json`, p.json) };
  if (p.file !== undefined) return { kind: 'file', file: { cid: p.file.cid, name: p.file.name, mimeType: p.file.contentType, size: p.file.size } };
  throw invalid(field, 'empty part: set text, data, json or file');
}

function fromPbArtifact(field: string, a: PbArtifact): unknown {
  return {
    id: a.artifactId || newId('art'),
    name: a.name,
    parts: a.parts.map((p, i) => fromPbPart(`${field}.parts[${i}]`, p)),
    createdAt: a.createdAtMs || Date.now(),
  };
}

function toPbPart(p: TaskPart): PbPart {
  switch (p.kind) {
    case 'text':
      return { text: p.text, contentType: p.mimeType ?? '' };
    case 'data':
      return { data: Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength), contentType: p.mimeType };
    case 'json':
      return { json: JSON.stringify(p.json), contentType: 'application/json' };
    case 'file':
      return { file: { cid: p.file.cid, name: p.file.name, contentType: p.file.mimeType, size: p.file.size }, contentType: p.file.mimeType };
  }
}

function toPbArtifact(a: TaskArtifact): PbArtifact {
  return { artifactId: a.id, name: a.name, parts: a.parts.map(toPbPart), createdAtMs: a.createdAt };
}

export function toPbTask(t: TaskInfo): PbTask {
  return {
    id: t.id,
    requester: t.requester,
    assignee: t.assignee,
    role: t.role === 'requester' ? PbRole.TASK_ROLE_REQUESTER : PbRole.TASK_ROLE_ASSIGNEE,
    skill: t.skill,
    metadataJson: JSON.stringify(t.metadata),
    input: t.input.map(toPbPart),
    artifacts: t.artifacts.map(toPbArtifact),
    state: STATE_TO_PB[t.state],
    statusMessage: t.statusMessage,
    createdAtMs: t.createdAt,
    updatedAtMs: t.updatedAt,
    ...(t.deadline === null ? {} : { deadlineMs: t.deadline }),
    lastEventSeq: t.lastEventSeq,
  };
}

function toPbEvent(e: StreamEvent): PbTaskEvent {
  return {
    taskId: e.taskId,
    seq: e.seq,
    kind: KIND_TO_PB[e.kind],
    text: e.text,
    dataJson: e.data === undefined ? '' : JSON.stringify(e.data),
    artifact: e.artifact ? toPbArtifact(e.artifact) : undefined,
    state: e.state ? STATE_TO_PB[e.state] : PbState.TASK_STATE_UNSPECIFIED,
    progress: e.progress ?? 0,
    author: e.author,
    atMs: e.at,
  };
}

/** Upper bounds of encoded sizes, for the stream buffers' byte budget. */
function taskBytes(t: TaskInfo): number {
  return JSON.stringify(t, (_k, v: unknown) => (v instanceof Uint8Array ? v.byteLength : v)).length + 256;
}
function eventBytes(e: StreamEvent): number {
  return Buffer.byteLength(e.text) + (e.data === undefined ? 0 : JSON.stringify(e.data).length) + (e.artifact ? JSON.stringify(e.artifact).length : 0) + 256;
}
