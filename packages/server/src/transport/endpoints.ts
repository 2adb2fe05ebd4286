/**
 * The WebSocket endpoint table: URL patterns with named parameters (`/ws/room/{room_id}`) and what a
 * connection on each one means (authentication, credential sources, client id, channels joined on connect,
 * wire protocol). Compiled once at start-up (any error throws EndpointConfigError naming the entry); matched
 * per upgrade without allocation beyond the params object.
 *
 * Matching (docs/protocol.md, "Endpoints"):
 * - a pattern is a path of segments, each a literal or one `{name}` parameter that takes exactly one
 *   non-empty segment (percent-decoded, 1-128 characters, no `/`, no control characters);
 * - the most specific pattern wins, independent of the order of the table: of the patterns that match, the
 *   one with a literal where another has a parameter, compared left to right. Two patterns that would match the
 *   same paths (`/ws/{a}` and `/ws/{b}`) are a configuration error;
 * - a client id parameter is stricter: 1-128 characters of `A-Z a-z 0-9 _ . ~ -`, not `.` or `..`, and not a
 *   reserved name (RESERVED_CLIENT_IDS, and every literal segment of the table, compared case-insensitively),
 *   so a client id can never shadow a configured path;
 * - a path no pattern matches is no endpoint: the transport answers the upgrade with 404.
 */
import type { CredentialSource } from '../core/ports/handshake.js';

/** Authentication of an endpoint. `ed25519`: the challenge-response handshake after accept (seed 001). */
export type EndpointAuth = 'required' | 'optional' | 'none' | 'ed25519';

export const CREDENTIAL_SOURCES: readonly CredentialSource[] = ['header', 'subprotocol', 'query', 'cookie'];

/** The name of Switchboard's own JSON protocol (the default `protocol` of an endpoint). */
export const SWITCHBOARD_PROTOCOL = 'switchboard';

/** One endpoint, normalized (server.ts builds these from config `endpoints`). */
export interface EndpointSpec {
  /** URL pattern, e.g. `/ws/room/{room_id}`. */
  pattern: string;
  auth: EndpointAuth;
  /** Accepted credential sources; null: every source enabled in auth.sources. */
  credentials: readonly CredentialSource[] | null;
  /** The parameter holding the client id (supersede-able, owned; docs/protocol.md "Client ids"), or null. */
  clientId: string | null;
  /** The parameter the authenticated user id must equal (`/ws/notifications/{user_id}`), or null. */
  userParam: string | null;
  /** The parameter holding the Ed25519 collective id (`auth: "ed25519"` only), or null. */
  collectiveParam: string | null;
  /** Channel templates joined on connect, e.g. `room:{room_id}`. */
  join: readonly string[];
  /** `switchboard`, or the name of a registered wire-protocol handler. */
  protocol: string;
}

/** A configuration error in the endpoint table: thrown at start-up, naming the entry and the field. */
export class EndpointConfigError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`endpoints[${JSON.stringify(path)}]: ${message}`);
    this.name = 'EndpointConfigError';
  }
}

/**
 * Names a client id can never be (case-insensitive), whether or not an endpoint of that name is configured:
 * the built-in endpoints and the seed endpoints (docs/seeds.md), so configuring one later never turns an
 * existing client's id into another endpoint. Every literal segment of the table is reserved as well.
 */
export const RESERVED_CLIENT_IDS: readonly string[] = [
  'authenticated', 'collective', 'protected', 'cookie-auth', 'json', 'echo', 'room', 'rooms', 'notifications',
  'advanced', 'robust', 'binary', 'events', 'sse', 'api', 'admin', 'health', 'metrics', 'test',
];

