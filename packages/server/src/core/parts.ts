import { Access } from './client/access.js';
import { Subscriptions } from './client/channels.js';
import { BinaryFrames } from './client/binary-frames.js';
import { ClientCommands } from './client/commands.js';
import { Lifecycle } from './client/lifecycle.js';
import { CommandPipeline, type Execute } from './client/pipeline.js';
import { PatternSubscriptions } from './client/patterns.js';
import type { Client } from './client/client.js';
import { Heartbeat } from './client/heartbeat.js';
import type { Hub } from './hub/hub.js';
import { BrokerEvents } from './broker-events.js';
import type { CoreContext } from './context.js';
import { ChannelContinuity } from './features/continuity.js';
import { Direct } from './features/direct.js';
import { DocumentHistory } from './features/documents-history.js';
import { NativeDocuments } from './features/documents-native.js';
import { Documents } from './features/documents.js';
import type { History } from './features/history.js';
import { PresenceAnnouncer } from './features/announcements.js';
import { Presence } from './features/presence.js';
import { PresenceCounts } from './features/presence-counts.js';
import { UserEvents } from './features/user-events.js';
import { Publisher } from './features/publish.js';
import { PendingRequests } from './features/requests.js';
import { StreamRestore } from './features/stream-restore.js';
import { Typing } from './features/typing.js';
import { Outbound } from './outbound.js';

/** The parts of a node, each on the narrow slice of the context it needs. */
export interface NodeParts {
  access: Access;
  restore: StreamRestore;
  presence: Presence;
  announcer: PresenceAnnouncer;
  counts: PresenceCounts;
  users: UserEvents;
  typing: Typing;
  publisher: Publisher;
  direct: Direct;
  history: History;
  requests: PendingRequests;
  heartbeat: Heartbeat;
  subscriptions: Subscriptions;
  patterns: PatternSubscriptions;
  lifecycle: Lifecycle;
  pipeline: CommandPipeline;
  events: BrokerEvents;
  /** Yjs document channels (issue 13) and their form on Switchboard connections. */
  documents: Documents;
  nativeDocuments: NativeDocuments;
  /** Binary frames of connections: document messages and binary app publishes. */
  binaryFrames: BinaryFrames;
}

/** Build and connect a node's parts (the only place that knows all of them). */
export function assemble(ctx: CoreContext, clients: Hub<Client>, draining: () => boolean): NodeParts {
  const access = new Access(ctx);
  const restore = new StreamRestore(ctx);
  const counts = new PresenceCounts(ctx);
  const announcer = new PresenceAnnouncer(ctx, (channel) => counts.changed(channel));
  const users = new UserEvents(ctx);
  const presence = new Presence(ctx, announcer, users);
  const typing = new Typing(ctx);
  const publisher = new Publisher(ctx, restore);
  const direct = new Direct(ctx);
  const documents = new Documents(ctx);
  const nativeDocuments = new NativeDocuments(ctx, documents);
  const history = new DocumentHistory(ctx, restore, documents);
  const requests = new PendingRequests();
  const continuity = new ChannelContinuity({
    history: (channel, since, limit) => ctx.broker.history(channel, { since, limit }),
    deliver: (pub, replayed) => ctx.hub.deliver(pub, replayed),
    notify: (channel, data) => ctx.hub.fanOut(channel, new Outbound(ctx.frames.frame('replay_complete', { channel, ...data }, { channel }), 'replay_complete'), undefined),
    maxRecoveryPublications: ctx.options.maxRecoveryPublications,
    onError: (err) => ctx.log.warn({ err }, 'channel re-sync after broker outage failed'),
  });
  const subscriptions = new Subscriptions(ctx, { access, presence, typing, continuity, restore });
  const patterns = new PatternSubscriptions(ctx, clients, access);
  clients.setPatternAudience((channel) => access.patternAudience(channel));
  const lifecycle = new Lifecycle(ctx, { subscriptions, patterns, presence, direct, requests, clients, draining });
  const commands = new ClientCommands(ctx, { access, subscriptions, patterns, publisher, direct, typing, presence, history, requests });
  // Document commands (and channel commands naming a document) go to the documents, the rest to the client's.
  const run: Execute = (c, m) => (nativeDocuments.handles(m) ? nativeDocuments.run(c, m) : commands.run(c, m));
  const pipeline = new CommandPipeline(ctx, run);
  const binaryFrames = new BinaryFrames(ctx, nativeDocuments, pipeline);
  const events = new BrokerEvents(ctx, continuity, typing, announcer, users, lifecycle, documents);
  return { access, restore, presence, announcer, counts, users, typing, publisher, direct, history, requests, heartbeat: new Heartbeat(ctx, clients), subscriptions, patterns, lifecycle, pipeline, events, documents, nativeDocuments, binaryFrames };
}

/** The shared once-a-tick sweep of every connection's timers (heartbeats, typing) and the features' caches. */
export function sweepParts(p: NodeParts, now: number): void {
  p.heartbeat.sweep(now);
  p.typing.expire(now);
  p.restore.prune(now);
  p.announcer.prune(now);
  p.counts.prune(now);
  p.users.prune(now);
}

/** Stop the parts' timers and broker interest (Node.stopEngine, before the engine closes). */
export function closeParts(p: NodeParts): void {
  p.events.close();
  p.announcer.close();
  p.counts.close();
  p.users.close();
  p.documents.close();
}
