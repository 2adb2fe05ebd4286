import { Ajv, type ValidateFunction } from 'ajv';
import {
  CLIENT_DATA_SCHEMAS,
  CLIENT_TYPE_ALIASES,
  ErrorCode,
  type CanonicalClientType,
  type RequestId,
} from '@switchboard/protocol';

/**
 * Commands the server queues on a connection itself (never parsed from a client frame: the parser knows no
 * such type). `server_leave`: leave a channel without a reply frame (Node.unsubscribe).
 */
export type ServerCommandType = 'server_leave';

/** One command of the connection: a client message that passed parsing and validation, or a server command. */
export interface Command {
  type: CanonicalClientType | ServerCommandType;
  data: Record<string, unknown>;
  id: RequestId | undefined;
}

/** Why a frame was rejected; `id` is the request id if one could be read. */
export interface InboundError {
  code: (typeof ErrorCode)[keyof typeof ErrorCode];
  message: string;
  id: RequestId | undefined;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Turns a text frame into a validated message, or an error naming a registry code. Never throws.
 * Checks, in order: JSON syntax, nesting depth and forbidden keys (one walk), envelope shape, known type,
 * the type's data schema (a `channel` string of the wrong length is INVALID_CHANNEL, any other mismatch
 * INVALID_MESSAGE).
 */
export class InboundParser {
  private readonly validators = compiledValidators();

  constructor(private readonly maxDepth: number) {}

  parse(text: string): Command | InboundError {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { code: ErrorCode.INVALID_JSON, message: 'Invalid JSON format', id: undefined };
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      return { code: ErrorCode.INVALID_MESSAGE, message: 'A message must be a JSON object', id: undefined };
    }
    const msg = raw as Record<string, unknown>;
    const id = typeof msg.id === 'string' || typeof msg.id === 'number' ? msg.id : undefined;
    const shape = checkShape(msg, this.maxDepth);
    if (shape !== null) return { ...shape, id };
    if (typeof msg.type !== 'string') {
      return { code: ErrorCode.INVALID_MESSAGE, message: 'Missing string field "type"', id };
    }
    const type = (CLIENT_TYPE_ALIASES[msg.type] ?? msg.type) as CanonicalClientType;
    const validate = this.validators.get(type);
    if (validate === undefined) {
      return { code: ErrorCode.UNKNOWN_TYPE, message: `Unknown message type "${msg.type.slice(0, 64)}"`, id };
    }
    const data = msg.data === undefined ? {} : msg.data;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      return { code: ErrorCode.INVALID_MESSAGE, message: '"data" must be an object', id };
    }
    if (!validate(data)) {
      const err = validate.errors?.[0];
      // A channel name outside the schema's length bounds (empty, or beyond 1024 characters) is a bad channel
      // name like one beyond limits.maxChannelNameLength: INVALID_CHANNEL, as docs/protocol.md says.
      if (err?.instancePath === '/channel' && (err.keyword === 'minLength' || err.keyword === 'maxLength')) {
        return { code: ErrorCode.INVALID_CHANNEL, message: `Invalid channel name (${err.keyword === 'minLength' ? 'empty' : 'too long'})`, id };
      }
      const where = err?.instancePath ? `data${err.instancePath.replaceAll('/', '.')}` : 'data';
      return { code: ErrorCode.INVALID_MESSAGE, message: `${where} ${err?.message ?? 'is invalid'}`, id };
    }
    return { type, data: data as Record<string, unknown>, id };
  }
}

let validators: ReadonlyMap<string, ValidateFunction> | null = null;

/** The schemas compiled once per process (compiling costs ~100 ms; every node shares them). */
function compiledValidators(): ReadonlyMap<string, ValidateFunction> {
  if (validators === null) {
    const ajv = new Ajv({ allErrors: false, strict: false });
    const map = new Map<string, ValidateFunction>();
    for (const [type, schema] of Object.entries(CLIENT_DATA_SCHEMAS)) map.set(type, ajv.compile(schema));
    validators = map;
  }
  return validators;
}

/** One walk over the parsed value: nesting depth and prototype-polluting keys. */
function checkShape(root: object, maxDepth: number): Omit<InboundError, 'id'> | null {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > maxDepth) {
      return { code: ErrorCode.PAYLOAD_TOO_DEEP, message: `JSON nesting deeper than ${maxDepth}` };
    }
    if (Array.isArray(value)) {
      for (const item of value) if (item !== null && typeof item === 'object') stack.push([item, depth + 1]);
    } else {
      for (const key in value as Record<string, unknown>) {
        if (FORBIDDEN_KEYS.has(key)) return { code: ErrorCode.FORBIDDEN_KEY, message: `Forbidden key "${key}"` };
        const child = (value as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
      }
    }
  }
  return null;
}
