// Bundles the demo editor (src/editor.js: CodeMirror 6, y-codemirror.next, Yjs and the Switchboard SDK's
// `@switchboard/client/yjs`) into dist/editor.js, served at /editor/editor.js. Needs the SDK built first
// (`npm run build` at the repository root does both, in order).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: ['src/editor.js'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
  legalComments: 'none',
  outfile: 'dist/editor.js',
});
console.error('[bundle] apps/editor/dist/editor.js');
