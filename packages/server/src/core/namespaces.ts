import type { NodeOptions, NamespaceOptions } from './options.js';

/**
 * The reserved channel of user events: a connection that joins it receives `user_online` / `user_offline`
 * (or `users_diff`) for the users of the whole cluster, except about its own user. Clients cannot publish or
 * type in it; it has no presence of its own.
 */
export const USERS_CHANNEL = '$users';

/**
 * Channel options by namespace (the channel name part before the first `:`), merged over the defaults.
 * Only configured namespaces are cached; any other name gets the shared defaults object, so client-chosen
 * channel names never add entries.
 */
export class Namespaces {
  private readonly configured = new Map<string, NamespaceOptions>();
  private readonly defaults: NamespaceOptions;
  private readonly users: NamespaceOptions;

  constructor(options: Pick<NodeOptions, 'channelDefaults' | 'namespaces'>) {
    this.defaults = { ...options.channelDefaults };
    checkNamespace('channels.defaults', this.defaults);
    for (const [name, overrides] of Object.entries(options.namespaces)) {
      const ns = { ...options.channelDefaults, ...overrides };
      checkNamespace(`channels.namespaces.${name}`, ns);
      this.configured.set(name, ns);
    }
    this.users = {
      ...this.defaults, historySize: 0, snapshot: false, persist: false,
      presence: false, joinLeave: false, countIntervalMs: 0, publishRequiresMembership: true,
    };
  }

  /** Options of the channel's namespace. */
  of(channel: string): NamespaceOptions {
    if (channel === USERS_CHANNEL) return this.users;
    const colon = channel.indexOf(':');
    if (colon < 0) return this.configured.get('') ?? this.defaults;
    return this.configured.get(channel.slice(0, colon)) ?? this.defaults;
  }

  /** A channel the server owns: clients may join it, never publish or type in it. */
  isReserved(channel: string): boolean {
    return channel === USERS_CHANNEL;
  }
}

/** Configuration errors of a namespace's `documents` / `binary` options (thrown at start-up). */
function checkNamespace(where: string, ns: NamespaceOptions): void {
  if (ns.documents !== undefined && ns.documents !== null && ns.documents !== 'yjs') {
    throw new Error(`${where}.documents: "yjs" or null, not ${JSON.stringify(ns.documents)}`);
  }
  if (ns.binary !== undefined && typeof ns.binary !== 'boolean') throw new Error(`${where}.binary: true or false, not ${JSON.stringify(ns.binary)}`);
  if (ns.binary === true && ns.documents === 'yjs') {
    throw new Error(`${where}: "binary": true and "documents": "yjs" exclude each other (a document channel's binary frames are document messages)`);
  }
}
