/**
 * Channel and message authorization.
 *
 * Rule language (config `auth.channels`, `auth.messages`, `auth.privateMessages`; see config.ts and
 * docs/security.md):
 *
 *   "channels": {
 *     "default": "allow",                                       // no pattern matched
 *     "rules": {
 *       "chat:*":               { "subscribe": "any", "publish": "authenticated" },
 *       "user:{userId}":        { "subscribe": "owner" },       // publish/presence/history inherit "owner"
 *       "orders:{collective}":  { "subscribe": "claim:collective" },
 *       "admin:*":              { "*": "role:admin" },
 *       "ops:{team}":           { "subscribe": ["role:ops", "hook"] }   // any term suffices
 *     }
 *   }
 *
 * Order of evaluation for `authorize(identity, action, channel)`:
 *   1. the token's channel allowlist claim (Identity.channels): in "grant" mode a listed channel is allowed
 *      for every action; in "restrict" mode an unlisted channel is denied (listed ones go on to step 2);
 *   2. the most specific matching pattern (exact names, then more literal characters, then config order);
 *      the action's requirement is `rule[action]`, else `rule["*"]`, else `rule.subscribe` (for publish,
 *      presence, history), else the default's requirement for that action;
 *   3. no pattern matched: the default.
 * A requirement is one term or a list of terms of which one must hold; "hook" terms are asked last and only
 * when no other term allowed. A hook that throws or times out denies (AUTH_UNAVAILABLE).
 *
 * Denials carry `code`: UNAUTHORIZED when the identity is anonymous and the requirement is satisfiable by
 * authenticating, FORBIDDEN otherwise, AUTH_UNAVAILABLE when a hook failed.
 */
import { AuthConfigError, CHANNEL_ACTIONS, validateRequirement, type ChannelAction, type ChannelRule, type ChannelRulesConfig, type Requirement } from './config.js';
import { withTimeout, type AuthHooks, type PermissionRequest } from './hooks.js';
import { readClaim, type Identity } from './identity.js';

export type AuthzDecision =
  | { allowed: true }
  | { allowed: false; code: 'FORBIDDEN' | 'UNAUTHORIZED' | 'AUTH_UNAVAILABLE'; message: string };

const ALLOWED: AuthzDecision = Object.freeze({ allowed: true });

export interface AuthorizerConfig {
  channels: ChannelRulesConfig;
  messages: Record<string, Requirement>;
  privateMessages: Requirement;
  /** How Identity.channels acts (config `claims.channelsMode`). */
  channelsMode: 'grant' | 'restrict';
  hookTimeoutMs: number;
}

export interface ChannelAuthorizer {
  /** May `identity` perform `action` on `channel`? Never throws. */
  authorize(identity: Identity, action: ChannelAction, channel: string): Promise<AuthzDecision>;
  /**
   * Same decision without a promise when no hook is involved (hot path: publish). Returns a Promise only
   * when a "hook" term has to be asked.
   */
  check(identity: Identity, action: ChannelAction, channel: string): AuthzDecision | Promise<AuthzDecision>;
  /**
   * The decision `check` gives on (`action`, `channel`) to every identity without a channel list
   * (Identity.channels === null) when it does not depend on the identity: true when the requirement has an
   * "any" term, false when all its terms are "none", else null (roles, owner, claims, hooks: ask `check`).
   */
  decisionForAll(action: ChannelAction, channel: string): boolean | null;
  /** May `identity` send a client message of this type (e.g. admin_broadcast)? Unlisted types: allowed. */
  authorizeMessage(identity: Identity, messageType: string): Promise<AuthzDecision>;
  /** May `identity` send a private message to `recipientId`? */
  authorizePrivateMessage(identity: Identity, recipientId: string): Promise<AuthzDecision>;
}

interface Term { kind: 'any' | 'none' | 'authenticated' | 'owner' | 'role' | 'permission' | 'claim' | 'hook'; arg: string }
interface CompiledReq { terms: Term[]; text: string; hasHook: boolean }
interface CompiledRule {
  pattern: string;
  regex: RegExp;
  params: string[];
  exact: boolean;
  literalChars: number;
  order: number;
  actions: Record<ChannelAction, CompiledReq>;
}

function compileReq(req: Requirement, path: string, params: readonly string[] | null): CompiledReq {
  validateRequirement(req, path);
  const list = Array.isArray(req) ? req : [req];
  const terms: Term[] = list.map((t) => {
    const i = t.indexOf(':');
    const head = i < 0 ? t : t.slice(0, i);
    const arg = i < 0 ? '' : t.slice(i + 1);
    switch (head) {
      case 'any': case 'allow': return { kind: 'any', arg };
      case 'none': case 'deny': return { kind: 'none', arg };
      case 'owner':
        if (params === null || !params.includes('userId')) throw new AuthConfigError(path, '"owner" needs a {userId} placeholder in the channel pattern');
        return { kind: 'owner', arg };
      default: return { kind: head as Term['kind'], arg };
    }
  });
  return { terms, text: list.join(' or '), hasHook: terms.some((t) => t.kind === 'hook') };
}

