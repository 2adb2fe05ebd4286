/**
 * Checking a configuration against CONFIG_SCHEMA (Ajv), with problems a person can act on: the key's path, the
 * expected type and the offending value; and typing `--set` / environment variable strings by the schema.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { CONFIG_SCHEMA, schemaAt, type Schema } from './config-schema.js';

/** One thing wrong with a configuration. */
export interface ConfigProblem {
  /** Where, as keys from the top (`["limits", "rateLimit", "perSecond"]`). */
  keys: string[];
  /** Where: `limits.rateLimit.perSecond`, `endpoints["/ws/x"].auth`, `auth.origins.allow[1]` (root: empty). */
  path: string;
  /** What the schema accepts there (`integer >= 0`, `one of "memory", "redis"`); for an unknown key, the key
   * meant (`did you mean limits.maxConnections?`) or the keys there are. */
  expected: string;
  /** The value found (undefined for a missing key). */
  value: unknown;
  /** `path: expected …, got …` — one line, as the CLI prints it. */
  message: string;
}

/**
 * Thrown by `new Switchboard(config)`, `Switchboard.create` and `loadConfig` for a configuration the schema
 * refuses. `problems` lists every one found (not only the first); the message has one line per problem.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, allowUnionTypes: true });
const validateFull = ajv.compile(CONFIG_SCHEMA);
const partCache = new WeakMap<Schema, ValidateFunction>();

function validatorOf(schema: Schema): ValidateFunction {
  let v = partCache.get(schema);
  if (v === undefined) {
    v = ajv.compile(schema);
    partCache.set(schema, v);
  }
  return v;
}

/** The problems of a complete configuration (the defaults merged with every source); empty when it is valid. */
export function configProblems(config: unknown): ConfigProblem[] {
  if (validateFull(config)) return [];
  return report(validateFull.errors ?? []);
}

function inBranchOf(e: ErrorObject, union: ErrorObject): boolean {
  return e !== union && e.schemaPath.startsWith(`${union.schemaPath}/`) && (e.instancePath === union.instancePath || e.instancePath.startsWith(`${union.instancePath}/`));
}

/**
 * Ajv errors to problems. A union (anyOf) is reported as one problem ("expected A or B") unless the value is an
 * object or array and exactly one branch takes that kind: then what is wrong inside it is reported instead.
 */
function report(errors: ErrorObject[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const top = errors.filter((e) => !errors.some((u) => u.keyword === 'anyOf' && inBranchOf(e, u)));
  for (const e of top) {
    const parent = e.parentSchema as Schema;
    if (e.keyword === 'anyOf') {
      const branches = e.schema as Schema[];
      const kind = kindOf(e.data);
      const fitting = branches.map((b, i) => (accepts(b, kind) ? i : -1)).filter((i) => i >= 0);
      if ((kind === 'object' || kind === 'array') && fitting.length === 1) {
        const inner = errors.filter((x) => inBranchOf(x, e) && x.schemaPath.startsWith(`${e.schemaPath}/${fitting[0]}/`));
        const nested = report(inner);
        if (nested.length > 0) {
          out.push(...nested);
          continue;
        }
      }
      out.push(problem(segments(e.instancePath), describe(parent), e.data));
    } else if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {});
      const suggestion = closest(key, known);
      const at = segments(e.instancePath);
      const where = at.length === 0 ? 'the top level' : render(at);
      const expected = suggestion !== undefined ? `did you mean ${render([...at, suggestion])}?` : `${where} has: ${known.join(', ')}`;
      out.push(problem([...at, key], expected, (e.data as Record<string, unknown>)[key], 'unknown key', suggestion));
    } else if (e.keyword === 'required') {
      const key = (e.params as { missingProperty: string }).missingProperty;
      out.push(problem([...segments(e.instancePath), key], describe(parent.properties?.[key] ?? {}), undefined));
    } else {
      out.push(problem(segments(e.instancePath), describe(parent), e.data));
    }
  }
  const seen = new Set<string>();
  return out.filter((p) => (seen.has(p.path) ? false : (seen.add(p.path), true)));
}

type Kind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

function kindOf(v: unknown): Kind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  return t === 'object' || t === 'string' || t === 'number' || t === 'boolean' ? t : 'null';
}