/** Client id syntax (docs/protocol.md, "Client ids"). */
const CLIENT_ID_RE = /^[A-Za-z0-9_.~-]{1,128}$/;
/** Pattern parameter names. */
const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Literal segments of a pattern: RFC 3986 pchar without percent-encoding. */
const LITERAL_RE = /^[A-Za-z0-9_.~!$&'()*+,;=:@-]+$/;
const MAX_PARAM_LENGTH = 128;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

type Segment = { literal: string } | { param: string };

/** A compiled endpoint: the spec plus its segments. */
export interface CompiledEndpoint extends EndpointSpec {
  readonly segments: readonly Segment[];
  readonly paramNames: readonly string[];
}

/** A matched request path. */
export interface EndpointMatch {
  endpoint: CompiledEndpoint;
  params: Record<string, string>;
}

/** The compiled table. */
export class EndpointTable {
  /** Most specific first (see the module comment). */
  private readonly endpoints: CompiledEndpoint[];
  /** Lower-cased names a client id cannot take. */
  private readonly reserved: Set<string>;

  /**
   * @param protocols names of the registered wire-protocol handlers
   * @param requireAuth auth.required: every endpoint requires credentials (an `auth: "none"` entry contradicts it)
   */
  constructor(specs: readonly EndpointSpec[], opts: { protocols?: readonly string[]; requireAuth?: boolean } = {}) {
    const protocols = opts.protocols ?? [];
    const compiled = specs.map((spec) => compile(spec, protocols, opts.requireAuth ?? false));
    for (let i = 0; i < compiled.length; i++) {
      for (let j = i + 1; j < compiled.length; j++) {
        if (sameShape(compiled[i]!, compiled[j]!)) {
          throw new EndpointConfigError(compiled[j]!.pattern, `matches the same paths as ${JSON.stringify(compiled[i]!.pattern)}`);
        }
      }
    }
    compiled.sort(bySpecificity);
    this.endpoints = compiled;
    this.reserved = new Set(RESERVED_CLIENT_IDS);
    for (const e of compiled) for (const s of e.segments) if ('literal' in s) this.reserved.add(s.literal.toLowerCase());
  }

  /** Every endpoint, most specific first. */
  get all(): readonly CompiledEndpoint[] {
    return this.endpoints;
  }

  /** True when `id` is not a valid client id (syntax, reserved name). */
  isInvalidClientId(id: string): boolean {
    return !CLIENT_ID_RE.test(id) || id === '.' || id === '..' || this.reserved.has(id.toLowerCase());
  }

  /** The endpoint a request path is for, or null (404). Never throws. */
  match(pathname: string): EndpointMatch | null {
    if (!pathname.startsWith('/')) return null;
    const raw = pathname.split('/');
    let decoded: Array<string | null> | null = null;
    for (const e of this.endpoints) {
      if (e.segments.length !== raw.length - 1) continue;
      decoded ??= decodeSegments(raw);
      const params = this.tryMatch(e, decoded);
      if (params !== null) return { endpoint: e, params };
    }
    return null;
  }

  private tryMatch(e: CompiledEndpoint, decoded: readonly (string | null)[]): Record<string, string> | null {
    let params: Record<string, string> | null = null;
    for (let i = 0; i < e.segments.length; i++) {
      const seg = e.segments[i]!;
      const value = decoded[i + 1];
      if (value === null || value === undefined) return null;
      if ('literal' in seg) {
        if (value !== seg.literal) return null;
        continue;
      }
      if (value.length === 0 || value.length > MAX_PARAM_LENGTH || value.includes('/') || CONTROL_RE.test(value)) return null;
      if (seg.param === e.clientId && this.isInvalidClientId(value)) return null;
      params ??= {};
      params[seg.param] = value;
    }
    return params ?? {};
  }
}

/** Percent-decoded segments (index 0 is the empty string before the leading `/`); a bad escape is null. */
function decodeSegments(raw: readonly string[]): Array<string | null> {
  return raw.map((s) => {
    if (!s.includes('%')) return s;
    try {
      return decodeURIComponent(s);
    } catch {
      return null;
    }
  });
}

function compile(spec: EndpointSpec, protocols: readonly string[], requireAuth: boolean): CompiledEndpoint {
  const fail = (message: string): never => {
    throw new EndpointConfigError(spec.pattern, message);
  };
  if (typeof spec.pattern !== 'string' || !spec.pattern.startsWith('/') || spec.pattern.length < 2) fail('a pattern is a path starting with "/", e.g. "/ws/room/{room_id}"');
  if (spec.pattern.endsWith('/')) fail('a pattern does not end with "/"');
  const segments: Segment[] = [];
  const names: string[] = [];
  for (const part of spec.pattern.slice(1).split('/')) {
    if (part.length === 0) fail('empty path segment ("//")');
    if (/^\{[^{}]*\}$/.test(part)) {
      const name = part.slice(1, -1);
      if (!PARAM_NAME_RE.test(name)) fail(`bad parameter name {${name}} (letters, digits, _; not starting with a digit)`);
      if (names.includes(name)) fail(`parameter {${name}} appears twice`);
      names.push(name);
      segments.push({ param: name });
    } else {
      if (part.includes('{') || part.includes('}')) fail(`segment "${part}": a parameter takes a whole segment ("{name}")`);
      if (!LITERAL_RE.test(part)) fail(`segment "${part}" has characters that need percent-encoding`);
      segments.push({ literal: part });
    }
  }
  const needParam = (field: string, name: string | null): void => {
    if (name !== null && !names.includes(name)) fail(`${field}: the pattern has no parameter {${name}}`);
  };
  needParam('clientId', spec.clientId);
  needParam('userParam', spec.userParam);
  needParam('collectiveParam', spec.collectiveParam);
  if (spec.auth === 'ed25519' && spec.collectiveParam === null) fail('auth "ed25519" needs a collective id parameter (collectiveParam)');
  if (spec.auth !== 'ed25519' && spec.collectiveParam !== null) fail('collectiveParam is only for auth "ed25519"');
  if (spec.clientId !== null && spec.clientId === spec.userParam) fail('clientId and userParam name the same parameter');
  if (!['required', 'optional', 'none', 'ed25519'].includes(spec.auth)) fail(`auth ${JSON.stringify(spec.auth)}: use "required", "optional", "none" or "ed25519"`);
  if (spec.auth === 'none' && requireAuth) fail('auth "none" contradicts auth.required (every endpoint requires credentials)');
  if (spec.credentials !== null) {
    if (spec.auth === 'none' || spec.auth === 'ed25519') fail(`credentials: auth "${spec.auth}" reads no credential`);
    for (const c of spec.credentials) if (!CREDENTIAL_SOURCES.includes(c)) fail(`credentials: unknown source ${JSON.stringify(c)} (use ${CREDENTIAL_SOURCES.map((x) => `"${x}"`).join(', ')})`);
    if (spec.credentials.length === 0) fail('credentials: empty (use auth "none" for an endpoint without authentication)');
  }
  if (spec.userParam !== null && spec.auth !== 'required') fail('userParam needs auth "required" (only an authenticated user can match it)');
  if (spec.protocol !== SWITCHBOARD_PROTOCOL) {
    if (!protocols.includes(spec.protocol)) {
      fail(`protocol ${JSON.stringify(spec.protocol)} is not registered (SwitchboardOptions.protocols: ${protocols.length === 0 ? 'none' : protocols.map((p) => JSON.stringify(p)).join(', ')})`);
    }
    if (spec.clientId !== null) fail(`clientId: client ids are a feature of the "${SWITCHBOARD_PROTOCOL}" protocol`);
    if (spec.join.length > 0) fail(`join: channels are a feature of the "${SWITCHBOARD_PROTOCOL}" protocol`);
    if (spec.auth === 'ed25519') fail('auth "ed25519" is only for the "switchboard" protocol');
  }
  spec.join.forEach((template, i) => {
    if (typeof template !== 'string' || template.length === 0) fail(`join[${i}]: a channel name template, e.g. "room:{room_id}"`);
    for (const m of template.matchAll(/\{([^}]*)\}/g)) if (!names.includes(m[1]!)) fail(`join[${i}] "${template}": the pattern has no parameter {${m[1]}}`);
    if (template.replace(/\{[^}]*\}/g, '').match(/[{}]/)) fail(`join[${i}] "${template}": unbalanced braces`);
  });
  return { ...spec, segments, paramNames: names };
}

