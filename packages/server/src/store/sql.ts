/**
 * SQL shared by the SQLite and PostgreSQL stores: statement texts (with `?` placeholders; the PostgreSQL
 * driver numbers them), argument validation, history page planning and row mapping. Values always travel as
 * bound parameters, never inside SQL text.
 */
import { StoreError } from './errors.js';
import type { SqlDialect } from './migrations.js';
import type { InboxItem, MessageHistoryQuery, StoredPublication } from '../core/ports/store.js';

export const MAX_HISTORY_LIMIT = 1000;

const MSG_COLS = 'channel, epoch, stream_offset, message_id, sender_id, frame, created_at';

export const SQL = {
  insertMessage:
    `INSERT INTO sb_messages (${MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ` +
    'ON CONFLICT (channel, epoch, stream_offset) DO NOTHING',
  messageIdAt: 'SELECT message_id FROM sb_messages WHERE channel = ? AND epoch = ? AND stream_offset = ?',
  latest: `SELECT ${MSG_COLS} FROM sb_messages WHERE channel = ? ORDER BY id DESC LIMIT 1`,
  pruneOlderThan: 'DELETE FROM sb_messages WHERE created_at < ?',
  pruneKeep:
    'DELETE FROM sb_messages WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER ' +
    '(PARTITION BY channel ORDER BY id DESC) AS rn FROM sb_messages) ranked WHERE rn > ?)',

  inboxInsert:
    'INSERT INTO sb_inbox (user_id, item_id, frame, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ' +
    'ON CONFLICT (user_id, item_id) DO NOTHING',
  inboxDropExpiredForUser: 'DELETE FROM sb_inbox WHERE user_id = ? AND expires_at IS NOT NULL AND expires_at <= ?',
  inboxTrim: (d: SqlDialect) =>
    'DELETE FROM sb_inbox WHERE seq IN (SELECT seq FROM sb_inbox WHERE user_id = ? ' +
    `ORDER BY created_at DESC, seq DESC ${d.limitAll} OFFSET ?)`,
  inboxPending:
    'SELECT item_id, frame, created_at, expires_at FROM sb_inbox WHERE user_id = ? ' +
    'AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at ASC, seq ASC LIMIT ?',
  inboxPurgeExpired: 'DELETE FROM sb_inbox WHERE expires_at IS NOT NULL AND expires_at <= ?',
} as const;

/** A planned history query: SQL text with `?` placeholders and its parameters (fetches limit + 1 rows). */
export interface PlannedQuery {
  text: string;
  params: (string | number)[];
  limit: number;
}

/** Validate a history query and build its SQL (see MessageHistoryQuery for the semantics). */
export function planHistory(channel: string, q: MessageHistoryQuery): PlannedQuery {
  checkChannel(channel);
  if (q === null || typeof q !== 'object') throw invalid('history query must be an object');
  if (!Number.isInteger(q.limit) || q.limit < 1) throw invalid('history limit must be an integer >= 1');
  const limit = Math.min(q.limit, MAX_HISTORY_LIMIT);
  const skip = q.skip ?? 0;
  checkNonNegInt(skip, 'skip');
  if (q.before !== undefined) checkNonNegInt(q.before, 'before');
  if (q.after !== undefined) checkNonNegInt(q.after, 'after');
  if (q.epoch !== undefined) checkText(q.epoch, 'epoch');

  const params: (string | number)[] = [channel];
  let text = `SELECT ${MSG_COLS} FROM sb_messages WHERE channel = ? AND epoch = `;
  if (q.epoch !== undefined) {
    text += '?';
    params.push(q.epoch);
  } else {
    text += '(SELECT epoch FROM sb_messages WHERE channel = ? ORDER BY id DESC LIMIT 1)';
    params.push(channel);
  }
  if (q.after !== undefined) {
    text += ' AND stream_offset > ?';
    params.push(q.after);
  }
  if (q.before !== undefined) {
    text += ' AND stream_offset < ?';
    params.push(q.before);
  }
  text += q.after !== undefined ? ' ORDER BY stream_offset ASC' : ' ORDER BY stream_offset DESC';
  text += ' LIMIT ? OFFSET ?';
  params.push(limit + 1, skip);
  return { text, params, limit };
}

