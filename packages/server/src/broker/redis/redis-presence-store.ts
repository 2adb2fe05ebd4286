import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import { clampPageLimit, type ClientIdClaim, type MembersPage, type OnlineUsersPage, type PresenceStore } from '../../core/ports/presence-store.js';
import { connectWithin, createFailFastClient, quitOrDisconnect, DEFAULT_COMMAND_TIMEOUT_MS, resolvePrefix, type RedisConnectionOptions } from './connection.js';
import { toBrokerError, BrokerUnavailableError, firstPipelineError, reportEngineError, type EngineErrorHandler } from './errors.js';
import { RedisKeys } from './keys.js';
import { CLIENT_ID_CLAIM_LUA, CLIENT_ID_REFRESH_LUA, CLIENT_ID_RELEASE_LUA, HEARTBEAT_LUA, PRESENCE_COUNT_LUA, PRESENCE_JOIN_LUA, PRESENCE_LEAVE_LUA, PRESENCE_MEMBERS_LUA, PRESENCE_PAGE_LUA, USER_COUNT_LUA } from './scripts.js';

export interface RedisPresenceStoreOptions extends RedisConnectionOptions {
  /** Id of this node: it owns (and refreshes) the entries it writes. */
  nodeId: string;
  /** A node's entries vanish this long after it stops refreshing them (default 30 s). Refresh runs every
   * presenceTtlMs / 3. */
  presenceTtlMs?: number;
  /** Liveness: this node writes a heartbeat every nodeTimeoutMs / 3 (one command, whatever its connections) and
   * readers skip the entries of nodes whose heartbeat is older than nodeTimeoutMs, so a killed node's members
   * and users are gone within about nodeTimeoutMs × 4/3 (default 3000 → ~4 s) while the entries themselves
   * keep presenceTtlMs. 0: no heartbeat, a dead node's entries last until they expire (presenceTtlMs). */
  nodeTimeoutMs?: number;
  /** start() rejects with BROKER_UNAVAILABLE if Redis is not reachable within this time (default 5 s). */
  startTimeoutMs?: number;
  /** Called with errors no caller can receive (failed refresh, failed pruning, corrupt member JSON); see
   * EngineErrorContext. Default: ignored. */
  onError?: EngineErrorHandler;
}

interface ScriptClient extends Redis {
  sbJoin(...args: (string | number)[]): Promise<number>;
  sbLeave(...args: (string | number)[]): Promise<number>;
  sbPage(...args: (string | number)[]): Promise<unknown[]>;
  sbMembers(...args: (string | number)[]): Promise<string[]>;
  sbCount(...args: (string | number)[]): Promise<number>;
  sbUserCount(...args: (string | number)[]): Promise<number>;
  sbClaimClientId(...args: (string | number)[]): Promise<[number, string, string?]>;
  sbReleaseClientId(...args: (string | number)[]): Promise<number>;
  sbRefreshClientId(...args: (string | number)[]): Promise<number>;
  sbBeat(...args: (string | number)[]): Promise<Array<string | number>>;
}

/** A client id this node's connection holds (see claimClientId). */
interface HeldClientId {
  connectionId: string;
  userId: string | null;
  generation: number;
}

/** Default node timeout (ms): a node silent this long is taken for dead by presence readers and /api/nodes. */
export const DEFAULT_NODE_TIMEOUT_MS = 3000;

/** What the heartbeat script answered: Redis' time, whether stale beats are excused (grace), last beat per owner. */
export interface Heartbeats {
  now: number;
  grace: boolean;
  /** The beating owner was missing from the set (Redis lost it). */
  added: boolean;
  beats: Map<string, number>;
}

export function parseHeartbeats(reply: Array<string | number>): Heartbeats {
  const beats = new Map<string, number>();
  for (let i = 3; i + 1 < reply.length; i += 2) beats.set(String(reply[i]), Number(reply[i + 1]));
  return { now: Number(reply[0]), grace: Number(reply[1]) === 1, added: Number(reply[2]) === 1, beats };
}

/** Owners whose last heartbeat is older than `timeoutMs` (none during a grace period). */
export function deadOwners(hb: Heartbeats, timeoutMs: number): string[] {
  if (hb.grace) return [];
  const out: string[] = [];
  for (const [owner, at] of hb.beats) if (hb.now - at > timeoutMs) out.push(owner);
  return out;
}

