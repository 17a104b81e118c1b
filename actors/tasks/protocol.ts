// What travels between daemons for tasks, and the checks remote input gets before it reaches a task machine.
//
//   `task`        { taskId, n, message }  one transition of the sender's copy (message n, see machines/task.ts
//                                          "Order"), sent through the task outbox; answered { applied: true } once
//                                          the receiver's copy has it durably, else { error, permanent }.
//   `task.events` { taskId, after, limit } the requester asks the assignee for stored stream events after `after`
//                                          (recovering what GossipSub lost); answered { events, last }.
import { invalid } from '../../runtime/errors.ts';
import { capabilityId } from '../capability.ts';
import { isDid } from '../identity/did.ts';
import {
  isTaskEventType,
  type JsonObject,
  type JsonValue,
  type TaskArtifact,
  type TaskPart,
  type TaskPeerMessage,
  type TaskSpec,
} from '../../machines/task.ts';

export const TASK_ENVELOPE = 'task';
export const TASK_EVENTS_ENVELOPE = 'task.events';
export const TASK_ID = /^task_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Bounds on what one task may carry, so a task fits in one envelope with room to spare. */
export const TASK_LIMITS = {
  /** Encoded JSON of the metadata, and of one JSON part. */
  jsonBytes: 64 * 1024,
  /** All of a transition's parts/artifacts together (text, data, JSON). */
  contentBytes: 512 * 1024,
  parts: 64,
  text: 4096,
};

export type TaskAck = { applied: true } | { error: string; permanent: boolean };

export interface TaskWireMessage {
  taskId: string;
  n: number;
  message: TaskPeerMessage;
}


function str(field: string, v: unknown, max = TASK_LIMITS.text): string {
  if (typeof v !== 'string') throw invalid(field, 'not a string');
  if (v.length > max) throw invalid(field, `longer than ${max} characters`);
  return v;
}

function optStr(field: string, v: unknown, max = TASK_LIMITS.text): string | undefined {
  return v === undefined ? undefined : str(field, v, max);
}

function time(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(field, 'not a time in ms');
  return v;
}

/** A JSON value as decoded from CBOR or parsed from text: plain data only, bounded in size. */
export function jsonValue(field: string, v: unknown): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    // cycles, BigInt
  }
  if (text === undefined) throw invalid(field, 'not JSON');
  if (Buffer.byteLength(text) > TASK_LIMITS.jsonBytes) throw invalid(field, `larger than ${TASK_LIMITS.jsonBytes} bytes of JSON`);
  const parsed = JSON.parse(text) as JsonValue;
  return parsed;
}

export function jsonObject(field: string, v: unknown): JsonObject {
  const j = jsonValue(field, v);
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw invalid(field, 'not a JSON object');
  return j;
}

/** Parts and artifacts, checked one by one and in total (`contentBytes`). */
export class ContentBudget {
  #bytes = 0;
  add(field: string, bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes > TASK_LIMITS.contentBytes) throw invalid(field, `content larger than ${TASK_LIMITS.contentBytes} bytes in all`);
  }
}

