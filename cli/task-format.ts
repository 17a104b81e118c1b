// Tasks as the CLI shows them, shared by every task command: enum words, --json shapes and human lines.
//
// Like base.ts this imports nothing heavy: the enum numbers are spelled out here (a unit test keeps them in step
// with the generated module), and the generated types are imported as types only (erased at run time).
import type { Part } from '../proto/gen/moltmesh/v1/common.ts';
import type { Artifact, Task, TaskEvent, TaskEventKind, TaskRole, TaskState } from '../proto/gen/moltmesh/v1/tasks.ts';
import { humanDuration, quote } from './base.ts';

/** TaskState by number, as printed ("COMPLETED") and in --json. */
export const TASK_STATE = ['UNSPECIFIED', 'SUBMITTED', 'WORKING', 'INPUT_REQUIRED', 'AUTH_REQUIRED', 'COMPLETED', 'FAILED', 'CANCELED', 'REJECTED'];
/** TaskRole by number. */
export const TASK_ROLE = ['UNSPECIFIED', 'REQUESTER', 'ASSIGNEE'];
/** TaskEventKind by number. */
export const TASK_EVENT_KIND = ['UNSPECIFIED', 'TOKEN', 'TOOL_CALL', 'PROGRESS', 'ARTIFACT', 'STATUS'];

/** Flag spellings of the states (`--state input-required`), in TaskState order from SUBMITTED. */
export const STATE_FLAGS = ['submitted', 'working', 'input-required', 'auth-required', 'completed', 'failed', 'canceled', 'rejected'] as const;
/** Flag spellings of the event kinds (`--kind tool-call`), in TaskEventKind order from TOKEN. */
export const KIND_FLAGS = ['token', 'tool-call', 'progress', 'artifact', 'status'] as const;

export const stateName = (s: number): string => TASK_STATE[s] ?? String(s);
export const roleName = (r: number): string => TASK_ROLE[r] ?? String(r);
const REQUESTER = TASK_ROLE.indexOf('REQUESTER');
const ASSIGNEE = TASK_ROLE.indexOf('ASSIGNEE');
const PROGRESS = TASK_EVENT_KIND.indexOf('PROGRESS');
const STATUS = TASK_EVENT_KIND.indexOf('STATUS');
export const kindName = (k: number): string => TASK_EVENT_KIND[k] ?? String(k);

/** `input-required` → TaskState.TASK_STATE_INPUT_REQUIRED. */
export const stateOfFlag = (flag: (typeof STATE_FLAGS)[number]): TaskState => (STATE_FLAGS.indexOf(flag) + 1) as TaskState;
/** `tool-call` → TaskEventKind.TASK_EVENT_KIND_TOOL_CALL. */
export const kindOfFlag = (flag: (typeof KIND_FLAGS)[number]): TaskEventKind => (KIND_FLAGS.indexOf(flag) + 1) as TaskEventKind;
/** `requester` → TaskRole.TASK_ROLE_REQUESTER. */
export const roleOfFlag = (flag: 'requester' | 'assignee'): TaskRole => (flag === 'requester' ? 1 : 2) as TaskRole;

/** "a2a:v1:cap:text-generation" → "text-generation", as users type it. */
export const skillName = (skill: string): string => skill.replace(/^a2a:v1:cap:/, '');

// ── --json ──────────────────────────────────────────────────────────────────────────────────────────────

/** A part for --json: bytes as base64 under `dataBase64` (like inbox messages); unset oneof members omitted. */
export function partJson(p: Part): Record<string, unknown> {
  const { data, ...rest } = p;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) out[k] = v;
  if (data !== undefined) out.dataBase64 = Buffer.from(data).toString('base64');
  return out;
}

export function artifactJson(a: Artifact): Record<string, unknown> {
  return { ...a, parts: a.parts.map(partJson) };
}

/** The generated Task with its enums as words ("COMPLETED", "REQUESTER"). */
export function taskJson(t: Task): Record<string, unknown> {
  return {
    ...t,
    role: roleName(t.role),
    state: stateName(t.state),
    input: t.input.map(partJson),
    artifacts: t.artifacts.map(artifactJson),
  };
}

/** The generated TaskEvent with its enums as words ("TOKEN"; `state` is UNSPECIFIED except on STATUS events). */
export function eventJson(e: TaskEvent): Record<string, unknown> {
  const { artifact, ...rest } = e;
  return {
    ...rest,
    kind: kindName(e.kind),
    state: stateName(e.state),
    ...(artifact ? { artifact: artifactJson(artifact) } : {}),
  };
}

// ── Human ───────────────────────────────────────────────────────────────────────────────────────────────