/** The node id of a presence owner id (`<node id>~<instance>`). */
export function ownerNodeId(owner: string): string {
  const i = owner.lastIndexOf('~');
  return i < 0 ? owner : owner.slice(0, i);
}

const REFRESH_BATCH = 1000;

/**
 * Cluster-wide presence in Redis (contract: core/presence-store.ts). Each node writes only its own hashes
 * (per channel, per user, its online-users hash) and their sorted id indexes (per channel, online users) and
 * keeps a local mirror of them; a timer re-applies TTLs
 * every presenceTtlMs/3 and rewrites any key Redis lost (restart without persistence). A killed node's
 * entries therefore expire within presenceTtlMs; readers prune node ids whose hash is gone. No KEYS/SCAN:
 * node sets name the hashes to read.
 *
 * Convergence after a crash is faster than the ttl: every node beats every nodeTimeoutMs / 3 (one command,
 * O(nodes), whatever its connections) and every read skips the owners whose last beat is older than
 * nodeTimeoutMs, so a killed node's members and users are gone for readers within ~nodeTimeoutMs × 4/3.
 *
 * Call `start()` before use (connects). Operations reject with code BROKER_UNAVAILABLE when Redis is down;
 * the local mirror is updated anyway, so the next successful refresh after recovery restores this node's
 * entries.
 */