export function parsePart(field: string, v: unknown, budget: ContentBudget): TaskPart {
  if (typeof v !== 'object' || v === null) throw invalid(field, 'not a part');
  const p = v as Record<string, unknown>;
  const mimeType = optStr(`${field}.mimeType`, p.mimeType, 255);
  switch (p.kind) {
    case 'text': {
      const text = str(`${field}.text`, p.text, TASK_LIMITS.contentBytes);
      budget.add(field, Buffer.byteLength(text));
      return { kind: 'text', text, ...(mimeType ? { mimeType } : {}) };
    }
    case 'data': {
      if (!(p.data instanceof Uint8Array)) throw invalid(`${field}.data`, 'not bytes');
      budget.add(field, p.data.byteLength);
      return { kind: 'data', data: p.data, mimeType: mimeType || 'application/octet-stream' };
    }
    case 'json': {
      const json = jsonValue(`${field}.json`, p.json);
      budget.add(field, JSON.stringify(json).length);
      return { kind: 'json', json };
    }
    case 'file': {
      const f = p.file as Record<string, unknown> | null;
      if (typeof f !== 'object' || f === null) throw invalid(`${field}.file`, 'not a file reference');
      const size = f.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${field}.file.size`, 'not a size');
      return {
        kind: 'file',
        file: { cid: str(`${field}.file.cid`, f.cid, 256), name: str(`${field}.file.name`, f.name, 1024), mimeType: str(`${field}.file.mimeType`, f.mimeType, 255), size },
      };
    }
    default:
      throw invalid(`${field}.kind`, 'must be text, data, json or file');
  }
}

export function parseParts(field: string, v: unknown, budget = new ContentBudget()): TaskPart[] {
  if (!Array.isArray(v)) throw invalid(field, 'not a list');
  if (v.length > TASK_LIMITS.parts) throw invalid(field, `more than ${TASK_LIMITS.parts} parts`);
  return v.map((p, i) => parsePart(`${field}[${i}]`, p, budget));
}

export function parseArtifacts(field: string, v: unknown, budget = new ContentBudget()): TaskArtifact[] {
  if (!Array.isArray(v)) throw invalid(field, 'not a list');
  if (v.length > TASK_LIMITS.parts) throw invalid(field, `more than ${TASK_LIMITS.parts} artifacts`);
  return v.map((a, i) => {
    if (typeof a !== 'object' || a === null) throw invalid(`${field}[${i}]`, 'not an artifact');
    const r = a as Record<string, unknown>;
    return {
      id: str(`${field}[${i}].id`, r.id, 128),
      name: str(`${field}[${i}].name`, r.name, 1024),
      parts: parseParts(`${field}[${i}].parts`, r.parts, budget),
      createdAt: time(`${field}[${i}].createdAt`, r.createdAt),
    };
  });
}

export function parseTaskSpec(field: string, v: unknown): TaskSpec {
  if (typeof v !== 'object' || v === null) throw invalid(field, 'not a task');
  const t = v as Record<string, unknown>;
  if (typeof t.id !== 'string' || !TASK_ID.test(t.id)) throw invalid(`${field}.id`, 'not a task_ ULID');
  for (const k of ['requester', 'assignee'] as const) if (typeof t[k] !== 'string' || !isDid(t[k])) throw invalid(`${field}.${k}`, 'not a DID');
  if (t.requester === t.assignee) throw invalid(field, 'requester and assignee are the same agent');
  return {
    id: t.id,
    requester: t.requester as string,
    assignee: t.assignee as string,
    skill: capabilityId(`${field}.skill`, str(`${field}.skill`, t.skill, 128)),
    metadata: jsonObject(`${field}.metadata`, t.metadata),
    input: parseParts(`${field}.input`, t.input),
    ...(t.deadline === undefined ? {} : { deadline: time(`${field}.deadline`, t.deadline) }),
    createdAt: time(`${field}.createdAt`, t.createdAt),
  };
}

/**
 * A `task` envelope's payload from `from` (the authenticated sender), checked field by field. The message's `by`
 * is the sender, whatever the payload says; `at` is the sender's clock (the receiver stamps its own on appending).
 */
export function parseTaskWireMessage(v: unknown, from: string): TaskWireMessage {
  if (typeof v !== 'object' || v === null) throw invalid('payload', 'not an object');
  const p = v as Record<string, unknown>;
  if (typeof p.taskId !== 'string' || !TASK_ID.test(p.taskId)) throw invalid('payload.taskId', 'not a task_ ULID');
  if (typeof p.n !== 'number' || !Number.isSafeInteger(p.n) || p.n < 1) throw invalid('payload.n', 'not a message number');
  const m = p.message as Record<string, unknown> | null;
  if (typeof m !== 'object' || m === null) throw invalid('payload.message', 'not an object');
  const at = time('payload.message.at', m.at);
  if (m.type === 'TASK_CREATED') {
    const task = parseTaskSpec('payload.message.task', m.task);
    if (task.id !== p.taskId) throw invalid('payload.message.task.id', 'differs from payload.taskId');
    return { taskId: p.taskId, n: p.n, message: { type: 'TASK_CREATED', by: from, at, task } };
  }
  if (!isTaskEventType(m.type)) throw invalid('payload.message.type', 'not a task event');
  const budget = new ContentBudget();
  const lastEventSeq = m.lastEventSeq;
  if (lastEventSeq !== undefined && (typeof lastEventSeq !== 'number' || !Number.isSafeInteger(lastEventSeq) || lastEventSeq < 0)) {
    throw invalid('payload.message.lastEventSeq', 'not an event number');
  }
  const base = { by: from, at, ...(lastEventSeq === undefined ? {} : { lastEventSeq }) };
  const f = (k: string) => `payload.message.${k}`;
  const message = ((): TaskPeerMessage => {
    switch (m.type) {
      case 'ACCEPT':
        return { type: m.type, ...base, ...(m.message === undefined ? {} : { message: str(f('message'), m.message) }) };
      case 'REJECT':
      case 'FAIL':
      case 'ABORT':
        return { type: m.type, ...base, reason: str(f('reason'), m.reason) };
      case 'REQUEST_INPUT':
      case 'REQUEST_AUTH':
        return { type: m.type, ...base, message: str(f('message'), m.message) };
      case 'COMPLETE':
        return {
          type: m.type, ...base,
          artifacts: parseArtifacts(f('artifacts'), m.artifacts, budget),
          ...(m.message === undefined ? {} : { message: str(f('message'), m.message) }),
        };
      case 'PROVIDE_INPUT':
      case 'PROVIDE_AUTH':
        return {
          type: m.type, ...base,
          parts: parseParts(f('parts'), m.parts, budget),
          ...(m.message === undefined ? {} : { message: str(f('message'), m.message) }),
        };
      case 'CANCEL':
        return { type: m.type, ...base, ...(m.reason === undefined ? {} : { reason: str(f('reason'), m.reason) }) };
      case 'DEADLINE_PASSED':
        return { type: m.type, ...base };
      default:
        throw invalid('payload.message.type', 'not a task event'); // unreachable: isTaskEventType above
    }
  })();
  return { taskId: p.taskId, n: p.n, message };
}
