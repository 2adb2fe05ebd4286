import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PositionVector } from '../../src/transport/sse-position.js';
import { channelsFrom } from '../../src/transport/sse-transport.js';

describe('SSE position vector (the event id)', () => {
  it('round-trips channel names with separators, escapes and non-ASCII', () => {
    const v = new PositionVector(4096);
    const names = ['plain', 'chat:lobby', 'a;b', '100%', 'sp ace', 'line\nbreak', 'ünï😀', 'x:y:z'];
    names.forEach((n, i) => v.set(n, `ep${i}`, i + 1));
    const text = v.encode();
    assert.doesNotMatch(text, /[\r\n\0]/);
    assert.ok(text.startsWith('s1;plain:ep0:1;chat:lobby:ep1:2;a%3Bb:'), text);
    const back = PositionVector.decode(text)!;
    assert.deepEqual([...back.keys()], names);
    names.forEach((n, i) => assert.deepEqual(back.get(n), { epoch: `ep${i}`, offset: i + 1 }));
  });

  it('escapes colons in epochs and reports changes only', () => {
    const v = new PositionVector(4096);
    assert.equal(v.set('c', 'e:1', 5), true);
    assert.equal(v.set('c', 'e:1', 5), false);
    assert.equal(v.set('c', 'e:1', 6), true);
    assert.equal(v.encode(), 's1;c:e%3A1:6');
    assert.equal(v.set('c', 'other', 1), true);
    assert.deepEqual(PositionVector.decode(v.encode())!.get('c'), { epoch: 'other', offset: 1 });
  });

  it('stays within its byte bound by leaving entries out', () => {
    const v = new PositionVector(64);
    for (let i = 0; i < 10; i++) v.set(`channel-${i}`, 'abcdefgh', 1000 + i);
    const text = v.encode();
    assert.ok(text.length <= 64, `${text.length} bytes`);
    const back = PositionVector.decode(text)!;
    assert.ok(back.size >= 1 && back.size < 10);
    assert.equal(v.omitted, 10 - back.size);
    assert.deepEqual(back.get('channel-0'), { epoch: 'abcdefgh', offset: 1000 });
  });

  it('rejects ids that are not position vectors', () => {
    for (const bad of ['', 'hello', '42', 's2;a:b:1', 's1;nocolon', 's1;a:b:notanumber', 's1;a:b:-1', 's1;a:%E0%A4%A:1']) {
      assert.equal(PositionVector.decode(bad), null, bad);
    }
    assert.deepEqual(PositionVector.decode('s1'), new Map());
  });
});

describe('SSE channels query', () => {
  it('splits ?channels= on commas, takes ?channel= whole, dedupes in order', () => {
    const url = new URL('http://x/events?channels=a,b,,%20c%20&channels=a,d&channel=e,f');
    assert.deepEqual(channelsFrom(url), ['a', 'b', 'c', 'd', 'e,f']);
  });
});
