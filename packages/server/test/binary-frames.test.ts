/**
 * Binary app payloads (issue 13, seed 002's binary messages): a binary WebSocket frame `varstring channel +
 * bytes` naming a channel of a namespace with `binary: true` is a publish of those bytes, delivered as an
 * ordinary publication `{binary: "<base64>"}`. Raw `ws` clients over real sockets, including several frames
 * written in ONE TCP write, mixed with JSON text frames; across two server processes on Redis and to an SSE
 * subscriber; and the frame limits of the Switchboard WebSocket when document namespaces exist (text frames
 * still end at limits.maxMessageBytes).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'node:net';
import * as encoding from 'lib0/encoding';
import { ErrorCode } from '@switchboard/protocol';
import { ServerNode, uniquePrefix } from './cluster/harness.js';
import { startServer, TestClient, type Frame, type WatchedServer } from './helpers.js';
import { requireRedisUrl } from './redis/redis-process.js';
import { EsClient } from './sse/sse-client.js';

/** `varstring channel + payload`, the layout of a document frame, written with lib0 (not the SDK's encoder). */
function binaryFrame(channel: string, payload: Uint8Array): Buffer {
  const e = encoding.createEncoder();
  encoding.writeVarString(e, channel);
  encoding.writeUint8Array(e, payload);
  return Buffer.from(encoding.toUint8Array(e));
}

/** One client-to-server WebSocket frame, masked with a zero key (RFC 6455: any key is valid). */
function wireFrame(opcode: 1 | 2, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]) : null;
  if (head === null) throw new Error('frame too long for this helper');
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

const rawSocket = (c: TestClient): Socket => (c.socket as unknown as { _socket: Socket })._socket;
const b64 = (bytes: number[]): string => Buffer.from(bytes).toString('base64');
const isMessage = (channel: string) => (f: Frame): boolean => f.type === 'message' && f.channel === channel;

