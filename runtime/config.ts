// A schema-driven TOML config loader. It knows no primitive: a product hands it a schema
// (sections → keys → type, default, bounds, doc) and gets back typed values or an error that names the key.
//
// Precedence, highest first: overrides (command-line flags) → the file → the schema's defaults.
// The file is the first of: an explicit path (must exist), ./<fileName>, <dataDir>/<fileName>; none → defaults only.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ApiError } from './errors.ts';

export type FieldType = 'string' | 'int' | 'bool' | 'string[]' | 'duration';

/** The loaded value of a field type. Durations are milliseconds. */
export type ValueOf<T extends FieldType> =
  T extends 'string' ? string :
  T extends 'int' ? number :
  T extends 'bool' ? boolean :
  T extends 'string[]' ? string[] :
  number;

/** A value as a user writes it in the file: durations as "24h". */
export type RawValue = string | number | boolean | string[];

/** The config resolved so far, handed to computed defaults (keys earlier in schema order are set). */
export type Resolved = Record<string, Record<string, unknown>>;

export interface Field {
  type: FieldType;
  /** In file form ("24h", not 86400000), so defaults go through the same parsing and checks as the file;
   *  or a function of the keys before it, for defaults that depend on another key (a socket inside data_dir). */
  default: RawValue | ((resolved: Resolved) => RawValue);
  /** Inclusive bounds: the number for int, milliseconds for duration. */
  min?: number;
  max?: number;
  /** Extra validation; returns the problem ("must contain /p2p/…") or undefined. Method syntax keeps it bivariant. */
  check?(value: any): string | undefined;
  /** Normalises a valid value (expand "~"). Runs after check. */
  transform?(value: any): any;
  doc: string;
}

export type Schema = Record<string, Record<string, Field>>;

export type ConfigOf<S extends Schema> = { [Sec in keyof S]: { [K in keyof S[Sec]]: ValueOf<S[Sec][K]['type']> } };

export interface LoadOptions {
  /** --config: must exist. */
  configPath?: string;
  cwd: string;
  /** Where to look for <fileName> when neither --config nor ./<fileName> exists. */
  dataDir?: string;
  /** Dotted keys ("daemon.grpc_addr") to values; undefined entries are ignored, so flags can be passed as-is. */
  overrides?: Record<string, unknown>;
  fileName?: string;
}

export interface Loaded<S extends Schema> {
  config: ConfigOf<S>;
  /** The file the values came from, or 'defaults'. */
  source: string;
}

export function loadConfig<S extends Schema>(schema: S, opts: LoadOptions): Loaded<S> {
  const source = findConfigFile(opts);
  const file = source === 'defaults' ? {} : readToml(source);
  const where = source === 'defaults' ? '' : ` (in ${source})`;
  checkUnknownKeys(schema, file, where);
  const overrides = opts.overrides ?? {};
  for (const key of Object.keys(overrides)) {
    const [sec, name] = key.split('.');
    if (!sec || !name || !schema[sec]?.[name]) throw unknownKey(schema, key, ' (override)');
  }

  const resolved: Resolved = {};
  for (const [sec, fields] of Object.entries(schema)) {
    resolved[sec] = {};
    for (const [name, field] of Object.entries(fields)) {
      const key = `${sec}.${name}`;
      const fromFlag = overrides[key];
      const fromFile = (file[sec] as Record<string, unknown> | undefined)?.[name];
      let value: unknown;
      if (fromFlag !== undefined) value = coerce(field, key, fromFlag, true, ' (from the command line)');
      else if (fromFile !== undefined) value = coerce(field, key, fromFile, false, where);
      else {
        const d = typeof field.default === 'function' ? field.default(resolved) : field.default;
        value = coerce(field, key, d, false, ' (default)');
      }
      resolved[sec][name] = value;
    }
  }
  return { config: resolved as ConfigOf<S>, source };
}

function findConfigFile(opts: LoadOptions): string {
  const fileName = opts.fileName ?? 'moltbook.toml';
  if (opts.configPath !== undefined) {
    const p = resolve(opts.cwd, opts.configPath);
    if (!existsSync(p)) throw new ApiError('INVALID_ARGUMENT', `config: file not found: ${p}`, 'config');
    return p;
  }
  const candidates = [join(opts.cwd, fileName)];
  if (opts.dataDir) candidates.push(join(opts.dataDir, fileName));
  return candidates.map((c) => resolve(c)).find((c) => existsSync(c)) ?? 'defaults';
}

