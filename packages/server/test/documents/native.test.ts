/**
 * The native form of documents over the Switchboard WebSocket (`/ws`): `doc_open` / `doc_close` JSON
 * commands and binary frames `varstring channel + y-websocket message` both ways, with a raw `ws` client that
 * speaks the sync protocol with y-protocols; next to an unmodified y-websocket provider on the same document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import { WebSocket } from 'ws';
import { ErrorCode } from '@switchboard/protocol';
import { startServer, untilNotified, type Frame, type WatchedServer } from '../helpers.js';
import { editor, synced, untilText, untilDoc, type Editor } from './helpers.js';

/** A Switchboard connection holding Y.Docs through binary document frames. */
class NativeClient {
  readonly frames: Frame[] = [];
  readonly docs = new Map<string, Y.Doc>();
  /** Sync messages received per channel (the server's sync step 1 and 2 and updates). */
  readonly syncMessages = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private seq = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binary(new Uint8Array(data));
      else this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const l of [...this.listeners]) l();
    });
  }

  static async connect(url: string): Promise<NativeClient> {
    const ws = new WebSocket(url);
    const c = new NativeClient(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await c.next((f) => f.type === 'connect');
    return c;
  }

  next(pred: (f: Frame) => boolean, what = 'a frame'): Promise<Frame> {
    return untilNotified(() => this.frames.some(pred), what, 5000, (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    }).then(() => this.frames.splice(this.frames.findIndex(pred), 1)[0]!);
  }

  /** Resolves once `pred()` holds, checked after every message received. */
  until(pred: () => boolean, what: string): Promise<void> {
    return untilNotified(pred, what, 5000, (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  request(type: string, data: Record<string, unknown>): Promise<Frame> {
    const id = `n${++this.seq}`;
    this.ws.send(JSON.stringify({ type, data, id }));
    return this.next((f) => f.id === id, `reply to ${type}`);
  }

  /** `doc_open`, then sync like a provider: our state vector, our updates as they happen. */
  async open(channel: string): Promise<{ reply: Frame; doc: Y.Doc }> {
    const doc = new Y.Doc();
    this.docs.set(channel, doc);
    const reply = await this.request('doc_open', { channel });
    if (reply.type !== 'doc_opened') return { reply, doc };
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 0);
    syncProtocol.writeSyncStep1(e, doc);
    this.sendDoc(channel, encoding.toUint8Array(e));
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === this) return;
      const u = encoding.createEncoder();
      encoding.writeVarUint(u, 0);
      syncProtocol.writeUpdate(u, update);
      this.sendDoc(channel, encoding.toUint8Array(u));
    });
    return { reply, doc };
  }

  sendDoc(channel: string, message: Uint8Array): void {
    const e = encoding.createEncoder();
    encoding.writeVarString(e, channel);
    encoding.writeUint8Array(e, message);
    this.ws.send(encoding.toUint8Array(e), { binary: true });
  }

  private binary(data: Uint8Array): void {
    const d = decoding.createDecoder(data);
    const channel = decoding.readVarString(d);
    const doc = this.docs.get(channel);
    if (doc === undefined) throw new Error(`binary frame for a document not opened: ${channel}`);
    const type = decoding.readVarUint(d);
    if (type !== 0) return; // awareness: not under test here
    this.syncMessages.set(channel, (this.syncMessages.get(channel) ?? 0) + 1);
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, 0);
    syncProtocol.readSyncMessage(d, reply, doc, this);
    if (encoding.length(reply) > 1) this.sendDoc(channel, encoding.toUint8Array(reply));
  }

  close(): void {
    this.ws.close();
  }
}