/** One part on one line: text quoted, bytes as a size and type, JSON compact, a file by name and cid. */
export function partText(p: Part, max = Infinity): string {
  if (p.text !== undefined) return quote(p.text.length > max ? `${p.text.slice(0, max)}…` : p.text);
  if (p.data !== undefined) return `<${p.data.length} bytes ${p.contentType || 'application/octet-stream'}>`;
  if (p.json !== undefined) return p.json.length > max ? `${p.json.slice(0, max)}…` : p.json;
  if (p.file !== undefined) return `<file ${p.file.name || '(unnamed)'} ${p.file.cid}, ${p.file.size} bytes${p.file.contentType ? ` ${p.file.contentType}` : ''}>`;
  return '<empty part>';
}

/** The text of a task's artifacts: every text part, in order, joined (the "output" of a completed task). */
export function artifactsText(artifacts: Artifact[]): string {
  return artifacts.flatMap((a) => a.parts.flatMap((p) => (p.text === undefined ? [] : [p.text]))).join('');
}

/** An absolute time as UTC ISO, with how far it is from now: "2026-05-30T12:00:01.123Z (4s ago)". */
export function when(ms: number, now = Date.now()): string {
  const d = ms - now;
  const rel = Math.abs(d) < 1000 ? 'now' : d > 0 ? `in ${humanDuration(d)}` : `${humanDuration(-d)} ago`;
  return `${new Date(ms).toISOString()} (${rel})`;
}

/** The other party, seen from our side: "to did:…" for a task we asked for, "from did:…" for one we do. */
export const peerOf = (t: Task): string => (t.role === REQUESTER ? `to ${t.assignee}` : `from ${t.requester}`);

/** `task_01…  WORKING  text-generation  to did:key:…  2m 3s ago` (the columns of list-tasks). */
export function taskCells(t: Task, now = Date.now()): string[] {
  return [t.id, stateName(t.state), skillName(t.skill), peerOf(t), `${humanDuration(Math.max(0, now - t.createdAtMs))} ago`];
}

/** An incoming task on one line: id, requester, skill and the first input part. */
export function incomingLine(t: Task): string {
  const input = t.input.length ? `  ${partText(t.input[0], 80)}${t.input.length > 1 ? ` (+${t.input.length - 1} more)` : ''}` : '';
  return `${t.id}  from ${t.requester}  ${skillName(t.skill)}${input}`;
}

/** `#3  TOKEN  "text"`, `#4  PROGRESS  50%  "note"`, `#5  TOOL_CALL  {"tool":…}`, `#6  ARTIFACT  name: "…"`. */
export function eventLine(e: TaskEvent): string {
  const parts = [`#${e.seq}`, kindName(e.kind)];
  if (e.kind === PROGRESS) parts.push(`${Math.round(e.progress * 1000) / 10}%`);
  if (e.kind === STATUS && e.state) parts.push(stateName(e.state));
  if (e.text) parts.push(quote(e.text));
  if (e.dataJson) parts.push(e.dataJson);
  if (e.artifact) parts.push(`${e.artifact.name || e.artifact.artifactId}: ${e.artifact.parts.map((p) => partText(p)).join(' ')}`);
  return parts.join('  ');
}

/** Everything get-task shows, as `Label  value` rows. */
export function taskRows(t: Task): Array<[string, string | number]> {
  const rows: Array<[string, string | number]> = [
    ['Task ID', t.id],
    ['Role', roleName(t.role)],
    ['Requester', t.role === REQUESTER ? `${t.requester} (you)` : t.requester],
    ['Assignee', t.role === ASSIGNEE ? `${t.assignee} (you)` : t.assignee],
    ['Skill', skillName(t.skill)],
    ['State', stateName(t.state)],
  ];
  if (t.statusMessage) rows.push(['Message', quote(t.statusMessage)]);
  rows.push(['Created', when(t.createdAtMs)], ['Updated', when(t.updatedAtMs)]);
  rows.push(['Deadline', t.deadlineMs === undefined ? 'none' : when(t.deadlineMs)]);
  if (t.metadataJson && t.metadataJson !== '{}') rows.push(['Metadata', t.metadataJson]);
  rows.push(['Input', t.input.length ? t.input.map((p) => partText(p, 200)).join('\n') : '(none)']);
  rows.push(['Artifacts', t.artifacts.length
    ? t.artifacts.map((a) => `${a.name || a.artifactId}: ${a.parts.map((p) => partText(p)).join(' ')}`).join('\n')
    : '(none)']);
  rows.push(['Last event', t.lastEventSeq ? `#${t.lastEventSeq}` : 'none']);
  return rows;
}