describe('binary app payloads over the Switchboard WebSocket', () => {
  let srv: WatchedServer;
  const open: TestClient[] = [];
  const connect = async (query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${srv.ws}/ws${query}`);
    open.push(c);
    return c;
  };

  before(async () => {
    srv = await startServer({
      channels: { namespaces: { bin: { binary: true }, binm: { binary: true, publishRequiresMembership: true } } },
      auth: { channels: { default: 'allow', rules: { 'bin:ro:*': { subscribe: 'any', publish: 'none' } } } },
    });
  });
  after(async () => {
    for (const c of open) c.close();
    await srv.close();
  });

  it('a binary frame in a binary namespace is published as {binary: base64}: answered ok bin-1, delivered, in history', async () => {
    const sub = await connect();
    assert.equal((await sub.join('bin:a')).type, 'subscribed');
    const pub = await connect();
    pub.socket.send(binaryFrame('bin:a', new Uint8Array([0, 1, 2, 255])), { binary: true });
    const ok = await pub.next((f) => f.id === 'bin-1');
    assert.equal(ok.type, 'ok');
    assert.equal(ok.data.channel, 'bin:a');
    assert.equal(typeof ok.data.offset, 'number');
    const msg = await sub.next(isMessage('bin:a'));
    assert.equal(msg.data.binary, b64([0, 1, 2, 255]));
    assert.equal(msg.seq, ok.data.offset);
    const history = await sub.request('history', { channel: 'bin:a' });
    const pubs = history.data.publications as Frame[];
    assert.equal(pubs.length, 1);
    assert.equal(pubs[0]!.data.binary, b64([0, 1, 2, 255]));
  });

  it('binary and JSON text frames in ONE TCP write take effect in the order sent', async () => {
    const sub = await connect();
    await sub.join('bin:order');
    const pub = await connect();
    const text = (n: number): Buffer => wireFrame(1, Buffer.from(JSON.stringify({ type: 'message', data: { channel: 'bin:order', n }, id: `t${n}` })));
    const bin = (n: number): Buffer => wireFrame(2, binaryFrame('bin:order', new Uint8Array([n])));
    rawSocket(pub).write(Buffer.concat([text(1), bin(2), text(3), bin(4), bin(5), text(6)]));
    const got: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      const m = await sub.next(isMessage('bin:order'));
      got.push(m.data.n ?? m.data.binary);
    }
    assert.deepEqual(got, [1, b64([2]), 3, b64([4]), b64([5]), 6]);
    // The binary frames are numbered 1, 2, 3 on this connection: their answers carry bin-1..bin-3 in order.
    const answers = [await pub.next((f) => f.id === 'bin-1'), await pub.next((f) => f.id === 'bin-2'), await pub.next((f) => f.id === 'bin-3')];
    assert.deepEqual(answers.map((a) => a.type), ['ok', 'ok', 'ok']);
    const offsets = answers.map((a) => a.data.offset as number);
    assert.ok(offsets[0]! < offsets[1]! && offsets[1]! < offsets[2]!, `offsets in order: ${offsets.join(',')}`);
  });

  it('a namespace without binary: BINARY_NOT_SUPPORTED (final), the connection stays', async () => {
    const c = await connect();
    c.socket.send(binaryFrame('room:plain', new Uint8Array([1, 2, 3])), { binary: true });
    const err = await c.next((f) => f.id === 'bin-1');
    assert.equal(err.type, 'error');
    assert.equal(err.data.code, ErrorCode.BINARY_NOT_SUPPORTED);
    assert.equal(err.data.temporary, false);
    assert.equal((await c.request('ping')).type, 'pong');
    assert.equal(c.closeInfo, null);
  });

  it('unauthorized and non-member binary publishes are refused like a message; nothing is delivered', async () => {
    const sub = await connect();
    await sub.join('bin:ro:x');
    const c = await connect();
    c.socket.send(binaryFrame('bin:ro:x', new Uint8Array([9])), { binary: true });
    const denied = await c.next((f) => f.id === 'bin-1');
    assert.equal(denied.type, 'error');
    assert.equal(denied.data.code, ErrorCode.FORBIDDEN);
    c.socket.send(binaryFrame('binm:y', new Uint8Array([9])), { binary: true });
    const notMember = await c.next((f) => f.id === 'bin-2');
    assert.equal(notMember.data.code, ErrorCode.NOT_SUBSCRIBED);
    await c.join('binm:y');
    c.socket.send(binaryFrame('binm:y', new Uint8Array([9])), { binary: true });
    assert.equal((await c.next((f) => f.id === 'bin-3')).type, 'ok');
    await sub.expectNoFrame(isMessage('bin:ro:x'), 'no delivery of a refused publish', { ping: true });
  });

  it('a binary app frame over limits.maxMessageBytes closes with 1009, though the socket takes larger document frames', async () => {
    const sub = await connect();
    await sub.join('bin:big');
    const c = await connect();
    const max = srv.sb.config.limits.maxMessageBytes;
    c.socket.send(binaryFrame('bin:big', new Uint8Array(max + 1)), { binary: true });
    assert.equal((await c.closed).code, 1009);
    await sub.expectNoFrame(isMessage('bin:big'), 'nothing published', { ping: true });
  });

  it('a 200 KiB text frame still closes with 1009 (the document frame limit is for binary document frames only)', async () => {
    assert.ok(srv.sb.node.maxFrameBytes > 200 * 1024, 'the socket takes 200 KiB frames (for documents)');
    const c = await connect();
    c.send({ type: 'message', data: { channel: 'room:x', pad: 'y'.repeat(200 * 1024) } });
    assert.equal((await c.closed).code, 1009);
    const d = await connect();
    assert.equal((await d.request('ping')).type, 'pong');
  });

  it('doc_opened announces the document frame limit: documents.maxUpdateBytes + 1024 + 3 × maxChannelNameLength', async () => {
    const c = await connect();
    const opened = await c.request('doc_open', { channel: 'doc:limit' });
    assert.equal(opened.type, 'doc_opened');
    const cfg = srv.sb.config;
    assert.equal(opened.data.max_message_bytes, cfg.documents.maxUpdateBytes + 1024 + 3 * cfg.limits.maxChannelNameLength);
  });
});

describe('binary app payloads: rate limit, configuration', () => {
  it('binary publishes take message tokens: past the burst they are refused RATE_LIMITED', async () => {
    const srv = await startServer({ channels: { namespaces: { bin: { binary: true } } }, limits: { rateLimit: { perSecond: 1, burst: 3, closeAfterDropped: 50 } } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const frames = [1, 2, 3, 4, 5].map((n) => wireFrame(2, binaryFrame('bin:r', new Uint8Array([n]))));
      rawSocket(c).write(Buffer.concat(frames));
      const answers = [];
      for (let n = 1; n <= 5; n++) answers.push(await c.next((f) => f.id === `bin-${n}`));
      assert.deepEqual(answers.map((a) => (a.type === 'error' ? a.data.code : a.type)), ['ok', 'ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED']);
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('refused binary frames cost a message token: a flood of them is throttled, then closed with 4021', async () => {
    const srv = await startServer({ limits: { rateLimit: { perSecond: 1, burst: 2, closeAfterDropped: 3 } } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const frames = [1, 2, 3, 4, 5, 6].map((n) => wireFrame(2, binaryFrame('room:plain', new Uint8Array([n]))));
      rawSocket(c).write(Buffer.concat(frames));
      assert.equal((await c.next((f) => f.id === 'bin-1')).data.code, ErrorCode.BINARY_NOT_SUPPORTED);
      assert.equal((await c.next((f) => f.id === 'bin-2')).data.code, ErrorCode.BINARY_NOT_SUPPORTED);
      assert.equal((await c.next((f) => f.id === 'bin-3')).data.code, ErrorCode.RATE_LIMITED);
      assert.equal((await c.closed).code, 4021);
    } finally {
      await srv.close();
    }
  });

  it('without document namespaces the socket limit is limits.maxMessageBytes again; binary + documents is a config error', async () => {
    const srv = await startServer({ channels: { namespaces: { doc: { documents: null }, bin: { binary: true } } } });
    try {
      assert.equal(srv.sb.node.maxFrameBytes, srv.sb.config.limits.maxMessageBytes);
    } finally {
      await srv.close();
    }
    await assert.rejects(startServer({ channels: { namespaces: { both: { binary: true, documents: 'yjs' } } } }), /exclude each other/);
    await assert.rejects(startServer({ channels: { namespaces: { bad: { binary: 'yes' as unknown as boolean } } } }), /channels.namespaces.bad.binary: expected boolean, got "yes"/);
  });
});

describe('binary app payloads across nodes (Redis engine) and to SSE', () => {
  const nodes: ServerNode[] = [];
  const closers: Array<{ close(): void }> = [];
  let A: ServerNode;
  let B: ServerNode;

  before(async () => {
    const redisUrl = requireRedisUrl();
    const prefix = uniquePrefix('binary');
    const settings = { 'channels.namespaces.bin.binary': 'true' };
    [A, B] = await Promise.all(['node-a', 'node-b'].map((id) => ServerNode.spawn({ id, redisUrl, keyPrefix: prefix, settings }))) as [ServerNode, ServerNode];
    nodes.push(A, B);
  });
  after(async () => {
    for (const c of closers) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  /** A binary publish of `bytes` to `channel` from a new connection on node A; resolves with its `ok` answer. */
  async function publishOnA(channel: string, bytes: number[]): Promise<Frame> {
    const pub = await TestClient.connect(`${A.ws}/ws`);
    closers.push(pub);
    pub.socket.send(binaryFrame(channel, new Uint8Array(bytes)), { binary: true });
    const ok = await pub.next((f) => f.id === 'bin-1', 5000);
    assert.equal(ok.type, 'ok', JSON.stringify(ok));
    return ok;
  }

  it('a binary frame published on node A reaches a WebSocket subscriber on node B as {binary: base64}', async () => {
    const sub = await TestClient.connect(`${B.ws}/ws`);
    closers.push(sub);
    assert.equal((await sub.join('bin:cross')).type, 'subscribed');
    const bytes = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff];
    const ok = await publishOnA('bin:cross', bytes);
    const msg = await sub.next(isMessage('bin:cross'), 5000);
    // docs/protocol.md "Binary frames": an ordinary publication whose data is {channel, binary, user_id, username}.
    assert.deepEqual(msg.data, { channel: 'bin:cross', binary: b64(bytes), user_id: null, username: null });
    assert.equal(msg.seq, ok.data.offset);
    assert.equal(msg.epoch, ok.data.epoch);
  });

  it('an SSE subscriber (eventsource) on node B receives a binary frame published on node A as {binary: base64}', async () => {
    const es = new EsClient(`${B.http}/events?channels=bin:sse`);
    closers.push(es);
    await es.next((e) => e.event === 'subscribed' && e.frame.data.channel === 'bin:sse', 5000);
    const bytes = [0xde, 0xad, 0xbe, 0xef, 0, 10, 13];
    const ok = await publishOnA('bin:sse', bytes);
    const msg = await es.next((e) => e.event === 'message' && e.frame.channel === 'bin:sse', 5000);
    assert.deepEqual(msg.frame.data, { channel: 'bin:sse', binary: b64(bytes), user_id: null, username: null });
    assert.equal(msg.frame.seq, ok.data.offset);
    assert.deepEqual([...Buffer.from(msg.frame.data.binary as string, 'base64')], bytes);
  });
});