function readToml(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ApiError('INVALID_ARGUMENT', `config: cannot read ${path}: ${(e as Error).message}`, 'config');
  }
  try {
    return parse(text) as Record<string, unknown>;
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    // smol-toml's message is "Invalid TOML document: <reason>\n\n<code block>"; keep the reason and the block.
    const [first = '', ...rest] = e.message.split('\n');
    const reason = first.replace(/^Invalid TOML document:\s*/, '');
    throw new ApiError('INVALID_ARGUMENT',
      `config: ${path}:${e.line}:${e.column}: invalid TOML: ${reason}\n${rest.join('\n').trimEnd()}`, 'config');
  }
}

function checkUnknownKeys(schema: Schema, file: Record<string, unknown>, where: string): void {
  for (const [sec, table] of Object.entries(file)) {
    if (!schema[sec]) {
      // A bare key at the top level ("port = 1") is a key outside any section.
      const isTable = typeof table === 'object' && table !== null && !Array.isArray(table);
      throw isTable ? unknownSection(schema, sec, where) : unknownKey(schema, sec, where);
    }
    if (typeof table !== 'object' || table === null || Array.isArray(table)) {
      throw new ApiError('INVALID_ARGUMENT', `${sec}: expected a section [${sec}]${where}`, sec);
    }
    for (const name of Object.keys(table)) {
      if (!schema[sec][name]) throw unknownKey(schema, `${sec}.${name}`, where);
    }
  }
}

function unknownSection(schema: Schema, sec: string, where: string): ApiError {
  const hint = closest(sec, Object.keys(schema));
  return new ApiError('INVALID_ARGUMENT',
    `${sec}: unknown section [${sec}]${where}${hint ? `; did you mean [${hint}]?` : ''}`, sec);
}

function unknownKey(schema: Schema, key: string, where: string): ApiError {
  const all = Object.entries(schema).flatMap(([s, f]) => Object.keys(f).map((k) => `${s}.${k}`));
  const name = key.includes('.') ? key.slice(key.indexOf('.') + 1) : key;
  // Suggest a near spelling in any section, or the same key in the section it belongs to.
  const hint = closest(key, all) ?? all.find((k) => k.endsWith(`.${name}`));
  return new ApiError('INVALID_ARGUMENT', `${key}: unknown key${where}${hint ? `; did you mean ${hint}?` : ''}`, key);
}

/** The candidate within edit distance 2 (for keys this short, a typo), if any. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Checks and converts one value. Flags are lenient (a string for a list, ms for a duration); the file is strict. */
function coerce(field: Field, key: string, raw: unknown, fromFlag: boolean, where: string): unknown {
  const bad = (expected: string): ApiError =>
    new ApiError('INVALID_ARGUMENT', `${key}: expected ${expected}, got ${show(raw)}${where}`, key);
  let value: unknown;
  switch (field.type) {
    case 'string':
      if (typeof raw !== 'string') throw bad('a string');
      value = raw;
      break;
    case 'bool':
      if (typeof raw === 'boolean') value = raw;
      else if (raw === 'true' || raw === 'false') value = raw === 'true';
      else throw bad('true or false');
      break;
    case 'string[]':
      if (fromFlag && typeof raw === 'string') value = [raw];
      else if (Array.isArray(raw) && raw.every((s) => typeof s === 'string')) value = [...raw];
      else throw bad('an array of strings');
      break;
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || outOfRange(field, n)) throw bad(`an integer${rangeText(field, String)}`);
      value = n;
      break;
    }
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : fromFlag && typeof raw === 'number' ? raw : undefined;
      if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0 || outOfRange(field, ms)) {
        throw bad(`a duration like "24h", "90s" or "500ms"${rangeText(field, formatDuration)}`);
      }
      value = ms;
      break;
    }
  }
  const problem = field.check?.(value);
  if (problem) throw new ApiError('INVALID_ARGUMENT', `${key}: ${problem}${where}`, key);
  return field.transform ? field.transform(value) : value;
}

const outOfRange = (f: Field, n: number): boolean => (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max);

function rangeText(f: Field, fmt: (n: number) => string): string {
  if (f.min !== undefined && f.max !== undefined) return ` ${fmt(f.min)}–${fmt(f.max)}`;
  if (f.min !== undefined) return ` ≥ ${fmt(f.min)}`;
  if (f.max !== undefined) return ` ≤ ${fmt(f.max)}`;
  return '';
}

const show = (v: unknown): string => (typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));

// Durations: one or more <integer><unit> parts, "1h30m", "90s", "500ms"; units ms, s, m, h, d.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1h30m" → 5400000; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+\s*(ms|s|m|h|d)\s*)+$/.test(s)) return undefined;
  let total = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)\s*(ms|s|m|h|d)/g)) total += Number(n) * UNIT_MS[unit];
  return total;
}

/** The canonical file form: 86400000 → "24h", 5400500 → "1h30m500ms" (hours are not folded into days). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of ['h', 'm', 's', 'ms']) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * UNIT_MS[unit];
  }
  return out;
}