describe('native document frames over the Switchboard WebSocket', () => {
  let server: WatchedServer;
  const clients: NativeClient[] = [];
  const editors: Editor[] = [];
  const connect = async (): Promise<NativeClient> => {
    const c = await NativeClient.connect(`${server.ws}/ws`);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer({ auth: { channels: { default: 'allow', rules: { 'doc:ro:*': { subscribe: 'any', publish: 'none' } } } } });
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const e of editors) e.destroy();
    await server.close();
  });

  it('doc_open answers doc_opened; a native client and a y-websocket provider converge on one document', async () => {
    const c = await connect();
    const { reply, doc } = await c.open('doc:native');
    assert.equal(reply.type, 'doc_opened');
    // The document frame limit: documents.maxUpdateBytes + 1024 + 3 × limits.maxChannelNameLength (over 64 KiB).
    assert.deepEqual(reply.data, { channel: 'doc:native', writable: true, max_message_bytes: 1024 * 1024 + 1024 + 3 * 200 });
    const p = editor(`${server.ws}/yjs`, 'doc:native');
    editors.push(p);
    await synced(p);
    doc.getText('t').insert(0, 'native ');
    p.text.insert(0, 'provider ');
    const text = (): string => doc.getText('t').toString();
    await untilDoc(doc, () => text().length === 16 && text() === p.text.toString(), 'native and provider converge');
    await untilText(p, text());
  });

  it('a read-only native client gets writable false and READ_ONLY for its updates; the document is unchanged', async () => {
    await server.sb.node.documents.write('doc:ro:n', (() => {
      const d = new Y.Doc();
      d.getText('t').insert(0, 'server text');
      return Y.encodeStateAsUpdate(d);
    })());
    const c = await connect();
    const { reply, doc } = await c.open('doc:ro:n');
    assert.equal(reply.data.writable, false);
    await untilDoc(doc, () => doc.getText('t').toString() === 'server text', 'the document at the reader');
    doc.getText('t').insert(0, 'X');
    const err = await c.next((f) => f.type === 'error' && f.data.code === ErrorCode.READ_ONLY, 'READ_ONLY');
    assert.equal(err.data.channel, 'doc:ro:n');
    const copy = new Y.Doc();
    Y.applyUpdate(copy, await server.sb.node.documents.read('doc:ro:n'));
    assert.equal(copy.getText('t').toString(), 'server text');
  });

  it('document frames for a document not opened, non-document binary frames, join_channel on a document: named errors', async () => {
    const c = await connect();
    c.sendDoc('doc:not-open', new Uint8Array([0, 0, 0]));
    const notOpen = await c.next((f) => f.type === 'error', 'error for a document not opened');
    assert.equal(notOpen.data.code, ErrorCode.NOT_SUBSCRIBED);
    c.sendDoc('chat:x', new Uint8Array([1, 2, 3]));
    assert.equal((await c.next((f) => f.type === 'error', 'binary on a plain channel')).data.code, ErrorCode.BINARY_NOT_SUPPORTED);
    c.ws.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), { binary: true });
    assert.equal((await c.next((f) => f.type === 'error', 'malformed binary')).data.code, ErrorCode.INVALID_MESSAGE);
    const join = await c.request('join_channel', { channel: 'doc:native' });
    assert.equal(join.data.code, ErrorCode.NOT_A_DOCUMENT);
    const open = await c.request('doc_open', { channel: 'chat:x' });
    assert.equal(open.data.code, ErrorCode.NOT_A_DOCUMENT);
  });

  it('a malformed update gets INVALID_UPDATE and the connection and the document stay usable', async () => {
    const c = await connect();
    const { doc } = await c.open('doc:native');
    await untilDoc(doc, () => doc.getText('t').length === 16, 'the document loaded');
    c.sendDoc('doc:native', new Uint8Array([0, 2, 5, 1, 2]));
    const err = await c.next((f) => f.type === 'error', 'INVALID_UPDATE');
    assert.equal(err.data.code, ErrorCode.INVALID_UPDATE);
    const closed = await c.request('doc_close', { channel: 'doc:native' });
    assert.equal(closed.type, 'ok');
    const pong = await c.request('ping', {});
    assert.notEqual(pong.type, 'error');
  });
});

describe('documents per connection', () => {
  it('past documents.maxPerConnection doc_open is TOO_MANY_CHANNELS; doc_close frees a slot; doc_open again answers and resyncs', async () => {
    const server = await startServer({ documents: { maxPerConnection: 2 } });
    const c = await NativeClient.connect(`${server.ws}/ws`);
    try {
      const a = await c.open('doc:slot-a');
      assert.equal(a.reply.type, 'doc_opened');
      assert.equal((await c.open('doc:slot-b')).reply.type, 'doc_opened');
      const third = await c.request('doc_open', { channel: 'doc:slot-c' });
      assert.equal(third.type, 'error');
      assert.equal(third.data.code, ErrorCode.TOO_MANY_CHANNELS);
      assert.equal(third.data.temporary, false);
      // Opened already: answered again, and the server starts the sync over (its sync messages arrive again).
      const synced = (): number => c.syncMessages.get('doc:slot-a') ?? 0;
      await c.until(() => synced() > 0, 'the first sync of doc:slot-a');
      const before = synced();
      const again = await c.request('doc_open', { channel: 'doc:slot-a' });
      assert.equal(again.type, 'doc_opened');
      await c.until(() => synced() > before, 'a new sync after the second doc_open');
      assert.equal((await c.request('doc_close', { channel: 'doc:slot-b' })).type, 'ok');
      assert.equal((await c.open('doc:slot-c')).reply.type, 'doc_opened');
    } finally {
      c.close();
      await server.close();
    }
  });
});

describe('documents at shutdown', () => {
  it('y-websocket sockets close with 4091; a Switchboard connection with a document open gets the shutdown frame first', async () => {
    const server = await startServer();
    const p = editor(`${server.ws}/yjs`, 'doc:bye');
    const c = await NativeClient.connect(`${server.ws}/ws`);
    try {
      await synced(p);
      await c.open('doc:bye');
      const closedCode = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
      const providerClose = new Promise<number>((resolve) => p.provider.once('connection-close', (ev) => resolve(ev?.code ?? -1)));
      await server.close();
      assert.equal(await providerClose, 4091);
      assert.equal(await closedCode, 4091);
      assert.ok(c.frames.some((f) => f.type === 'shutdown'), 'shutdown frame before the close');
    } finally {
      p.destroy();
      c.close();
    }
  });
});