/** Text must be a string without NUL characters (PostgreSQL TEXT cannot hold them; every driver refuses them). */
export function checkText(v: unknown, name: string, allowEmpty = true): void {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) {
    throw invalid(`${name} must be a${allowEmpty ? '' : ' non-empty'} string`);
  }
  if (v.includes('\0')) throw invalid(`${name} must not contain NUL characters`);
}

export function checkChannel(channel: string): void {
  checkText(channel, 'channel', false);
}

export function checkUser(userId: string): void {
  checkText(userId, 'userId', false);
}

export function checkPublication(r: StoredPublication): void {
  if (r === null || typeof r !== 'object') throw invalid('publication must be an object');
  checkChannel(r.channel);
  if (!Number.isSafeInteger(r.offset) || r.offset < 1) throw invalid('offset must be an integer >= 1');
  checkText(r.epoch, 'epoch');
  checkText(r.messageId, 'messageId', false);
  if (r.senderId !== null) checkText(r.senderId, 'senderId');
  checkText(r.frame, 'frame');
  if (!Number.isSafeInteger(r.createdAt)) throw invalid('createdAt must be an integer (ms)');
}

export function checkInboxItem(item: InboxItem): void {
  if (item === null || typeof item !== 'object') throw invalid('inbox item must be an object');
  checkText(item.id, 'inbox item id', false);
  checkText(item.frame, 'inbox item frame');
  if (!Number.isSafeInteger(item.createdAt)) throw invalid('inbox item createdAt must be an integer (ms)');
  if (item.expiresAt !== null && !Number.isSafeInteger(item.expiresAt)) {
    throw invalid('inbox item expiresAt must be an integer (ms) or null');
  }
}

export function checkPositiveInt(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 1) throw invalid(`${name} must be an integer >= 1`);
}

export function checkNonNegInt(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be an integer >= 0`);
}

export function checkPrune(o: { olderThanMs?: number; keepPerChannel?: number }): void {
  if (o === null || typeof o !== 'object') throw invalid('prune options must be an object');
  if (o.olderThanMs !== undefined) checkNonNegInt(o.olderThanMs, 'olderThanMs');
  if (o.keepPerChannel !== undefined) checkNonNegInt(o.keepPerChannel, 'keepPerChannel');
}

/** A list of ids for `ack`. */
export function checkIds(ids: readonly string[]): void {
  if (!Array.isArray(ids)) throw invalid('ids must be an array of strings');
  for (const id of ids) checkText(id, 'id');
}

function invalid(message: string): StoreError {
  return new StoreError('STORE_INVALID_ARGUMENT', message);
}

type Cell = string | number | bigint | null | unknown;

/** Map a `sb_messages` row (MSG_COLS) to a StoredPublication. BIGINT cells may arrive as string/bigint. */
export function rowToPublication(row: Record<string, Cell>): StoredPublication {
  return {
    channel: String(row.channel),
    epoch: String(row.epoch),
    offset: Number(row.stream_offset),
    messageId: String(row.message_id),
    senderId: row.sender_id === null || row.sender_id === undefined ? null : String(row.sender_id),
    frame: String(row.frame),
    createdAt: Number(row.created_at),
  };
}

export function rowToInboxItem(row: Record<string, Cell>): InboxItem {
  return {
    id: String(row.item_id),
    frame: String(row.frame),
    createdAt: Number(row.created_at),
    expiresAt: row.expires_at === null || row.expires_at === undefined ? null : Number(row.expires_at),
  };
}

export function publicationParams(r: StoredPublication): (string | number | null)[] {
  return [r.channel, r.epoch, r.offset, r.messageId, r.senderId, r.frame, r.createdAt];
}
