import { WebSocket, type ClientOptions } from 'ws';

/** What a WebSocket upgrade came to: an HTTP answer instead of the upgrade, or an open socket (closed again here). */
export type UpgradeResult = { kind: 'http'; status: number; body: string } | { kind: 'open' } | { kind: 'error'; message: string };

/**
 * Try an upgrade and report whether the server answered it with an HTTP status (and the body) or accepted it.
 * A socket the server drops without an answer is `error` (what issue 12 saw for two-segment paths).
 */
export function tryUpgrade(url: string, options: ClientOptions = {}): Promise<UpgradeResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ kind: 'http', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      resolve({ kind: 'open' });
      ws.close();
    });
    ws.on('error', (err) => resolve({ kind: 'error', message: err.message }));
  });
}

/** Assert-friendly form of a 404 answer: status and the JSON error code. */
export function notFound(r: UpgradeResult): { status: number; code: string } | UpgradeResult {
  if (r.kind !== 'http') return r;
  return { status: r.status, code: (JSON.parse(r.body) as { error: { code: string } }).error.code };
}
