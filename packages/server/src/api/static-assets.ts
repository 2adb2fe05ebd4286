import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
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
  /** Demo chat folder (index.html, app.js, style.css). Default: the copy inside this package, `dist/apps/chat`. */
  chatDir?: string;
  /** Folder holding switchboard.browser.js / switchboard.browser.iife.js. Default: the installed
   * `@switchboard/client` package's `dist/` (a dependency of this package). */
  sdkDir?: string;
  /** Demo editor folder (index.html, style.css, and dist/editor.js built by its build.mjs). Default: the copy inside this package, `dist/apps/editor`. */
  editorDir?: string;
  /** Files shared by the browser apps (SHARED_FILES), served next to the chat's and the editor's. Default: `dist/apps/shared`. */
  sharedDir?: string;
  /** Also serve the chat's index.html at `/` (default true). */
  chatAtRoot?: boolean;
}

/**
 * Files of apps/shared/ that the browser apps load relative to their own files (`./dom.js`, `base.css`): served
 * under each app's prefix (`/chat/`, `/editor/`, `/admin/`).
 */
export const SHARED_FILES = ['dom.js', 'base.css'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// This file compiles to <package>/dist/src/api/static-assets.js; the build copies the repository's apps/ folder
// to <package>/dist/apps/ (scripts/copy-apps.mjs), so the same paths hold in the repository and once installed.
/** Folder of the browser apps shipped in this package (chat, admin, editor). */
export const APPS_DIR = fileURLToPath(new URL('../../apps/', import.meta.url));

const requireHere = createRequire(import.meta.url);

/**
 * Folder of an installed package (its package.json's folder) as Node resolves it from this package, or null
 * when it is not installed.
 */
export function packageDir(name: string): string | null {
  try {
    return dirname(requireHere.resolve(`${name}/package.json`));
  } catch {
    return null;
  }
}

/** The browser bundles' folder of the installed @switchboard/client (null when it is not installed). */
export function defaultSdkDir(): string | null {
  const dir = packageDir('@switchboard/client');
  return dir === null ? null : join(dir, 'dist');
}

/** Content type of a served file by extension. */
export function contentType(path: string): string {
  return TYPES[extname(path)] ?? 'application/octet-stream';
}

/**
 * Serves the browser SDK at SDK_ROUTE / SDK_IIFE_ROUTE, the demo chat at CHAT_PREFIX (and `/`) and the demo
 * editor at EDITOR_ROUTE (page, style, and its esbuild bundle; a missing bundle answers 503 naming the build).
 * Register it BEFORE `apiRoutes` so `/` is the chat rather than the test page. Files are read on each
 * request (small, and a rebuild is picked up); only files present in the chat folder at registration are
 * served (no path traversal). A missing SDK bundle answers 503 UNAVAILABLE naming the build command.
 */
export async function registerStaticAssets(app: FastifyInstance, options: StaticAssetsOptions = {}): Promise<void> {
  const chatDir = options.chatDir ?? join(APPS_DIR, 'chat');
  const sdkDir = options.sdkDir ?? defaultSdkDir();
  const editorDir = options.editorDir ?? join(APPS_DIR, 'editor');
  const sharedDir = options.sharedDir ?? join(APPS_DIR, 'shared');

  const sendFile = async (reply: FastifyReply, path: string, missing: string): Promise<FastifyReply> => {
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      return reply.code(503).send({ error: { code: ErrorCode.UNAVAILABLE, message: missing } });
    }
    return reply.header('cache-control', 'no-cache').type(contentType(path)).send(body);
  };

  const noSdk = sdkDir === null
    ? 'The browser SDK is missing: @switchboard/client is not installed next to @switchboard/server'
    : 'The browser SDK is not built: run `npm run build` (in the repository)';
  const sdkFile = (name: string) => (sdkDir === null ? '' : join(sdkDir, name));
  app.get(SDK_ROUTE, (_req, reply) => sendFile(reply, sdkFile('switchboard.browser.js'), noSdk));
  app.get(SDK_IIFE_ROUTE, (_req, reply) => sendFile(reply, sdkFile('switchboard.browser.iife.js'), noSdk));

  const sharedMissing = (name: string) => `The shared file ${name} is missing from the server package`;
  const noEditor = 'The demo editor is not built: run `npm run build`';
  const editorPage = (_req: unknown, reply: FastifyReply) => sendFile(reply, join(editorDir, 'index.html'), noEditor);
  app.get(EDITOR_ROUTE, editorPage);
  app.get(`${EDITOR_ROUTE}/`, editorPage);
  app.get(`${EDITOR_ROUTE}/style.css`, (_req, reply) => sendFile(reply, join(editorDir, 'style.css'), noEditor));
  app.get(`${EDITOR_ROUTE}/editor.js`, (_req, reply) => sendFile(reply, join(editorDir, 'dist', 'editor.js'), noEditor));
  for (const name of SHARED_FILES) app.get(`${EDITOR_ROUTE}/${name}`, (_req, reply) => sendFile(reply, join(sharedDir, name), sharedMissing(name)));

  let files: string[] = [];
  try {
    files = readdirSync(chatDir, { withFileTypes: true }).filter((e) => e.isFile() && TYPES[extname(e.name)] !== undefined).map((e) => e.name);
  } catch {
    files = [];
  }
  if (!files.includes('index.html')) return;
  const noChat = 'The demo chat folder is missing';
  for (const name of SHARED_FILES) {
    if (!files.includes(name)) app.get(CHAT_PREFIX + name, (_req, reply) => sendFile(reply, join(sharedDir, name), sharedMissing(name)));
  }
  for (const name of files) {
    app.get(CHAT_PREFIX + name, (_req, reply) => sendFile(reply, join(chatDir, name), noChat));
  }
  app.get(CHAT_PREFIX, (_req, reply) => sendFile(reply, join(chatDir, 'index.html'), noChat));
  if (options.chatAtRoot !== false && !app.hasRoute({ method: 'GET', url: '/' })) {
    app.get('/', (_req, reply) => sendFile(reply, join(chatDir, 'index.html'), noChat));
  }
}
