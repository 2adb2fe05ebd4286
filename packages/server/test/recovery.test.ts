import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, within, type Frame } from './helpers.js';

const messages = (_c: TestClient, channel: string) => (f: Frame) => f.type === 'message' && f.channel === channel;

/** Wakes whoever waits in `next()` at each `notify()`: two loops waiting for each other's progress. */
class Progress {
  private waiters: Array<() => void> = [];
  next(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

describe('recovery on reconnect', () => {
  it('a client killed mid-stream recovers every missed publication, in order, without duplicates, while publishing goes on', async () => {
    // The window is sized above anything the publisher can produce in the test (it never runs more than AHEAD
    // past what the test has read), so the server must answer recovered:true; the window-exceeded case has
    // its own test below.
    const max = 20_000;
    const AHEAD = 500;
    const srv = await startServer({ limits: { rateLimit: { perSecond: 0 } }, channels: { defaults: { historySize: max }, maxRecoveryPublications: max } });
    // The publisher and the test wait for each other's progress through these, never for time.
    const progress = new Progress();
    let n = 0; // offsets published
    let read = 0; // newest offset the test has read
    let publishing = true;
    const publisher = (async () => {
      while (publishing && n < max) {
        if (n - read >= AHEAD) {
          await progress.next();
          continue;
        }
        n += 1;
        await srv.sb.node.publish('stream', { n });
        progress.notify();
        if (n % 5 === 0) await new Promise((r) => setImmediate(r)); // yield to I/O: it keeps publishing through the test
      }
    })();
    const saw = (seq: number): number => {
      read = Math.max(read, seq);
      progress.notify();
      return seq;
    };
    try {
      const first = await TestClient.connect(`${srv.ws}/ws`);
      const sub = await first.join('stream');
      const epoch = sub.data.epoch as string;
      const seen: number[] = [];
      for (let i = 0; i < 20; i++) seen.push(saw((await first.next(messages(first, 'stream'))).seq!));
      first.socket.terminate(); // no close frame: a dropped network
      const last = seen[seen.length - 1]!;
      const publishedTo = async (offset: number): Promise<void> => {
        while (n < offset) await progress.next();
      };
      await within(publishedTo(last + 20), 5000, 'publications while away'); // they pile up while it is away
      const second = await TestClient.connect(`${srv.ws}/ws`);
      second.send({ type: 'join_channel', data: { channel: 'stream', since: { offset: last, epoch } }, id: 'rejoin' });
      const subscribed = await second.next((f) => f.id === 'rejoin');
      assert.equal(subscribed.type, 'subscribed');
      assert.equal(subscribed.data.recovered, true);
      const replayed: number[] = [];
      for (;;) {
        const f = await second.next((x) => (x.type === 'message' && x.channel === 'stream') || x.type === 'replay_complete');
        if (f.type === 'replay_complete') {
          assert.equal(f.data.replayed_count, replayed.length);
          assert.equal(f.data.recovered, true);
          break;
        }
        assert.equal(f.replayed, true);
        replayed.push(saw(f.seq!));
      }
      const live: number[] = [];
      for (let i = 0; i < 50; i++) {
        const f = await second.next(messages(second, 'stream'));
        assert.notEqual(f.replayed, true);
        live.push(saw(f.seq!));
      }
      const all = [...seen, ...replayed, ...live];
      assert.ok(replayed.length >= 20, 'what was published while away was missed and replayed');
      assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => seen[0]! + i), 'gapless and duplicate-free');
      second.close();
    } finally {
      publishing = false;
      progress.notify();
      await publisher;
      await srv.close();
    }
  });

  it('says recovered:false, and replays nothing, when the window no longer covers the gap', async () => {
    const srv = await startServer({ channels: { defaults: { historySize: 5 } } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const sub = await c.join('small');
      for (let i = 0; i < 10; i++) await srv.sb.node.publish('small', { i });
      const r = await c.request('join_channel', { channel: 'small-b' });
      void r;
      const d = await TestClient.connect(`${srv.ws}/ws`);
      const again = await d.request('join_channel', { channel: 'small', since: { offset: 2, epoch: sub.data.epoch } });
      assert.equal(again.data.recovered, false);
      assert.equal(again.data.offset, 10);
      const done = await d.next('replay_complete');
      assert.equal(done.data.replayed_count, 0);
      assert.equal(done.data.recovered, false);
      assert.equal(d.frames.filter((f) => f.replayed === true).length, 0);
      const wrongEpoch = await d.request('join_channel', { channel: 'small-c', since: { offset: 0, epoch: 'not-the-epoch' } });
      assert.equal(wrongEpoch.data.recovered, false);
      c.close();
      d.close();
    } finally {
      await srv.close();
    }
  });

  it('a position in a lost epoch: recovered:false, then the new epoch from offset 1 (all of it is missed)', async () => {
    // The stream idles past its history ttl and is forgotten; the next publication starts a new epoch.
    const ttl = 400;
    const srv = await startServer({ channels: { namespaces: { brief: { historyTtlMs: ttl } } } });
    try {
      const old = await srv.sb.node.publish('brief:x', { text: 'old-1' });
      await new Promise((r) => setTimeout(r, ttl + 200)); // the ttl is the clock under test
      const n1 = await srv.sb.node.publish('brief:x', { text: 'new-1' });
      await srv.sb.node.publish('brief:x', { text: 'new-2' });
      assert.notEqual(n1.epoch, old.epoch, 'a new epoch');
      assert.equal(n1.offset, 1);
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const sub = await c.join('brief:x', { since: { offset: old.offset, epoch: old.epoch } });
      assert.equal(sub.data.recovered, false);
      assert.equal(sub.data.epoch, n1.epoch);
      assert.equal(sub.data.offset, 0, 'delivery continues from the start of the new epoch');
      const got = [await c.next('message'), await c.next('message')];
      assert.deepEqual(got.map((f) => [f.data.text, f.seq, f.epoch, f.replayed]), [['new-1', 1, n1.epoch, true], ['new-2', 2, n1.epoch, true]]);
      const done = await c.next('replay_complete');
      assert.deepEqual([done.data.recovered, done.data.replayed_count, done.data.offset, done.data.epoch], [false, 2, 2, n1.epoch]);
      // A position in the CURRENT epoch whose window is gone still replays nothing (see the test above), and so
      // does a position the server cannot read (SSE's unknown position, test/sse).
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('recovers with seed 001 ?last_sequence= on connect', async () => {
    const srv = await startServer();
    try {
      for (let i = 1; i <= 6; i++) await srv.sb.node.publish('seq1', { i });
      const c = await TestClient.connect(`${srv.ws}/ws?channels=seq1&last_sequence=3`);
      const sub = await c.next('subscribed');
      assert.equal(sub.data.recovered, true);
      const got = [(await c.next('message')).seq, (await c.next('message')).seq, (await c.next('message')).seq];
      assert.deepEqual(got, [4, 5, 6]);
      assert.equal((await c.next('replay_complete')).data.replayed_count, 3);
      // last_sequence=0 is seed 001's "nothing seen yet": a plain join, nothing replayed.
      const fresh = await TestClient.connect(`${srv.ws}/ws?channels=seq1&last_sequence=0`);
      const plain = await fresh.next('subscribed');
      assert.deepEqual([plain.data.offset, plain.data.recovered], [6, undefined]);
      await fresh.expectNoFrame((f) => f.type === 'message' || f.type === 'replay_complete', 'no replay for last_sequence=0');
      fresh.close();
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('snapshot namespaces deliver the latest publication on subscribe', async () => {
    const srv = await startServer({ channels: { namespaces: { ticker: { snapshot: true } } } });
    try {
      await srv.sb.node.publish('ticker:ACME', { price: 1 });
      await srv.sb.node.publish('ticker:ACME', { price: 2 });
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const sub = await c.join('ticker:ACME');
      assert.equal(sub.data.offset, 2);
      const snap = await c.next('message');
      assert.equal(snap.data.price, 2);
      assert.equal(snap.seq, 2);
      await srv.sb.node.publish('ticker:ACME', { price: 3 });
      assert.equal((await c.next('message')).data.price, 3);
      const plain = await TestClient.connect(`${srv.ws}/ws`);
      await srv.sb.node.publish('plain', { x: 1 });
      await plain.join('plain');
      // A snapshot would follow `subscribed` within the join; the barrier runs after the join finished.
      await plain.expectNoFrame((f) => f.type === 'message', 'no snapshot outside snapshot namespaces');
      c.close();
      plain.close();
    } finally {
      await srv.close();
    }
  });
});

describe('app-provided snapshots', () => {
  it('sends the snapshot hook\'s state after subscribed and before live publications', async () => {
    const srv = await startServer(
      { channels: { namespaces: { portfolio: { snapshot: true } } } },
      { hooks: { snapshot: async (channel) => ({ channel, positions: [{ symbol: 'ACME', qty: 3 }] }) } },
    );
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      c.send({ type: 'join_channel', data: { channel: 'portfolio:team-7' } });
      const order: string[] = [];
      const sub = await c.next((f) => f.type === 'subscribed' || f.type === 'snapshot');
      order.push(sub.type);
      const snap = await c.next((f) => f.type === 'subscribed' || f.type === 'snapshot');
      order.push(snap.type);
      assert.deepEqual(order, ['subscribed', 'snapshot']);
      assert.deepEqual(snap.data.positions, [{ symbol: 'ACME', qty: 3 }]);
      assert.equal(snap.channel, 'portfolio:team-7');
      await srv.sb.node.publish('portfolio:team-7', { fill: 1 });
      assert.equal((await c.next('message')).data.fill, 1);
      c.close();
    } finally {
      await srv.close();
    }
  });
});

describe('acknowledgements', () => {
  it('a retried publish with the same idempotency key is a no-op returning the first offset', async () => {
    const srv = await startServer();
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      await c.join('idem');
      const a = await c.request('message', { channel: 'idem', text: 'once', idempotency_key: 'k-1' });
      const b = await c.request('message', { channel: 'idem', text: 'once', idempotency_key: 'k-1' });
      assert.equal(a.data.offset, 1);
      assert.equal(b.data.offset, 1);
      await c.next('message');
      // Both oks are in, so both publishes are done (the fan-out precedes the ok): barrier, then nothing more.
      await c.expectNoFrame((f) => f.type === 'message', 'the repeat is not delivered');
      const other = await c.request('message', { channel: 'idem', text: 'twice', idempotency_key: 'k-2' });
      assert.equal(other.data.offset, 2);
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('the server can request something from a client and await the response, with a timeout', async () => {
    const srv = await startServer();
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const id = c.connectionId;
      const pending = srv.sb.node.request(id, 'get_location', { precise: true }, 2000);
      const req = await c.next('request');
      assert.equal(req.data.method, 'get_location');
      assert.deepEqual(req.data.params, { precise: true });
      c.send({ type: 'response', data: { request_id: req.data.request_id, result: { city: 'Oslo' } } });
      assert.deepEqual(await pending, { city: 'Oslo' });
      await assert.rejects(srv.sb.node.request(id, 'ignored', {}, 100), (e: { code: string }) => e.code === 'TIMEOUT');
      const stray = await c.request('response', { request_id: 'nope' });
      assert.equal(stray.data.code, 'NOT_FOUND');
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('history requests page through the broker window (limit, before, seed-000 offset)', async () => {
    const srv = await startServer();
    try {
      for (let i = 1; i <= 8; i++) await srv.sb.node.publish('h', { i });
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const newest = await c.request('history', { channel: 'h', limit: 3 });
      assert.deepEqual(newest.data.publications.map((p: Frame) => p.seq), [8, 7, 6]);
      const older = await c.request('history', { channel: 'h', limit: 3, before: 6 });
      assert.deepEqual(older.data.publications.map((p: Frame) => p.seq), [5, 4, 3]);
      const skip = await c.request('history', { channel: 'h', limit: 2, offset: 2 });
      assert.deepEqual(skip.data.publications.map((p: Frame) => p.seq), [6, 5]);
      assert.equal(newest.data.publications[0].data.i, 8);
      c.close();
    } finally {
      await srv.close();
    }
  });
});