/** Whether a schema takes values of this kind at all (ignoring constraints). */
function accepts(s: Schema, kind: Kind): boolean {
  if (s.anyOf !== undefined) return s.anyOf.some((b) => accepts(b, kind));
  if (s.const !== undefined) return kindOf(s.const) === kind;
  if (s.enum !== undefined) return s.enum.some((v) => kindOf(v) === kind);
  if (s.type === undefined) return true;
  const types = Array.isArray(s.type) ? s.type : [s.type];
  return types.some((t) => t === kind || (t === 'integer' && kind === 'number'));
}

/** Instance path (JSON pointer) to key segments. */
function segments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `limits.rateLimit.perSecond`, `endpoints["/ws/x"].auth`, `auth.origins.allow[0]`. */
export function render(path: readonly string[]): string {
  let out = '';
  for (const key of path) {
    if (/^[0-9]+$/.test(key)) out += `[${key}]`;
    else if (/^[A-Za-z_$*][\w$*-]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

const SECRET_KEY = /secret|password|token|apikey|privatekey/i;

function problem(path: string[], expected: string, value: unknown, what?: string, meant?: string): ConfigProblem {
  const where = render(path);
  // A secret's value stays out of logs, also under a misspelt key.
  const secret = typeof value === 'string' && value.length > 0 && (SECRET_KEY.test(path.at(-1) ?? '') || SECRET_KEY.test(meant ?? ''));
  const shown = value === undefined ? 'nothing (the key is missing)' : secret ? `a string of ${value.length} characters (not shown)` : show(value);
  const message = what === undefined ? `${where || '(the configuration)'}: expected ${expected}, got ${shown}` : `${where}: ${what} (${expected}), got ${shown}`;
  return { keys: path, path: where, expected, value, message };
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** What a schema accepts, in words. */
export function describe(s: Schema): string {
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (s.title !== undefined) return types.includes('null') ? `${s.title} or null` : s.title;
  if (s.anyOf !== undefined) return s.anyOf.map(describe).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum !== undefined) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  return types.map((t) => describeType(t, s)).join(' or ') || 'any value';
}

function describeType(t: string, s: Schema): string {
  if (t === 'integer' || t === 'number') {
    const name = t === 'integer' ? 'integer' : 'number';
    if (s.minimum !== undefined && s.maximum !== undefined) return `${name} from ${s.minimum} to ${s.maximum}`;
    if (s.minimum !== undefined) return `${name} >= ${s.minimum}`;
    if (s.exclusiveMinimum !== undefined) return `${name} > ${s.exclusiveMinimum}`;
    return name;
  }
  if (t === 'string') return s.minLength !== undefined && s.minLength > 0 ? 'non-empty string' : 'string';
  if (t === 'array') return s.items !== undefined ? `${s.minItems ? 'non-empty ' : ''}array of ${describe(s.items)}` : 'array';
  return t;
}

/** The known key nearest to a misspelt one (edit distance, transpositions counted once), if near enough. */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 4)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The value of a `--set path=raw` or environment variable string, typed by the schema at `path`:
 * JSON (numbers, booleans, null, arrays, objects) when that is what the key takes; the string itself for string
 * keys (`--set nodeId=123` is the string "123"); a comma-separated list for array keys given plain text
 * (`SWITCHBOARD_ALLOWED_ORIGINS=https://a.example,https://b.example`). A string that fits nothing is returned
 * as parsed (or as is), for the validation to refuse with its path, expected type and value.
 */
export function coerceAt(path: readonly string[], raw: string): unknown {
  const schema = schemaAt(path);
  let parsed: { value: unknown } | undefined;
  try {
    parsed = { value: JSON.parse(raw) as unknown };
  } catch {
    parsed = undefined;
  }
  if (schema === undefined) return parsed !== undefined ? parsed.value : raw;
  const fits = (v: unknown): boolean => validatorOf(schema)(v);
  if (parsed !== undefined && typeof parsed.value !== 'string' && fits(parsed.value)) return parsed.value;
  if (fits(raw)) return raw;
  if (parsed === undefined && accepts(schema, 'array')) {
    return raw.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  }
  return parsed !== undefined ? parsed.value : raw;
}
