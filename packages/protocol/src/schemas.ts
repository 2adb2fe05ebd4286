/**
 * JSON Schemas (draft 2020-12 subset understood by Ajv) of the `data` object of every client message type.
 * The server validates each inbound message against the schema of its type; clients may use them too.
 * `maxChannelLength` in the server config bounds `channel` further.
 */
const channel = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const position = {
  type: 'object',
  properties: { offset: { type: 'integer', minimum: 0 }, epoch: { type: 'string', maxLength: 64 } },
  required: ['offset', 'epoch'],
  additionalProperties: false,
} as const;
const empty = { type: 'object' } as const;

export const CLIENT_DATA_SCHEMAS = {
  join_channel: {
    type: 'object',
    properties: {
      channel,
      since: position,
      /** Pattern subscriptions (`news:*`): the last position seen per concrete channel, to recover each. */
      positions: { type: 'object', additionalProperties: position, maxProperties: 100 },
    },
    required: ['channel'],
  },
  leave_channel: { type: 'object', properties: { channel }, required: ['channel'] },
  message: {
    type: 'object',
    properties: {
      channel,
      exclude_self: { type: 'boolean' },
      idempotency_key: { type: 'string', minLength: 1, maxLength: 128 },
    },
    required: ['channel'],
  },
  private_message: {
    type: 'object',
    properties: { recipient_id: { type: 'string', minLength: 1, maxLength: 256 } },
    required: ['recipient_id'],
  },
  typing: {
    type: 'object',
    properties: { channel, is_typing: { type: 'boolean' } },
    required: ['channel', 'is_typing'],
  },
  heartbeat: empty,
  ping: empty,
  pong: empty,
  online_users: {
    type: 'object',
    properties: { cursor: { type: 'string', maxLength: 1024 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
  },
  presence: {
    type: 'object',
    properties: { channel, cursor: { type: 'string', maxLength: 1024 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
    required: ['channel'],
  },
  history: {
    type: 'object',
    properties: {
      channel,
      limit: { type: 'integer', minimum: 1, maximum: 1000 },
      before: { type: 'integer', minimum: 0 },
      after: { type: 'integer', minimum: 0 },
      offset: { type: 'integer', minimum: 0 },
    },
    required: ['channel'],
  },
  broadcast: empty,
  refresh: {
    type: 'object',
    properties: { token: { type: 'string', minLength: 1, maxLength: 16384 } },
    required: ['token'],
  },
  auth_response: {
    type: 'object',
    properties: { signature: { type: 'string', minLength: 1, maxLength: 1024 } },
    required: ['signature'],
  },
  ack: {
    type: 'object',
    properties: { ids: { type: 'array', items: { type: 'string', maxLength: 256 }, maxItems: 1000 } },
    required: ['ids'],
  },
  response: { type: 'object', properties: { request_id: { type: 'string', maxLength: 128 } }, required: ['request_id'] },
  doc_open: { type: 'object', properties: { channel }, required: ['channel'] },
  doc_close: { type: 'object', properties: { channel }, required: ['channel'] },
} as const;

/** Aliases accepted for seed compatibility: alias -> canonical type. */
export const CLIENT_TYPE_ALIASES: Readonly<Record<string, keyof typeof CLIENT_DATA_SCHEMAS>> = {
  subscribe: 'join_channel',
  unsubscribe: 'leave_channel',
  publish: 'message',
  admin_broadcast: 'broadcast',
};

export type CanonicalClientType = keyof typeof CLIENT_DATA_SCHEMAS;
