/**
 * Pattern subscriptions: a subscription name ending in `*` stands for every channel that starts with what
 * comes before it, cut at a namespace boundary: `news:*` matches `news:eu` and `news:eu:sport`, `*` matches
 * every channel. Matching a publication costs one map lookup per `:` in its channel name (its prefixes), never
 * a scan of the subscriptions.
 */

/** The prefix a pattern name stands for (`news:*` -> `news:`, `*` -> ``), or null if the name is no pattern. */
export function patternPrefix(name: string): string | null {
  if (name.length === 0 || name.charCodeAt(name.length - 1) !== 42 /* * */) return null;
  const prefix = name.slice(0, -1);
  if (prefix.includes('*')) return null;
  if (prefix !== '' && !prefix.endsWith(':')) return null;
  return prefix;
}

/** Calls `fn` with every pattern prefix that matches `channel`: `` first, then each prefix ending at a `:`. */
export function forEachPrefix(channel: string, fn: (prefix: string) => void): void {
  fn('');
  for (let i = channel.indexOf(':'); i >= 0; i = channel.indexOf(':', i + 1)) fn(channel.slice(0, i + 1));
}

/** Whether `channel` is matched by the pattern with this prefix. */
export function matches(prefix: string, channel: string): boolean {
  return channel.length > prefix.length && channel.startsWith(prefix);
}
