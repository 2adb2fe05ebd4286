import { readFileSync } from 'node:fs';

/** The version of @switchboard/server (its package.json sits two folders above dist/src/version.js). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
