/**
 * Node-only helpers for servers that serve the browser SDK. Import from `@switchboard/client/node`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** File names of the esbuild outputs inside the package's `dist/` folder. */
export const BROWSER_BUNDLE_FILES = { esm: 'switchboard.browser.js', iife: 'switchboard.browser.iife.js' } as const;

/** HTTP paths a server should serve them at (same as SDK_PATHS in the main entry). */
export const SDK_ROUTES = { esm: '/sdk/switchboard.js', iife: '/sdk/switchboard.iife.js' } as const;

/**
 * Absolute path of a browser bundle (`esm`: ES module, `iife`: global `Switchboard`). The file exists after
 * `npm run build -w @switchboard/client` (tsc + esbuild); check with `browserBundleExists`.
 */
export function browserBundlePath(format: 'esm' | 'iife' = 'esm'): string {
  // This module compiles to dist/src/node.js; the bundles sit in dist/.
  return fileURLToPath(new URL(`../${BROWSER_BUNDLE_FILES[format]}`, import.meta.url));
}

export function browserBundleExists(format: 'esm' | 'iife' = 'esm'): boolean {
  return existsSync(browserBundlePath(format));
}
