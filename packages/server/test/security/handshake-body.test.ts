/**
 * Issue 11.4 (transport side): a WebSocket upgrade refused at the HTTP handshake answers with the same JSON
 * error body as the SSE endpoint and the HTTP API: `{"error": {"code", "message", "temporary"}}`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startServer } from '../helpers.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';

type Refusal = { status: number; contentType: string; body: unknown };

/** Open a WebSocket that the server must refuse at the handshake; resolves with the HTTP answer. */
function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: JSON.parse(text) });
      });
    });
    ws.on('error', () => {});
  });
}

function assertErrorBody(body: unknown, code: string, temporary: boolean): void {
  assert.ok(body !== null && typeof body === 'object', 'a JSON object');
  const error = (body as { error?: unknown }).error;
  assert.ok(error !== null && typeof error === 'object', `body.error is an object: ${JSON.stringify(body)}`);
  const e = error as Record<string, unknown>;
  assert.equal(e.code, code);
  assert.equal(typeof e.message, 'string');
  assert.ok((e.message as string).length > 0);
  assert.equal(e.temporary, temporary);
}

describe('handshake refusal bodies', () => {
  it('rejectAt "handshake": 401 with {error: {code, message, temporary}}, the same shape as SSE', async () => {
    const srv = await startServer({ auth: { required: true, rejectAt: 'handshake', jwt: { algorithms: ['HS256'], secret: SECRET } } });
    try {
      const ws = await refusedUpgrade(`${srv.ws}/ws?token=not-a-token`);
      assert.equal(ws.status, 401);
      assert.match(ws.contentType, /application\/json/);
      assertErrorBody(ws.body, 'INVALID_TOKEN', false);
      assert.equal((ws.body as { error: { message: string } }).error.message, 'malformed token');

      const sse = await fetch(`${srv.http}/events?token=not-a-token`);
      assert.equal(sse.status, 401);
      const sseBody = (await sse.json()) as unknown;
      assertErrorBody(sseBody, 'INVALID_TOKEN', false);
      assert.deepEqual(Object.keys((ws.body as { error: object }).error).sort(), Object.keys((sseBody as { error: object }).error).sort());

      const none = await refusedUpgrade(`${srv.ws}/ws/authenticated`);
      assert.equal(none.status, 401);
      assertErrorBody(none.body, 'UNAUTHORIZED', false);
    } finally {
      await srv.close();
    }
  });

  it('origin refusal (403) and drain (503) use the same body', async () => {
    const srv = await startServer({ auth: { origins: { allow: ['https://app.example.com'] } } });
    try {
      const origin = await refusedUpgrade(`${srv.ws}/ws`, { origin: 'https://evil.example' });
      assert.equal(origin.status, 403);
      assertErrorBody(origin.body, 'ORIGIN_NOT_ALLOWED', false);

      srv.sb.node.setDraining(true);
      const draining = await refusedUpgrade(`${srv.ws}/ws`);
      assert.equal(draining.status, 503);
      assertErrorBody(draining.body, 'DRAINING', true);
      srv.sb.node.setDraining(false);
    } finally {
      await srv.close();
    }
  });
});