/** Two patterns that match exactly the same paths: same length, and at each segment both parameters or the same literal. */
function sameShape(a: CompiledEndpoint, b: CompiledEndpoint): boolean {
  if (a.segments.length !== b.segments.length) return false;
  return a.segments.every((s, i) => {
    const t = b.segments[i]!;
    if ('literal' in s) return 'literal' in t && t.literal === s.literal;
    return 'param' in t;
  });
}

/** Literal before parameter at the first segment where they differ in kind. */
function bySpecificity(a: CompiledEndpoint, b: CompiledEndpoint): number {
  const n = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const la = 'literal' in a.segments[i]!;
    const lb = 'literal' in b.segments[i]!;
    if (la !== lb) return la ? -1 : 1;
  }
  return a.segments.length - b.segments.length;
}

/** `room:{room_id}` with `{room_id: "lobby"}` -> `room:lobby`. */
export function fillTemplate(template: string, params: Readonly<Record<string, string>>): string {
  return template.replace(/\{([^}]*)\}/g, (_, name: string) => params[name] ?? '');
}

/**
 * The default table, today's endpoints: `{wsPath}` and `{wsPath}/{client_id}` (authentication optional, i.e.
 * required only with auth.required), `{wsPath}/authenticated` (required), and the Ed25519 challenge endpoint
 * `{ed25519Path}/{collective_id}` when a challenge path is given.
 */
export function defaultEndpoints(wsPath: string, ed25519Path: string | null): EndpointSpec[] {
  const base = { credentials: null, clientId: null, userParam: null, collectiveParam: null, join: [], protocol: SWITCHBOARD_PROTOCOL };
  const out: EndpointSpec[] = [
    { ...base, pattern: wsPath, auth: 'optional' },
    { ...base, pattern: `${wsPath}/{client_id}`, auth: 'optional', clientId: 'client_id' },
    { ...base, pattern: `${wsPath}/authenticated`, auth: 'required' },
  ];
  if (ed25519Path !== null) out.push({ ...base, pattern: `${ed25519Path}/{collective_id}`, auth: 'ed25519', collectiveParam: 'collective_id' });
  return out;
}
