// Agent Cards and name records as the CLI shows them, shared by find-agents, get-agent-card, publish-card and the
// name commands: human lines and rows, and the --json shapes.
//
// Like task-format.ts this imports nothing heavy: the generated types are imported as types only (erased at run time).
import type { AgentCard, Skill } from '../proto/gen/moltmesh/v1/cards.ts';
import type { NameRecord } from '../proto/gen/moltmesh/v1/names.ts';

export const CAPABILITY_PREFIX = 'a2a:v1:cap:';

/** "a2a:v1:cap:text-generation" → "text-generation", as users type it. */
export const shortCapability = (cap: string): string => (cap.startsWith(CAPABILITY_PREFIX) ? cap.slice(CAPABILITY_PREFIX.length) : cap);

/** "text-generation" → "a2a:v1:cap:text-generation" (a full id stays as it is). */
export const fullCapability = (cap: string): string => (cap.startsWith(CAPABILITY_PREFIX) ? cap : CAPABILITY_PREFIX + cap);

/** UTC ISO without milliseconds: "2026-05-31T14:22:00Z" (the daemon's own messages write times this way). */
export const isoTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Width of the name column in find-agents' lines: cards arrive one by one, so the column cannot be measured. */
export const NAME_COLUMN = 16;

/** `did:key:z6Mk…  swift-falcon      text-generation, embedding` (find-agents' line; ours marked " (you)"). */
export function cardLine(card: AgentCard, self = ''): string {
  const did = card.did === self ? `${card.did} (you)` : card.did;
  return `${did}  ${(card.name || '(unnamed)').padEnd(NAME_COLUMN)}  ${card.capabilities.map(shortCapability).join(', ')}`.trimEnd();
}

/** Everything get-agent-card and publish-card show, as `Label  value` rows. */
export function cardRows(card: AgentCard, self = ''): Array<[string, string | number]> {
  const lines = (xs: string[]) => (xs.length ? xs.join('\n') : '(none)');
  return [
    ['DID', card.did === self ? `${card.did} (you)` : card.did],
    ['Name', card.name || '(unnamed)'],
    ['Description', card.description || '(none)'],
    ['Capabilities', card.capabilities.length ? card.capabilities.map(shortCapability).join(', ') : '(none)'],
    ['Skills', lines(card.skills.map((s) => (s.name && s.name !== s.id ? `${shortCapability(s.id)}: ${s.name}` : shortCapability(s.id))))],
    ['Addresses', lines(card.addresses)],
    ['Protocol', card.protocolVersion || '(unknown)'],
    ['Issued', isoTime(card.issuedAtMs)],
    ['Expires', isoTime(card.expiresAtMs)],
    ['Seq', card.seq],
  ];
}

/** A schema string as JSON: parsed when it is JSON, kept as text when it is not, omitted when empty. */
function schema(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A skill for --json: the schemas parsed (`inputSchema`, `outputSchema`) instead of JSON-in-a-string. */
export function skillJson(s: Skill): Record<string, unknown> {
  const { inputSchemaJson, outputSchemaJson, ...rest } = s;
  const out: Record<string, unknown> = { ...rest };
  const input = schema(inputSchemaJson);
  const output = schema(outputSchemaJson);
  if (input !== undefined) out.inputSchema = input;
  if (output !== undefined) out.outputSchema = output;
  return out;
}

/** The generated AgentCard for --json: skills' schemas parsed, the signature as hex, times also as ISO. */
export function cardJson(card: AgentCard): Record<string, unknown> {
  return {
    ...card,
    skills: card.skills.map(skillJson),
    issuedAt: isoTime(card.issuedAtMs),
    expiresAt: isoTime(card.expiresAtMs),
    signature: Buffer.from(card.signature).toString('hex'),
  };
}

/** `Name / DID / Expires` rows of name claim and name resolve ("(you)" for ours, "(auto-renewed)" when it is). */
export function nameRows(r: NameRecord, self = ''): Array<[string, string]> {
  return [
    ['Name', r.name],
    ['DID', r.did === self ? `${r.did} (you)` : r.did],
    ['Expires', `${isoTime(r.expiresAtMs)}${r.autoRenew ? ' (auto-renewed)' : ''}`],
  ];
}

/** The generated NameRecord for --json, with its times also as ISO. */
export function nameJson(r: NameRecord): Record<string, unknown> {
  return { ...r, claimedAt: isoTime(r.claimedAtMs), expiresAt: isoTime(r.expiresAtMs) };
}

/** `NAME / EXPIRES / SEQ` cells of name list, header first. */
export function nameCells(records: NameRecord[]): string[][] {
  return [['NAME', 'EXPIRES', 'SEQ'], ...records.map((r) => [r.name, `${isoTime(r.expiresAtMs)}${r.autoRenew ? ' (auto-renewed)' : ''}`, String(r.seq)])];
}

/**
 * A --skill-file's content as Skills: a JSON array (or `{ "skills": [...] }`) of objects with `id` and optionally
 * `name`, `description`, and the schemas as objects (`inputSchema`, `outputSchema`) or as JSON text
 * (`inputSchemaJson`, `outputSchemaJson`). Throws an Error saying what is wrong.
 */
export function parseSkills(text: string): Skill[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { skills?: unknown } | null)?.skills;
  if (!Array.isArray(list)) throw new Error('expected a JSON array of skills like [{"id":"text-generation","name":"Text generation"}]');
  return list.map((s: unknown, i) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new Error(`skill ${i}: expected an object`);
    const o = s as Record<string, unknown>;
    const str = (key: string): string => {
      const v = o[key];
      if (v === undefined || v === null) return '';
      if (typeof v !== 'string') throw new Error(`skill ${i}: ${key} must be a string`);
      return v;
    };
    const schemaText = (obj: string, text: string): string => {
      if (o[obj] !== undefined) return typeof o[obj] === 'string' ? (o[obj] as string) : JSON.stringify(o[obj]);
      return str(text);
    };
    const id = str('id');
    if (!id) throw new Error(`skill ${i}: "id" (a capability name like text-generation) is required`);
    return {
      id,
      name: str('name'),
      description: str('description'),
      inputSchemaJson: schemaText('inputSchema', 'inputSchemaJson'),
      outputSchemaJson: schemaText('outputSchema', 'outputSchemaJson'),
    };
  });
}

/**
 * The name the words of `name claim swift falcon` (or one `swift-falcon`) spell, checked by the daemon's own rule
 * (actors/discovery/names.ts, imported here on use) before any call: `bad` gets the message saying what is allowed.
 */
export async function nameOfWords(words: readonly string[], bad: (message: string) => never): Promise<string> {
  const { nameFromWords } = await import('../actors/discovery/names.ts');
  try {
    return nameFromWords(words);
  } catch (e) {
    if ((e as { code?: string }).code === 'INVALID_ARGUMENT') bad((e as Error).message);
    throw e;
  }
}
