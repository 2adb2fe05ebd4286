import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLOSE_CODES, ERROR_CODES, ErrorCode, isTemporaryError, isTerminalCloseCode, TEMPORARY_ERRORS } from '@switchboard/protocol';
import { configFromEnv, DEFAULT_CONFIG, mergeConfig } from '../src/config.js';
import { configLeafPaths } from '../src/config-file.js';

const protocolDoc = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');
const configDoc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');

describe('registries are documented', () => {
  it('every error code has a description and a row in docs/protocol.md', () => {
    for (const code of Object.keys(ErrorCode)) {
      assert.ok((ERROR_CODES as Record<string, string>)[code]?.length > 10, `${code} has a description`);
      assert.match(protocolDoc, new RegExp(`\\| \`${code}\` \\|`), `${code} is documented in docs/protocol.md`);
    }
  });

  it('every error code says whether it is temporary, and docs/protocol.md says the same', () => {
    for (const code of Object.keys(ErrorCode)) {
      const temporary = (TEMPORARY_ERRORS as Record<string, boolean>)[code];
      assert.equal(typeof temporary, 'boolean', `${code} has a temporary/final flag`);
      assert.match(protocolDoc, new RegExp(`\\| \`${code}\` \\| ${temporary ? 'temporary' : 'final'} \\|`), `${code} flag documented`);
    }
    assert.equal(isTemporaryError('RATE_LIMITED'), true);
    assert.equal(isTemporaryError('FORBIDDEN'), false);
    assert.equal(isTemporaryError('APP_SPECIFIC'), false);
    assert.equal(isTemporaryError('APP_SPECIFIC', true), true);
  });

  it('every close code has a row in docs/protocol.md', () => {
    for (const [code, info] of Object.entries(CLOSE_CODES)) {
      assert.match(protocolDoc, new RegExp(`\\| ${code} \\| ${info.name} \\|`), `${code} documented`);
    }
    assert.equal(isTerminalCloseCode(4011), true);
    assert.equal(isTerminalCloseCode(4001), true);
    assert.equal(isTerminalCloseCode(4091), false);
    assert.equal(isTerminalCloseCode(1006), false);
  });

  it('every leaf config key is documented in docs/configuration.md', () => {
    // Maps of user-chosen names (channels.namespaces, auth.channels.rules, ...) are one key: their entries are not keys.
    for (const key of configLeafPaths()) assert.ok(configDoc.includes(`\`${key}\``), `${key} documented`);
  });
});

describe('config loading', () => {
  it('reads shorthands and SWITCHBOARD__path variables with types from the defaults', () => {
    const c = mergeConfig(DEFAULT_CONFIG, configFromEnv({
      SWITCHBOARD_PORT: '9001',
      SWITCHBOARD__limits__rateLimit__perSecond: '50',
      SWITCHBOARD__auth__required: 'true',
      SWITCHBOARD_ALLOWED_ORIGINS: 'https://a.example,https://b.example',
      SWITCHBOARD__http__apiKey: '123',
      SWITCHBOARD____proto____polluted: 'yes',
    }));
    assert.equal(c.port, 9001);
    assert.equal(c.limits.rateLimit.perSecond, 50);
    assert.equal(c.limits.rateLimit.burst, DEFAULT_CONFIG.limits.rateLimit.burst);
    assert.equal(c.auth.required, true);
    assert.deepEqual(c.auth.origins.allow, ['https://a.example', 'https://b.example']);
    assert.equal(c.http.apiKey, '123');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
