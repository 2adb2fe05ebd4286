#!/usr/bin/env node
// The `switchboard` command. A plain file that exists before the build, so that `npm install` links it
// (node_modules/.bin/switchboard) in the repository too; the CLI itself is the compiled dist/src/cli.js.
const cli = new URL('../dist/src/cli.js', import.meta.url);
import(cli.href).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli.js')) {
    console.error('switchboard: the server is not built yet: run `npm run build` in the repository (npm start builds too)');
    process.exit(1);
  }
  console.error(err);
  process.exit(1);
});
