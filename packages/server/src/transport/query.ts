/** `?user_events=1` (or `true`) on a WebSocket or SSE URL: the connection opts in to user_online / user_offline. */
export function wantsUserEvents(url: URL): boolean {
  const v = url.searchParams.get('user_events');
  return v === '1' || v === 'true';
}
