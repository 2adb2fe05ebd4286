/**
 * Redis key and pub/sub channel names of the Redis engine. Every key of one channel (or one user) shares a
 * `{…}` hash tag so Lua scripts touching them stay in one Redis Cluster slot. "node" in presence keys is the
 * presence owner id: `<node id>~<instance>`, new for each process start (see RedisPresenceStore.ownerId). See docs/adr/0002-redis-engine.md.
 *
 *   <p>{<ch>}:m            hash  o=last offset, e=epoch, s=history size, t=history ttl ms   (PX ttl)
 *   <p>{<ch>}:s            stream, entry id "<offset>-0", fields f=frame t=time [x=exclude]  (PX ttl)
 *   <p>{<ch>}:i:<key>      string: the first publication for an idempotency key (PX window)
 *   <p>{<ch>}:p            pub/sub channel of the channel (publications + ephemeral events)
 *   <p>ctl                 pub/sub channel for control messages (every node subscribes)
 *   <p>{p:<ch>}:n          set of node ids holding presence in the channel              (PX presence ttl)
 *   <p>{p:<ch>}:h:<node>   hash connectionId -> member JSON, owned by <node>              (PX presence ttl)
 *   <p>{p:<ch>}:z:<node>   zset of the connection ids in {p:<ch>}:h:<node> (all score 0, paged by ZRANGEBYLEX),
 *                          owned by <node>                                                (PX presence ttl)
 *   <p>{u:<user>}:n        set of node ids holding connections of the user              (PX presence ttl)
 *   <p>{u:<user>}:h:<node> hash connectionId -> username, owned by <node>                 (PX presence ttl)
 *   <p>on:<node>           hash userId -> JSON [localConnections, username], owned by <node> (PX presence ttl)
 *   <p>oz:<node>           zset of the user ids in on:<node> (all score 0, paged by ZRANGEBYLEX), owned by <node>
 *                          (PX presence ttl)
 *   <p>{c:<clientId>}:o    hash: holder of a client id (/ws/{client_id}): c=connection id, n=node, g=generation,
 *                          u=user id (absent: anonymous); written by the claim script, refreshed by the holder's
 *                          node                                                           (PX presence ttl)
 *   <p>pnodes              set of node ids that own presence data (stale ids pruned by readers)
 *   <p>{hb}:z              zset owner id -> time of its last heartbeat (Redis clock, ms)  (PX keep, pruned by score)
 *   <p>{hb}:g              string: set while heartbeats are stale for everyone (grace)  (PX node timeout)
 *   <p>node:<id>:stats     hash: node registry stats (PX 120 s)
 *   <p>nodes               set of node ids in the registry (stale ids pruned by readers)
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}
  meta(ch: string): string { return `${this.prefix}{${ch}}:m`; }
  stream(ch: string): string { return `${this.prefix}{${ch}}:s`; }
  idempotency(ch: string, key: string): string { return `${this.prefix}{${ch}}:i:${key}`; }
  pubsub(ch: string): string { return `${this.prefix}{${ch}}:p`; }
  /** PSUBSCRIBE pattern of every channel pub/sub name starting with `prefix` (glob characters escaped). */
  pubsubPattern(prefix: string): string { return `${globEscape(this.prefix)}{${globEscape(prefix)}*}:p`; }
  /** Inverse of pubsub(); undefined for names that are not channel pub/sub names. */
  channelOfPubsub(name: string): string | undefined {
    const p = this.prefix;
    if (name.length < p.length + 4 || !name.startsWith(p) || name.charCodeAt(p.length) !== 123 /* { */ || !name.endsWith('}:p')) return undefined;
    return name.slice(p.length + 1, -3);
  }
  control(): string { return `${this.prefix}ctl`; }
  presenceNodes(ch: string): string { return `${this.prefix}{p:${ch}}:n`; }
  presenceHashPrefix(ch: string): string { return `${this.prefix}{p:${ch}}:h:`; }
  presenceIndexPrefix(ch: string): string { return `${this.prefix}{p:${ch}}:z:`; }
  userNodes(user: string): string { return `${this.prefix}{u:${user}}:n`; }
  userHashPrefix(user: string): string { return `${this.prefix}{u:${user}}:h:`; }
  online(node: string): string { return `${this.prefix}on:${node}`; }
  onlineIndex(node: string): string { return `${this.prefix}oz:${node}`; }
  clientId(clientId: string): string { return `${this.prefix}{c:${clientId}}:o`; }
  presenceNodeSet(): string { return `${this.prefix}pnodes`; }
  heartbeats(): string { return `${this.prefix}{hb}:z`; }
  heartbeatGrace(): string { return `${this.prefix}{hb}:g`; }
  nodeStats(node: string): string { return `${this.prefix}node:${node}:stats`; }
  nodeSet(): string { return `${this.prefix}nodes`; }
}

/** Escape Redis glob characters (`*`, `?`, `[`, `]`, `\\`) so the text matches only itself. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