export class RedisPresenceStore implements PresenceStore {
  readonly nodeId: string;
  /** Owner of this process' entries in Redis: `<nodeId>~<random instance>`. A node restarted with the same id
   * writes new keys, so the entries of its previous (killed) process stay hidden as dead instead of showing
   * again until they expire. */
  readonly ownerId: string;
  private readonly keys: RedisKeys;
  private readonly cmd: ScriptClient;
  private readonly ttlMs: number;
  private readonly nodeTimeoutMs: number;
  /** Dead owners as of this node's last heartbeat (never itself); passed to every read. */
  private dead: string[] = [];
  private beatTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private beats = 0;
  private readonly startTimeoutMs: number;
  private readonly onError: EngineErrorHandler;
  /** channel -> connectionId -> member JSON (this node's entries). */
  private readonly channels = new Map<string, Map<string, string>>();
  /** userId -> connectionId -> username ('' = null) (this node's connections). */
  private readonly users = new Map<string, Map<string, string>>();
  /** clientId -> the claim a connection of this node holds (refreshed with the presence entries). */
  private readonly clientIds = new Map<string, HeldClientId>();
  private clientIdLost: ((clientId: string, connectionId: string) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private closed = false;

  constructor(opts: RedisPresenceStoreOptions) {
    if (!opts.nodeId) throw new TypeError('RedisPresenceStore: nodeId is required');
    this.nodeId = opts.nodeId;
    this.keys = new RedisKeys(resolvePrefix(opts.keyPrefix));
    this.ownerId = `${opts.nodeId}~${randomBytes(5).toString('hex')}`;
    this.ttlMs = Math.max(100, Math.floor(opts.presenceTtlMs ?? 30_000));
    this.nodeTimeoutMs = Math.max(0, Math.floor(opts.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS));
    this.startTimeoutMs = opts.startTimeoutMs ?? Math.max(5000, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    const onError = opts.onError;
    this.onError = onError === undefined ? () => {} : (err, context, details) => reportEngineError(onError, err, context, details);
    this.cmd = createFailFastClient(opts, `sb:${opts.nodeId}:presence`) as ScriptClient;
    this.cmd.defineCommand('sbJoin', { numberOfKeys: 3, lua: PRESENCE_JOIN_LUA });
    this.cmd.defineCommand('sbLeave', { numberOfKeys: 2, lua: PRESENCE_LEAVE_LUA });
    this.cmd.defineCommand('sbPage', { numberOfKeys: 1, lua: PRESENCE_PAGE_LUA });
    this.cmd.defineCommand('sbMembers', { numberOfKeys: 1, lua: PRESENCE_MEMBERS_LUA });
    this.cmd.defineCommand('sbCount', { numberOfKeys: 1, lua: PRESENCE_COUNT_LUA });
    this.cmd.defineCommand('sbUserCount', { numberOfKeys: 2, lua: USER_COUNT_LUA });
    this.cmd.defineCommand('sbClaimClientId', { numberOfKeys: 1, lua: CLIENT_ID_CLAIM_LUA });
    this.cmd.defineCommand('sbReleaseClientId', { numberOfKeys: 1, lua: CLIENT_ID_RELEASE_LUA });
    this.cmd.defineCommand('sbRefreshClientId', { numberOfKeys: 1, lua: CLIENT_ID_REFRESH_LUA });
    this.cmd.defineCommand('sbBeat', { numberOfKeys: 2, lua: HEARTBEAT_LUA });
  }

  /** Dead owners this node's reads skip (as of its last heartbeat). */
  get deadOwners(): readonly string[] { return this.dead; }

  /** Connect and start the refresh timer. */
  async start(): Promise<void> {
    try {
      await connectWithin(this.cmd, this.startTimeoutMs);
    } catch (err) {
      throw new BrokerUnavailableError('presence start', err);
    }
    this.timer = setInterval(() => { void this.refresh(); }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    if (this.nodeTimeoutMs > 0) {
      await this.beat();
      this.beatTimer = setInterval(() => { void this.beat(); }, Math.max(20, Math.floor(this.nodeTimeoutMs / 3)));
      this.beatTimer.unref();
    }
  }

  /**
   * Write this node's heartbeat and read everyone's (one script, O(nodes)); the owners silent for longer than
   * nodeTimeoutMs become the dead set every read skips. A failed beat keeps the previous set (reads fail too
   * while Redis is unreachable). If Redis had lost our heartbeat (restart), the presence is rewritten at once.
   * Runs every nodeTimeoutMs / 3.
   */
  async beat(): Promise<void> {
    if (this.beating || this.closed || this.cmd.status !== 'ready' || this.nodeTimeoutMs <= 0) return;
    this.beating = true;
    try {
      const hb = parseHeartbeats(await this.cmd.sbBeat(this.keys.heartbeats(), this.keys.heartbeatGrace(), this.ownerId,
        this.nodeTimeoutMs, Math.max(2 * this.ttlMs, 4 * this.nodeTimeoutMs)));
      this.dead = deadOwners(hb, this.nodeTimeoutMs).filter((o) => o !== this.ownerId);
      // Our heartbeat was gone: Redis restarted without persistence (or lost keys), so our presence is gone
      // too. Rewrite it now rather than at the next refresh (up to presenceTtlMs / 3 later).
      if (hb.added && this.beats > 0) void this.refresh();
      this.beats++;
    } catch (err) {
      this.onError(err, 'presence_refresh');
    } finally {
      this.beating = false;
    }
  }

  /** Stop refreshing without removing anything: this node's entries expire as if it had crashed. For
   * crash drills and tests; close() is the graceful exit. */
  stopRefreshing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.beatTimer = undefined;
  }

  async join(channel: string, member: PresenceMember): Promise<void> {
    const json = JSON.stringify(member);
    let local = this.channels.get(channel);
    if (!local) this.channels.set(channel, (local = new Map()));
    local.set(member.connection_id, json);
    try {
      await this.cmd.sbJoin(this.keys.presenceNodes(channel), this.keys.presenceHashPrefix(channel) + this.ownerId,
        this.keys.presenceIndexPrefix(channel) + this.ownerId, this.ownerId, member.connection_id, json, this.ttlMs);
    } catch (err) {
      throw toBrokerError('presence join', err);
    }
  }

  async leave(channel: string, connectionId: string): Promise<void> {
    const local = this.channels.get(channel);
    if (local) {
      local.delete(connectionId);
      if (local.size === 0) this.channels.delete(channel);
    }
    try {
      await this.cmd.sbLeave(this.keys.presenceHashPrefix(channel) + this.ownerId,
        this.keys.presenceIndexPrefix(channel) + this.ownerId, connectionId);
    } catch (err) {
      throw toBrokerError('presence leave', err);
    }
  }

  async members(channel: string): Promise<PresenceMember[]> {
    let raw: string[];
    try {
      raw = await this.cmd.sbMembers(this.keys.presenceNodes(channel), this.keys.presenceHashPrefix(channel), ...this.dead);
    } catch (err) {
      throw toBrokerError('presence members', err);
    }
    const out: PresenceMember[] = [];
    for (const r of raw) {
      try { out.push(JSON.parse(r) as PresenceMember); } catch (err) { this.onError(err, 'presence_member_json', { channel }); }
    }
    return out;
  }

  /**
   * A page of the channel's members in byte order of their connection ids. Each node keeps, next to its hash
   * of the channel, a sorted set of the hash's connection ids (`{p:<ch>}:z:<node>`, written in the same
   * scripts as the hash). A page: one script reads at most `limit` ids after the cursor from the index of each
   * node of the channel (ZRANGEBYLEX; every key carries the channel's `{p:<ch>}` tag: one slot), this node
   * merges them and keeps the `limit` smallest distinct ids, then reads their member JSON with one HMGET per
   * node that listed some of them. Two round trips, O(limit) Redis work per node, whatever the channel's size;
   * a dead node's keys expire with its ttl, so its members drop out.
   *
   * Exactly once: the first step is one atomic snapshot; every id of a node's index after the cursor up to the
   * page's last id is in that node's list (the list holds its `limit` smallest ones), so a member present
   * throughout is on the page that covers its id, and pages cover disjoint id ranges. A member that leaves
   * between the two steps is left out (HMGET answers null): it was not present throughout.
   */
  async membersPage(channel: string, cursor: string | null, limit: number): Promise<MembersPage> {
    const n = clampPageLimit(limit);
    try {
      const lists = (await this.cmd.sbPage(this.keys.presenceNodes(channel), this.keys.presenceHashPrefix(channel),
        this.keys.presenceIndexPrefix(channel), cursor === null ? '-' : `(${cursor}`, n, ...this.dead)) as unknown as Array<[string, string[]]>;
      if (lists.length === 0) return { members: [], nextCursor: null };
      // K-way merge of the sorted lists: the `limit` smallest distinct ids; a list of `limit` ids may have more
      // after it, and so may any list not used up.
      const heads = lists.map(() => 0);
      const page: string[] = [];
      const listedBy: number[][] = [];
      while (page.length < n) {
        let best: string | undefined;
        for (let i = 0; i < lists.length; i++) {
          const id = lists[i]![1][heads[i]!];
          if (id !== undefined && (best === undefined || compareUtf8(id, best) < 0)) best = id;
        }
        if (best === undefined) break;
        const by: number[] = [];
        for (let i = 0; i < lists.length; i++) {
          if (lists[i]![1][heads[i]!] === best) { heads[i]! += 1; by.push(i); }
        }
        page.push(best);
        listedBy.push(by);
      }
      const more = lists.some(([, ids], i) => ids.length === n || heads[i]! < ids.length);
      // Ids of the page per list, and where their values land.
      const asked = lists.map((): { ids: string[]; slots: number[] } => ({ ids: [], slots: [] }));
      listedBy.forEach((by, slot) => { for (const i of by) { asked[i]!.ids.push(page[slot]!); asked[i]!.slots.push(slot); } });
      const q = this.cmd.pipeline();
      const used: number[] = [];
      asked.forEach((a, i) => {
        if (a.ids.length === 0) return;
        used.push(i);
        q.hmget(this.keys.presenceHashPrefix(channel) + lists[i]![0], ...a.ids);
      });
      const values: Array<string | null> = page.map(() => null);
      const res = (await q.exec()) ?? [];
      res.forEach(([err, got], j) => {
        if (err) throw err;
        const a = asked[used[j]!]!;
        (got as Array<string | null>).forEach((v, k) => { if (v !== null) values[a.slots[k]!] ??= v; });
      });
      const members: PresenceMember[] = [];
      for (const v of values) {
        if (v === null) continue; // left since the ids were read
        try { members.push(JSON.parse(v) as PresenceMember); } catch (err) { this.onError(err, 'presence_member_json', { channel }); }
      }
      return { members, nextCursor: more ? page[page.length - 1]! : null };
    } catch (err) {
      throw toBrokerError('presence membersPage', err);
    }
  }

  async count(channel: string): Promise<number> {
    try {
      return await this.cmd.sbCount(this.keys.presenceNodes(channel), this.keys.presenceHashPrefix(channel), ...this.dead);
    } catch (err) {
      throw toBrokerError('presence count', err);
    }
  }

  async userConnected(userId: string, username: string | null, connectionId: string): Promise<number> {
    let conns = this.users.get(userId);
    if (!conns) this.users.set(userId, (conns = new Map()));
    conns.set(connectionId, username ?? '');
    return this.userCount('+', userId, connectionId, username ?? '');
  }

  async userDisconnected(userId: string, connectionId: string): Promise<number> {
    const conns = this.users.get(userId);
    if (conns) {
      conns.delete(connectionId);
      if (conns.size === 0) this.users.delete(userId);
    }
    return this.userCount('-', userId, connectionId, '');
  }

  async onlineUsers(): Promise<OnlineUser[]> {
    try {
      const nodes = this.live(await this.cmd.smembers(this.keys.presenceNodeSet()));
      const p = this.cmd.pipeline();
      for (const n of nodes) p.hgetall(this.keys.online(n));
      const res = nodes.length ? (await p.exec()) ?? [] : [];
      const byUser = new Map<string, OnlineUser>();
      const stale: string[] = [];
      res.forEach(([err, value], i) => {
        if (err) throw err;
        const h = value as Record<string, string>;
        let any = false;
        for (const userId in h) {
          any = true;
          const [count, name] = JSON.parse(h[userId]!) as [number, string];
          const u = byUser.get(userId);
          if (u) { u.connections += count; if (u.username === null && name !== '') u.username = name; }
          else byUser.set(userId, { user_id: userId, username: name === '' ? null : name, connections: count });
        }
        if (!any) stale.push(nodes[i]!);
      });
      if (stale.length) this.pruneNodes(stale);
      return [...byUser.values()];
    } catch (err) {
      throw toBrokerError('presence onlineUsers', err);
    }
  }

  /**
   * Whether the user has a connection on a live node: this node's mirror first, else the user's node set and
   * per-node hashes in Redis (O(nodes of the user); node ids whose hash expired are pruned on the way).
   */
  async userOnline(userId: string): Promise<boolean> {
    if (this.users.has(userId)) return true;
    try {
      return (await this.cmd.sbCount(this.keys.userNodes(userId), this.keys.userHashPrefix(userId), ...this.dead)) > 0;
    } catch (err) {
      throw toBrokerError('presence userOnline', err);
    }
  }

  /**
   * A page of online users in byte order of their ids. Each node keeps a sorted set of its users' ids
   * (`oz:<node>`, written with `on:<node>`); a page reads at most `limit` ids after the cursor from each
   * presence node (ZRANGEBYLEX), keeps the `limit` smallest distinct ones, and sums their counts from the
   * `on:<node>` hashes of the nodes that listed them (HMGET). Two round trips, O(limit) per node; a dead
   * node's sets expire with its ttl, so its users drop out without a scan.
   */
  async onlineUsersPage(cursor: string | null, limit: number): Promise<OnlineUsersPage> {
    const n = clampPageLimit(limit);
    try {
      const nodes = this.live(await this.cmd.smembers(this.keys.presenceNodeSet()));
      if (nodes.length === 0) return { users: [], nextCursor: null };
      const min = cursor === null ? '-' : `(${cursor}`;
      const p = this.cmd.pipeline();
      for (const node of nodes) {
        p.zrangebylex(this.keys.onlineIndex(node), min, '+', 'LIMIT', 0, n);
        if (cursor === null) p.exists(this.keys.online(node));
      }
      const step = cursor === null ? 2 : 1;
      const res0 = (await p.exec()) ?? [];
      for (const [err] of res0) if (err) throw err;
      const lists = nodes.map((_, i) => res0[i * step]![1] as string[]);
      // The `limit` smallest distinct ids of the union, in Redis' (byte) order: every one of them that is in a
      // node's set is in that node's list (each list holds the node's `limit` smallest ids after the cursor).
      const bytes = new Map<string, Buffer>();
      for (const list of lists) for (const id of list) if (!bytes.has(id)) bytes.set(id, Buffer.from(id, 'utf8'));
      const sorted = [...bytes.keys()].sort((a, b) => Buffer.compare(bytes.get(a)!, bytes.get(b)!));
      const page = sorted.slice(0, n);
      const more = sorted.length > n || lists.some((l) => l.length === n);
      if (cursor === null) {
        // Nodes with neither users nor an online hash left (dead, or nobody connected): pruned like onlineUsers does.
        const gone = nodes.filter((_, i) => lists[i]!.length === 0 && res0[i * 2 + 1]![1] === 0);
        if (gone.length) this.pruneNodes(gone);
      }
      const inPage = new Set(page);
      const asked: Array<{ node: string; ids: string[] }> = [];
      const q = this.cmd.pipeline();
      nodes.forEach((node, i) => {
        const ids = lists[i]!.filter((id) => inPage.has(id));
        if (ids.length === 0) return;
        asked.push({ node, ids });
        q.hmget(this.keys.online(node), ...ids);
      });
      const counts = new Map<string, OnlineUser>();
      const res = asked.length ? (await q.exec()) ?? [] : [];
      res.forEach(([err, values], i) => {
        if (err) throw err;
        const ids = asked[i]!.ids;
        (values as Array<string | null>).forEach((v, j) => {
          if (v === null) return; // left (or its node died) since the index was read
          const [count, name] = JSON.parse(v) as [number, string];
          if (!(count > 0)) return;
          const id = ids[j]!;
          const u = counts.get(id);
          if (u) { u.connections += count; if (u.username === null && name !== '') u.username = name; }
          else counts.set(id, { user_id: id, username: name === '' ? null : name, connections: count });
        });
      });
      const users: OnlineUser[] = [];
      for (const id of page) { const u = counts.get(id); if (u) users.push(u); }
      return { users, nextCursor: more && page.length > 0 ? page[page.length - 1]! : null };
    } catch (err) {
      throw toBrokerError('presence onlineUsersPage', err);
    }
  }

  /**
   * Claim a client id: one script on its key `{c:<clientId>}:o` (one slot), atomic check-and-set, so of two
   * connections of different owners claiming at once on two nodes exactly one gets it. The key lives
   * presenceTtlMs and this node refreshes it with its presence entries while the connection holds it: a killed
   * node's claims expire like its presence.
   */
  async claimClientId(clientId: string, userId: string | null, connectionId: string): Promise<ClientIdClaim> {
    let reply: [number, string, string?];
    try {
      reply = await this.cmd.sbClaimClientId(this.keys.clientId(clientId), userId === null ? '0' : '1', userId ?? '',
        this.nodeId, connectionId, this.ttlMs);
    } catch (err) {
      throw toBrokerError('client id claim', err);
    }
    if (Number(reply[0]) !== 1) return { ok: false, holderUserId: reply[1] === '1' ? String(reply[2]) : null };
    const generation = Number(reply[1]);
    this.clientIds.set(clientId, { connectionId, userId, generation });
    return { ok: true, generation };
  }

  async releaseClientId(clientId: string, connectionId: string): Promise<void> {
    if (this.clientIds.get(clientId)?.connectionId === connectionId) this.clientIds.delete(clientId);
    if (this.closed) return;
    try {
      await this.cmd.sbReleaseClientId(this.keys.clientId(clientId), connectionId);
    } catch (err) {
      throw toBrokerError('client id release', err);
    }
  }

  onClientIdLost(listener: (clientId: string, connectionId: string) => void): void {
    this.clientIdLost = listener;
  }

  /** Re-apply the TTL of every client id this node holds (pipelined); write back keys Redis lost; report
   * claims another connection took meanwhile (see CLIENT_ID_REFRESH_LUA) to the onClientIdLost listener. */
  private async refreshClientIds(): Promise<Error | undefined> {
    const held = [...this.clientIds];
    let failed: Error | undefined;
    for (let i = 0; i < held.length; i += REFRESH_BATCH) {
      const batch = held.slice(i, i + REFRESH_BATCH);
      const p = this.cmd.pipeline() as unknown as ScriptClient & { exec(): Promise<Array<[Error | null, unknown]> | null> };
      for (const [clientId, h] of batch) {
        p.sbRefreshClientId(this.keys.clientId(clientId), h.connectionId, this.nodeId, h.userId === null ? '0' : '1',
          h.userId ?? '', h.generation, this.ttlMs);
      }
      const res = (await p.exec()) ?? [];
      failed ??= firstPipelineError(res);
      batch.forEach(([clientId, h], j) => {
        const r = res[j];
        if (r === undefined || r[0] !== null || Number(r[1]) !== 0) return;
        if (this.clientIds.get(clientId)?.connectionId !== h.connectionId) return; // released or re-claimed meanwhile
        this.clientIds.delete(clientId);
        try { this.clientIdLost?.(clientId, h.connectionId); } catch (err) { this.onError(err, 'presence_refresh'); }
      });
    }
    return failed;
  }

  /** The owners of `owners` that are not dead as of the last heartbeat. */
  private live(owners: string[]): string[] {
    if (this.dead.length === 0) return owners;
    const dead = new Set(this.dead);
    return owners.filter((o) => !dead.has(o));
  }

  /** Remove node ids whose online data is gone from the presence node set (best effort, reported). */
  private pruneNodes(nodes: string[]): void {
    this.cmd.srem(this.keys.presenceNodeSet(), ...nodes).catch((err: unknown) => this.onError(err, 'presence_prune'));
  }

  /** Graceful exit: remove this node's entries (best effort, bounded by the command timeout) and disconnect. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopRefreshing();
    if (this.cmd.status === 'ready') {
      try {
        const p = this.cmd.pipeline();
        for (const ch of this.channels.keys()) {
          p.del(this.keys.presenceHashPrefix(ch) + this.ownerId);
          p.del(this.keys.presenceIndexPrefix(ch) + this.ownerId);
        }
        for (const u of this.users.keys()) p.del(this.keys.userHashPrefix(u) + this.ownerId);
        p.del(this.keys.online(this.ownerId));
        p.del(this.keys.onlineIndex(this.ownerId));
        p.srem(this.keys.presenceNodeSet(), this.ownerId);
        if (this.nodeTimeoutMs > 0) p.zrem(this.keys.heartbeats(), this.ownerId);
        for (const [clientId, h] of this.clientIds) (p as unknown as ScriptClient).sbReleaseClientId(this.keys.clientId(clientId), h.connectionId);
        const failed = firstPipelineError(await p.exec());
        if (failed) throw failed;
      } catch (err) {
        this.onError(err, 'presence_close');
      }
    }
    this.channels.clear();
    this.users.clear();
    this.clientIds.clear();
    await quitOrDisconnect(this.cmd);
  }

  private async userCount(op: '+' | '-', userId: string, connectionId: string, username: string): Promise<number> {
    const local = this.users.get(userId);
    try {
      const p = this.cmd.pipeline();
      (p as unknown as ScriptClient).sbUserCount(this.keys.userNodes(userId), this.keys.userHashPrefix(userId) + this.ownerId,
        this.ownerId, connectionId, op, username, this.ttlMs, this.keys.userHashPrefix(userId), ...this.dead);
      const onlineKey = this.keys.online(this.ownerId);
      const indexKey = this.keys.onlineIndex(this.ownerId);
      if (local) { p.hset(onlineKey, userId, onlineValue(local)); p.zadd(indexKey, 0, userId); }
      else { p.hdel(onlineKey, userId); p.zrem(indexKey, userId); }
      p.pexpire(onlineKey, this.ttlMs);
      p.pexpire(indexKey, this.ttlMs);
      p.sadd(this.keys.presenceNodeSet(), this.ownerId);
      const res = (await p.exec()) ?? [];
      for (const [err] of res) if (err) throw err;
      return Number(res[0]![1]);
    } catch (err) {
      throw toBrokerError(op === '+' ? 'presence userConnected' : 'presence userDisconnected', err);
    }
  }

  /**
   * Re-apply TTLs of every key this node owns; rewrite hashes (and channel indexes) whose size differs from the
   * local mirror (lost in a Redis restart, or a write that failed while Redis was away); the same for the client
   * ids its connections hold (refreshClientIds).
   * O(local channels + local users + local client ids) commands per run, pipelined in batches.
   */
  async refresh(): Promise<void> {
    if (this.refreshing || this.closed || this.cmd.status !== 'ready') return;
    this.refreshing = true;
    try {
      const ttl = this.ttlMs;
      type Item = { kind: 'ch' | 'user'; id: string };
      const items: Item[] = [];
      for (const ch of this.channels.keys()) items.push({ kind: 'ch', id: ch });
      for (const u of this.users.keys()) items.push({ kind: 'user', id: u });
      const missing: Item[] = [];
      // Client ids first: a claim that lapses lets another owner take the id.
      let failed: Error | undefined = await this.refreshClientIds();
      for (let i = 0; i < items.length; i += REFRESH_BATCH) {
        const batch = items.slice(i, i + REFRESH_BATCH);
        const p = this.cmd.pipeline();
        /** Index in the reply of each item's first command (channels send 6 commands, users 4). */
        const at: number[] = [];
        let sent = 0;
        for (const it of batch) {
          at.push(sent);
          if (it.kind === 'ch') {
            const hash = this.keys.presenceHashPrefix(it.id) + this.ownerId;
            const index = this.keys.presenceIndexPrefix(it.id) + this.ownerId;
            p.hlen(hash);
            p.zcard(index);
            p.pexpire(hash, ttl);
            p.pexpire(index, ttl);
            p.sadd(this.keys.presenceNodes(it.id), this.ownerId);
            p.pexpire(this.keys.presenceNodes(it.id), ttl);
            sent += 6;
          } else {
            p.hlen(this.keys.userHashPrefix(it.id) + this.ownerId);
            p.pexpire(this.keys.userHashPrefix(it.id) + this.ownerId, ttl);
            p.sadd(this.keys.userNodes(it.id), this.ownerId);
            p.pexpire(this.keys.userNodes(it.id), ttl);
            sent += 4;
          }
        }
        const res = (await p.exec()) ?? [];
        failed ??= firstPipelineError(res);
        // A hash (or a channel's index) that does not hold exactly the local entries is rewritten: Redis lost it
        // (restart without persistence; a member joining afterwards recreates it partially) or a write failed
        // during an outage.
        batch.forEach((it, j) => {
          const size = (it.kind === 'ch' ? this.channels.get(it.id)?.size : this.users.get(it.id)?.size) ?? 0;
          const k = at[j]!;
          if (res[k]?.[1] !== size || (it.kind === 'ch' && res[k + 1]?.[1] !== size)) missing.push(it);
        });
      }
      const p = this.cmd.pipeline();
      for (const it of missing) {
        if (it.kind === 'ch') {
          const local = this.channels.get(it.id);
          if (!local || local.size === 0) continue;
          // Hash and index together in one MULTI (one slot: both carry the channel's tag), so a page never sees
          // one without the other, nor either of them empty.
          const hash = this.keys.presenceHashPrefix(it.id) + this.ownerId;
          const index = this.keys.presenceIndexPrefix(it.id) + this.ownerId;
          const ids: Array<number | string> = [];
          for (const id of local.keys()) ids.push(0, id);
          // The node set again too: a reader that ran between the first pipeline and this one saw the hash empty
          // and pruned this node from it.
          p.call('MULTI');
          p.del(hash); p.hset(hash, Object.fromEntries(local)); p.pexpire(hash, ttl);
          p.del(index); p.zadd(index, ...ids); p.pexpire(index, ttl);
          p.sadd(this.keys.presenceNodes(it.id), this.ownerId); p.pexpire(this.keys.presenceNodes(it.id), ttl);
          p.call('EXEC');
        } else {
          const local = this.users.get(it.id);
          if (!local || local.size === 0) continue;
          const key = this.keys.userHashPrefix(it.id) + this.ownerId;
          p.call('MULTI');
          p.del(key);
          p.hset(key, Object.fromEntries(local));
          p.pexpire(key, ttl);
          p.sadd(this.keys.userNodes(it.id), this.ownerId); p.pexpire(this.keys.userNodes(it.id), ttl); // as above
          p.call('EXEC');
        }
      }
      const onlineKey = this.keys.online(this.ownerId);
      const indexKey = this.keys.onlineIndex(this.ownerId);
      if (this.users.size > 0) {
        // Rewritten whole: small (one entry per local user) and keeps them exact after a Redis restart or a
        // write lost in an outage. Each key in a MULTI of its own (one slot each): readers never see it empty.
        const fields: Record<string, string> = {};
        const index: Array<number | string> = [];
        for (const [u, conns] of this.users) { fields[u] = onlineValue(conns); index.push(0, u); }
        p.call('MULTI'); p.del(onlineKey); p.hset(onlineKey, fields); p.pexpire(onlineKey, ttl); p.call('EXEC');
        p.call('MULTI'); p.del(indexKey); p.zadd(indexKey, ...index); p.pexpire(indexKey, ttl); p.call('EXEC');
        p.sadd(this.keys.presenceNodeSet(), this.ownerId);
      }
      const res = await p.exec();
      failed ??= firstPipelineError(res);
      // A command that fails inside MULTI is reported in the EXEC reply.
      for (const [, v] of res ?? []) {
        if (Array.isArray(v)) for (const x of v) if (x instanceof Error) failed ??= x;
      }
      if (failed) throw failed;
    } catch (err) {
      this.onError(err, 'presence_refresh');
    } finally {
      this.refreshing = false;
    }
  }
}

function onlineValue(conns: Map<string, string>): string {
  let name = '';
  for (const n of conns.values()) { if (n !== '') { name = n; break; } }
  return JSON.stringify([conns.size, name]);
}

/**
 * Compare two strings in the byte order of their UTF-8 encodings (Redis' order: ZRANGEBYLEX, memcmp), which is
 * code point order. UTF-16 code unit order (JS `<`) differs only where a surrogate (U+D800..U+DFFF, half of a
 * code point above U+FFFF) meets a unit of U+E000..U+FFFF: those are remapped so that surrogates sort last.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x += x >= 0xe000 ? -0x800 : 0x2000;
      y += y >= 0xe000 ? -0x800 : 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
