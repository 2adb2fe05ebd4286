import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareUtf8 } from '../../src/broker/redis/redis-presence-store.js';

describe('redis engine: compareUtf8 (merging ZRANGEBYLEX lists of several nodes)', () => {
  it('orders strings like Redis does (bytes of their UTF-8 encodings)', () => {
    const units = ['a', 'b', 'B', '~', '\u007f', 'é', '\u0800', '中', '\ud7ff', '\ue000', '\uffee', '\uffff', '😀', '𝄞', '\u{10ffff}'];
    let seed = 42;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const word = (): string => Array.from({ length: 1 + rand(4) }, () => units[rand(units.length)]!).join('');
    const sign = (x: number): number => Math.sign(x);
    for (let k = 0; k < 20_000; k++) {
      const a = word();
      const b = k % 3 === 0 ? a + word() : word();
      assert.equal(sign(compareUtf8(a, b)), sign(Buffer.compare(Buffer.from(a), Buffer.from(b))), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    assert.ok(compareUtf8('\uffee', '😀') < 0, 'U+FFEE before U+1F600 (JS < says otherwise)');
    assert.equal(compareUtf8('abc', 'abc'), 0);
  });
});
