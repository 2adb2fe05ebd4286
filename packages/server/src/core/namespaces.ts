import type { NodeOptions, NamespaceOptions } from './options.js';

/**
 * Channel options by namespace (the channel name part before the first `:`), merged over the defaults.
 * Only configured namespaces are cached; any other name gets the shared defaults object, so client-chosen
 * channel names never add entries.
 */
export class Namespaces {
  private readonly configured = new Map<string, NamespaceOptions>();
  private readonly defaults: NamespaceOptions;

  constructor(options: Pick<NodeOptions, 'channelDefaults' | 'namespaces'>) {
    this.defaults = { ...options.channelDefaults };
    for (const [name, overrides] of Object.entries(options.namespaces)) {
      this.configured.set(name, { ...options.channelDefaults, ...overrides });
    }
  }

  /** Options of the channel's namespace. */
  of(channel: string): NamespaceOptions {
    const colon = channel.indexOf(':');
    if (colon < 0) return this.configured.get('') ?? this.defaults;
    return this.configured.get(channel.slice(0, colon)) ?? this.defaults;
  }
}
