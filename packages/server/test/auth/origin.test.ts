import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthConfigError, createOriginPolicy } from '../../src/auth/index.js';

test('exact origin matching: scheme + host + port, no substring/suffix/prefix tricks', () => {
  const p = createOriginPolicy({ allow: ['https://good.com', 'http://localhost:5173', 'https://APP.Example.com:443'], allowMissing: true });
  const allowed = ['https://good.com', 'http://localhost:5173', 'https://app.example.com', 'https://GOOD.com', 'https://good.com:443'];
  for (const o of allowed) assert.ok(p.check(o).ok, o);
  const denied = [
    'https://good.com.evil.com', 'https://evilgood.com', 'https://evil.com/https://good.com', 'https://good.com@evil.com',
    'https://evil.com?https://good.com', 'https://evil.com#https://good.com', 'http://good.com', 'https://good.com:8443',
    'wss://good.com', 'https://sub.good.com', 'http://localhost:5174', 'http://localhost', 'good.com', 'https://good.com/',
    'https://good.com/path', 'https://good.com\\@evil.com', 'https://good.com%2eevil.com', 'null', 'file://', 'garbage',
  ];
  for (const o of denied) {
    const v = p.check(o);
    assert.equal(v.ok, false, o);
  }
  assert.equal(p.check(['https://good.com', 'https://evil.com']).ok, false, 'several Origin headers');
});

test('"null" origin refused unless listed; missing Origin configurable; "*" allows all but lists nothing', () => {
  assert.equal(createOriginPolicy({ allow: ['https://good.com'], allowMissing: true }).check('null').ok, false);
  const withNull = createOriginPolicy({ allow: ['https://good.com', 'null'], allowMissing: false });
  assert.deepEqual(withNull.check('null'), { ok: true, origin: 'null', explicit: true });
  assert.equal(withNull.check(undefined).ok, false);
  assert.deepEqual(createOriginPolicy({ allow: ['https://good.com'], allowMissing: true }).check(undefined), { ok: true, origin: null, explicit: false });

  const any = createOriginPolicy({ allow: '*', allowMissing: true });
  const v = any.check('https://whatever.example');
  assert.ok(v.ok && !v.explicit);
  assert.equal(any.isListed('https://whatever.example'), false);
});

test('config entries must be exact origins', () => {
  for (const bad of ['https://good.com/', 'https://*.good.com', '*.good.com', 'good.com', 'https://good.com/app', 'https://u:p@good.com', '*', 'ftp://x.com']) {
    assert.throws(() => createOriginPolicy({ allow: [bad], allowMissing: true }), AuthConfigError, bad);
  }
});