function escapeRegex(s: string): string { return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'); }

/** Compiles a channel pattern: `*` = one or more of any character, `{name}` = one or more non-":" captured. */
export function compilePattern(pattern: string, path: string): { regex: RegExp; params: string[]; literalChars: number; exact: boolean } {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 256) throw new AuthConfigError(path, 'pattern must be 1..256 characters');
  let src = '^';
  const params: string[] = [];
  let literalChars = 0;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') { src += '.+'; i++; continue; }
    if (c === '{') {
      const end = pattern.indexOf('}', i);
      const name = end < 0 ? '' : pattern.slice(i + 1, end);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new AuthConfigError(path, `bad placeholder in ${JSON.stringify(pattern)}`);
      if (params.includes(name)) throw new AuthConfigError(path, `placeholder {${name}} used twice`);
      params.push(name);
      src += '([^:]+)';
      i = end + 1;
      continue;
    }
    if (c === '}') throw new AuthConfigError(path, `unbalanced "}" in ${JSON.stringify(pattern)}`);
    src += escapeRegex(c);
    literalChars++;
    i++;
  }
  return { regex: new RegExp(src + '$', 's'), params, literalChars, exact: params.length === 0 && !pattern.includes('*') };
}

function isRuleObject(v: unknown): v is ChannelRule {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function compileActions(rule: ChannelRule, fallback: Record<ChannelAction, CompiledReq> | null, path: string, params: readonly string[] | null): Record<ChannelAction, CompiledReq> {
  for (const k of Object.keys(rule)) {
    if (k !== '*' && !(CHANNEL_ACTIONS as readonly string[]).includes(k)) throw new AuthConfigError(`${path}.${k}`, `unknown action (expected ${CHANNEL_ACTIONS.join(', ')} or *)`);
  }
  const out = {} as Record<ChannelAction, CompiledReq>;
  for (const a of CHANNEL_ACTIONS) {
    const req = rule[a] ?? rule['*'] ?? (a !== 'subscribe' ? rule.subscribe : undefined);
    out[a] = req !== undefined ? compileReq(req, `${path}.${a}`, params) : fallback![a];
  }
  return out;
}

/** Compiles the rules; throws AuthConfigError (with the offending path) for anything it does not understand. */
export function createChannelAuthorizer(cfg: AuthorizerConfig, hooks: Pick<AuthHooks, 'checkPermission'> = {}): ChannelAuthorizer {
  const defRule: ChannelRule = isRuleObject(cfg.channels.default)
    ? cfg.channels.default
    : { '*': cfg.channels.default as Requirement };
  const defaults = compileActions(defRule, compileActions({ '*': 'any' }, null, 'channels.default', []), 'channels.default', []);

  const rules: CompiledRule[] = Object.entries(cfg.channels.rules ?? {}).map(([pattern, rule], order) => {
    const path = `channels.rules[${JSON.stringify(pattern)}]`;
    if (!isRuleObject(rule)) throw new AuthConfigError(path, 'must be an object of action -> requirement');
    const p = compilePattern(pattern, path);
    return { pattern, ...p, order, actions: compileActions(rule, defaults, path, p.params) };
  });
  rules.sort((a, b) => (a.exact !== b.exact ? (a.exact ? -1 : 1) : b.literalChars - a.literalChars || a.order - b.order));
  const exact = new Map(rules.filter((r) => r.exact).map((r) => [r.pattern, r] as const));
  const patterns = rules.filter((r) => !r.exact);

  const messages = new Map<string, CompiledReq>();
  for (const [type, req] of Object.entries(cfg.messages ?? {})) messages.set(type, compileReq(req, `messages.${type}`, null));
  const privateReq = compileReq(cfg.privateMessages, 'privateMessages', null);

  // Bounded cache channel -> matched rule (+ captures): repeated publishes skip the regex scan.
  const cache = new Map<string, { rule: CompiledRule | null; params: Record<string, string> }>();
  const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;
  function match(channel: string): { rule: CompiledRule | null; params: Record<string, string> } {
    let hit = cache.get(channel);
    if (hit) return hit;
    const ex = exact.get(channel);
    hit = { rule: ex ?? null, params: NO_PARAMS };
    if (!ex) {
      for (const r of patterns) {
        const m = r.regex.exec(channel);
        if (!m) continue;
        const params: Record<string, string> = Object.create(null) as Record<string, string>;
        r.params.forEach((name, i) => { params[name] = m[i + 1]!; });
        hit = { rule: r, params };
        break;
      }
    }
    if (cache.size >= 4096) cache.clear();
    cache.set(channel, hit);
    return hit;
  }

  const allowlists = new WeakMap<readonly string[], (channel: string) => boolean>();
  function inAllowlist(list: readonly string[], channel: string): boolean {
    let f = allowlists.get(list);
    if (!f) {
      const names = new Set(list.filter((e) => !e.includes('*')));
      const globs = list.filter((e) => e.includes('*')).map((e) => new RegExp('^' + e.split('*').map(escapeRegex).join('.+') + '$', 's'));
      f = (ch) => names.has(ch) || globs.some((g) => g.test(ch));
      allowlists.set(list, f);
    }
    return f(channel);
  }

  function termHolds(t: Term, id: Identity, params: Readonly<Record<string, string>>): boolean {
    switch (t.kind) {
      case 'any': return true;
      case 'none': return false;
      case 'authenticated': return !id.anonymous;
      case 'owner': return !id.anonymous && id.userId !== null && params['userId'] === id.userId;
      case 'role': return id.roles.includes(t.arg);
      case 'permission': return id.permissions.includes(t.arg);
      case 'claim': {
        const v = readClaim(id.claims, t.arg);
        const captured = Object.prototype.hasOwnProperty.call(params, t.arg) ? params[t.arg] : undefined;
        if (captured === undefined) return v !== undefined && v !== null && v !== false && v !== '';
        if (typeof v === 'string' || typeof v === 'number') return String(v) === captured;
        if (Array.isArray(v)) return v.some((x) => (typeof x === 'string' || typeof x === 'number') && String(x) === captured);
        return false;
      }
      case 'hook': return false;
    }
  }

  function deny(req: CompiledReq, id: Identity, what: string): AuthzDecision {
    const fixable = id.anonymous && req.terms.some((t) => t.kind !== 'none' && t.kind !== 'any');
    return { allowed: false, code: fixable ? 'UNAUTHORIZED' : 'FORBIDDEN', message: `${what} requires ${req.text}` };
  }

  function evaluate(req: CompiledReq, id: Identity, params: Readonly<Record<string, string>>, request: PermissionRequest, what: string): AuthzDecision | Promise<AuthzDecision> {
    for (const t of req.terms) if (termHolds(t, id, params)) return ALLOWED;
    if (!req.hasHook) return deny(req, id, what);
    const hook = hooks.checkPermission;
    if (!hook) return { allowed: false, code: 'FORBIDDEN', message: `${what} requires the permission hook, none configured` };
    return withTimeout('checkPermission', cfg.hookTimeoutMs, () => hook(id, request)).then(
      (ok) => (ok === true ? ALLOWED : deny(req, id, what)),
      () => ({ allowed: false, code: 'AUTH_UNAVAILABLE', message: 'permission hook failed' }) as AuthzDecision,
    );
  }

  function short(channel: string): string { return channel.length > 64 ? `${channel.slice(0, 61)}...` : channel; }

  function check(id: Identity, action: ChannelAction, channel: string): AuthzDecision | Promise<AuthzDecision> {
    if (!(CHANNEL_ACTIONS as readonly string[]).includes(action)) return { allowed: false, code: 'FORBIDDEN', message: `unknown action ${String(action).slice(0, 20)}` };
    if (typeof channel !== 'string' || channel.length === 0) return { allowed: false, code: 'FORBIDDEN', message: 'invalid channel' };
    if (id.channels !== null) {
      const listed = inAllowlist(id.channels, channel);
      if (listed && cfg.channelsMode === 'grant') return ALLOWED;
      if (!listed && cfg.channelsMode === 'restrict') return { allowed: false, code: 'FORBIDDEN', message: `${short(channel)} is not in the token's channel list` };
    }
    const { rule, params } = match(channel);
    const req = rule ? rule.actions[action] : defaults[action];
    return evaluate(req, id, params, { kind: 'channel', action, channel, params }, `${action} on ${short(channel)}`);
  }

  function decisionForAll(action: ChannelAction, channel: string): boolean | null {
    if (!(CHANNEL_ACTIONS as readonly string[]).includes(action) || typeof channel !== 'string' || channel.length === 0) return false;
    const { rule } = match(channel);
    const req = rule ? rule.actions[action] : defaults[action];
    if (req.terms.some((t) => t.kind === 'any')) return true;
    if (req.terms.every((t) => t.kind === 'none')) return false;
    return null;
  }

  return {
    check,
    decisionForAll,
    async authorize(id, action, channel) {
      try { return await check(id, action, channel); } catch { return { allowed: false, code: 'AUTH_UNAVAILABLE', message: 'authorization failed' }; }
    },
    async authorizeMessage(id, messageType) {
      const req = messages.get(messageType);
      if (!req) return ALLOWED;
      return evaluate(req, id, {}, { kind: 'message', messageType }, `message type ${messageType}`);
    },
    async authorizePrivateMessage(id, recipientId) {
      return evaluate(privateReq, id, {}, { kind: 'private_message', recipientId }, 'private_message');
    },
  };
}
