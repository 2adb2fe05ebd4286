// Connect options a client passes in the query string of a WebSocket (or SSE) URL.

/** `?user_events=1` (or `true`) on a WebSocket or SSE URL: the connection opts in to user_online / user_offline. */
export function wantsUserEvents(url: URL): boolean {
  const v = url.searchParams.get('user_events');
  return v === '1' || v === 'true';
}

/** `?batch=1` (or `true`) on a WebSocket URL: the frames of one flush arrive as one `batch` frame (seed 002). */
export function wantsBatches(url: URL): boolean {
  const v = url.searchParams.get('batch');
  return v === '1' || v === 'true';
}
