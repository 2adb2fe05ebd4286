// Builds the browser bundles of @switchboard/client with esbuild:
//   dist/switchboard.browser.js       ESM   (served at /sdk/switchboard.js)
//   dist/switchboard.browser.iife.js  IIFE, global `Switchboard` (served at /sdk/switchboard.iife.js)
// Input is the tsc output (dist/src/index.js), so run `tsc -b` first (npm run build does both).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const common = {
  absWorkingDir: root,
  entryPoints: ['dist/src/index.js'],
  bundle: true,
  platform: 'browser',
  target: ['es2020'],
  sourcemap: false,
  logLevel: 'warning',
  legalComments: 'none',
};
await build({ ...common, format: 'esm', outfile: 'dist/switchboard.browser.js' });
await build({ ...common, format: 'iife', globalName: 'Switchboard', outfile: 'dist/switchboard.browser.iife.js' });
console.error('[bundle] dist/switchboard.browser.js, dist/switchboard.browser.iife.js');
