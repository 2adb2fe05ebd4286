import type { Durability } from './durability.js';
import type { Frames } from './frames.js';
import type { Hub } from './hub/hub.js';
import type { Namespaces } from './namespaces.js';
import type { NodeOptions } from './options.js';
import type { Broker } from './ports/broker.js';
import type { HubHooks } from './ports/hooks.js';
import type { NodeMetrics, Logger } from './ports/observability.js';
import type { PresenceStore } from './ports/presence-store.js';

/**
 * What the node's parts share: the engine ports, options, hooks, observability, the clock, the index and
 * frame builder. Built once by the Node; features declare the slice they use (`Pick<CoreContext, ...>`).
 */
export interface CoreContext {
  readonly options: NodeOptions;
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly hooks: HubHooks;
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  readonly now: () => number;
  readonly hub: Hub;
  readonly frames: Frames;
  readonly namespaces: Namespaces;
  /** Durable archive + offline inbox; null when no store is configured. Set before start. */
  durability: Durability | null;
}

/** Run a promise in the background; a rejection is logged, never thrown. */
export function fireAndLog(log: Logger, p: Promise<unknown>, what: string): void {
  p.catch((err: unknown) => log.warn({ err }, `${what} failed`));
}
