import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ErrorCode } from '@switchboard/protocol';

/** Stable path of the browser SDK (ES module build of @switchboard/client). */
export const SDK_ROUTE = '/sdk/switchboard.js';
/** Same SDK as a classic script defining the global `Switchboard`. */
export const SDK_IIFE_ROUTE = '/sdk/switchboard.iife.js';
/** Prefix under which every file of the demo chat folder is served. */
export const CHAT_PREFIX = '/chat/';
/** The demo collaborative editor (apps/editor): its page at `/editor`, its files under `/editor/`. */
export const EDITOR_ROUTE = '/editor';

export interface StaticAssetsOptions {
  /** Demo chat folder (index.html, app.js, style.css). Default: `<repo>/apps/chat`. */
  chatDir?: string;
  /** Folder holding switchboard.browser.js / switchboard.browser.iife.js. Default: `<repo>/packages/client/dist`. */
  sdkDir?: string;
  /** Demo editor folder (index.html, style.css, and dist/editor.js built by its build.mjs). Default: `<repo>/apps/editor`. */
  editorDir?: string;
  /** Also serve the chat's index.html at `/` (default true). */
  chatAtRoot?: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// This file compiles to packages/server/dist/src/api/static-assets.js.
const REPO_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/**
 * Serves the browser SDK at SDK_ROUTE / SDK_IIFE_ROUTE, the demo chat at CHAT_PREFIX (and `/`) and the demo
 * editor at EDITOR_ROUTE (page, style, and its esbuild bundle; a missing bundle answers 503 naming the build).
 * Register it BEFORE `apiRoutes` so `/` is the chat rather than the test page. Files are read on each
 * request (small, and a rebuild is picked up); only files present in the chat folder at registration are
 * served (no path traversal). A missing SDK bundle answers 503 UNAVAILABLE naming the build command.
 */
export async function registerStaticAssets(app: FastifyInstance, options: StaticAssetsOptions = {}): Promise<void> {
  const chatDir = options.chatDir ?? join(REPO_ROOT, 'apps', 'chat');
  const sdkDir = options.sdkDir ?? join(REPO_ROOT, 'packages', 'client', 'dist');
  const editorDir = options.editorDir ?? join(REPO_ROOT, 'apps', 'editor');

  const sendFile = async (reply: FastifyReply, path: string, missing: string): Promise<FastifyReply> => {
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      return reply.code(503).send({ error: { code: ErrorCode.UNAVAILABLE, message: missing } });
    }
    return reply.header('cache-control', 'no-cache').type(TYPES[extname(path)] ?? 'application/octet-stream').send(body);
  };

  const noSdk = 'The browser SDK is not built: run `npm run build -w @switchboard/client`';
  app.get(SDK_ROUTE, (_req, reply) => sendFile(reply, join(sdkDir, 'switchboard.browser.js'), noSdk));
  app.get(SDK_IIFE_ROUTE, (_req, reply) => sendFile(reply, join(sdkDir, 'switchboard.browser.iife.js'), noSdk));

  const noEditor = 'The demo editor is not built: run `npm run build`';
  const editorPage = (_req: unknown, reply: FastifyReply) => sendFile(reply, join(editorDir, 'index.html'), noEditor);
  app.get(EDITOR_ROUTE, editorPage);
  app.get(`${EDITOR_ROUTE}/`, editorPage);
  app.get(`${EDITOR_ROUTE}/style.css`, (_req, reply) => sendFile(reply, join(editorDir, 'style.css'), noEditor));
  app.get(`${EDITOR_ROUTE}/editor.js`, (_req, reply) => sendFile(reply, join(editorDir, 'dist', 'editor.js'), noEditor));

  let files: string[] = [];
  try {
    files = readdirSync(chatDir, { withFileTypes: true }).filter((e) => e.isFile() && TYPES[extname(e.name)] !== undefined).map((e) => e.name);
  } catch {
    files = [];
  }
  if (!files.includes('index.html')) return;
  const noChat = 'The demo chat folder is missing';
  for (const name of files) {
    app.get(CHAT_PREFIX + name, (_req, reply) => sendFile(reply, join(chatDir, name), noChat));
  }
  app.get(CHAT_PREFIX, (_req, reply) => sendFile(reply, join(chatDir, 'index.html'), noChat));
  if (options.chatAtRoot !== false && !app.hasRoute({ method: 'GET', url: '/' })) {
    app.get('/', (_req, reply) => sendFile(reply, join(chatDir, 'index.html'), noChat));
  }
}
