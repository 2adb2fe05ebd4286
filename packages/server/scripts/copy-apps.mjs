// Copies the browser apps (repository folder apps/: the demo chat, the admin dashboard, ...) into the server
// package as dist/apps/<name>/, so that an installed @switchboard/server serves them from its own folder.
// Run by `npm run build` after tsc. Only plain files one level deep are copied (the apps have no build step).
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const source = fileURLToPath(new URL('../../../apps/', import.meta.url));
const target = fileURLToPath(new URL('../dist/apps/', import.meta.url));
if (!existsSync(source)) {
  console.error(`[copy-apps] ${source} not found (not in the repository?): nothing copied`);
  process.exit(0);
}
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const copied = [];
for (const app of readdirSync(source, { withFileTypes: true })) {
  if (!app.isDirectory()) continue;
  cpSync(join(source, app.name), join(target, app.name), { recursive: true });
  copied.push(app.name);
}
console.error(`[copy-apps] dist/apps/{${copied.join(',')}}`);
