import { CONFIG_DESCRIPTIONS } from './config-docs.js';
import { DEFAULT_CONFIG, resolveConfig, type DeepPartial, type SwitchboardConfig } from './config.js';
import { ConfigError, describe } from './config-validate.js';
import { schemaAt } from './config-schema.js';
import { Switchboard } from './server.js';

/** Objects written as one value (`{}` maps of user entries), not as a section of keys. */
const MAP_KEYS = new Set(['channels.namespaces', 'auth.channels.rules', 'auth.ed25519.keys']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Every leaf key path of a config (sections descended, maps and arrays are leaves). */
export function configLeafPaths(config: object = DEFAULT_CONFIG, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (isPlainObject(value) && Object.keys(value).length > 0 && !MAP_KEYS.has(path)) out.push(...configLeafPaths(value, path));
    else out.push(path);
  }
  return out;
}

/** Wrap a comment at `width` columns (words kept whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * A complete configuration file, every key with its value, a comment saying what it does and the type the
 * schema takes there (JSON with
 * comments: `--config` and `switchboard checkconfig` read it). Written by `switchboard genconfig`.
 */
export function commentedConfig(config: SwitchboardConfig = DEFAULT_CONFIG, version = ''): string {
  const out: string[] = [
    `// Switchboard configuration${version !== '' ? ` (written by switchboard ${version} genconfig)` : ''}: every setting with its`,
    '// default. JSON with comments; delete the keys you do not change. Later sources win: this file <',
    '// environment variables < command-line flags. Full reference: docs/configuration.md.',
    '// Use it with `switchboard serve --config FILE`; check it with `switchboard checkconfig FILE`.',
  ];
  const write = (obj: Record<string, unknown>, prefix: string, indent: string): void => {
    const entries = Object.entries(obj);
    entries.forEach(([key, value], i) => {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const comma = i < entries.length - 1 ? ',' : '';
      const section = isPlainObject(value) && Object.keys(value).length > 0 && !MAP_KEYS.has(path);
      const description = CONFIG_DESCRIPTIONS[path];
      const schema = section ? undefined : schemaAt(path.split('.'));
      if (description !== undefined) for (const line of wrap(description, 110 - indent.length)) out.push(`${indent}// ${line}`);
      if (schema !== undefined) for (const line of wrap(`type: ${describe(schema)}`, 110 - indent.length)) out.push(`${indent}// ${line}`);
      if (section) {
        out.push(`${indent}${JSON.stringify(key)}: {`);
        write(value, path, `${indent}  `);
        out.push(`${indent}}${comma}`);
      } else {
        out.push(`${indent}${JSON.stringify(key)}: ${JSON.stringify(value)}${comma}`);
      }
    });
  };
  out.push('{');
  write(config as unknown as Record<string, unknown>, '', '  ');
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** Result of validateConfig: the complete config (defaults merged in) when valid, else the problems found. */
export type ConfigCheck = { ok: true; config: SwitchboardConfig } | { ok: false; errors: string[] };

/**
 * Check a configuration (a parsed file, or the merged sources) the way the server does at start-up; the one
 * entry point of `switchboard checkconfig` and `serve`. First the configuration schema (config-schema.ts): every
 * unknown key, wrong type and out-of-range value, each with its path, the expected type and the value found.
 * Then, when the schema passes, the server's parts are built without being started, which catches what their
 * constructors check across keys: JWT key material, channel rules and requirements, origins, the endpoint
 * table, the channel name pattern.
 */
export function validateConfig(input: DeepPartial<SwitchboardConfig> | unknown): ConfigCheck {
  let config: SwitchboardConfig;
  try {
    config = resolveConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, errors: err.problems.map((p) => p.message) };
    return { ok: false, errors: [(err as Error).message ?? String(err)] };
  }
  try {
    // Constructing wires auth (AuthConfigError on a bad section), the node (the channel name pattern is compiled)
    // and the transports; nothing is started or opened.
    new Switchboard({ ...config, log: { level: 'silent' } }, { defaultMetrics: false });
  } catch (err) {
    return { ok: false, errors: [(err as Error).message ?? String(err)] };
  }
  return { ok: true, config };
}
