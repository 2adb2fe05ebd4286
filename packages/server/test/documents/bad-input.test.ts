/**
 * Bad input on the y-websocket endpoint: each gets a clear close code; the document stays intact for the
 * other (unmodified) providers and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import { CloseCode } from '@switchboard/protocol';
import { startServer, type WatchedServer } from '../helpers.js';
import { RawYSocket, editor, synced, syncMessage, untilText, type Editor } from './helpers.js';

const MAX_UPDATE = 4096;

describe('y-websocket endpoint: bad input', () => {
  let server: WatchedServer;
  let a: Editor;
  let b: Editor;
  const DOC = 'doc:bad';
  const url = (): string => `${server.ws}/yjs/${DOC}`;

  before(async () => {
    server = await startServer({
      documents: { maxUpdateBytes: MAX_UPDATE, updateRate: { perSecond: 1, burst: 30 }, awarenessRate: { perSecond: 10, burst: 20, closeAfterDropped: 50 } },
    });
    a = editor(`${server.ws}/yjs`, DOC);
    b = editor(`${server.ws}/yjs`, DOC);
    await Promise.all([synced(a), synced(b)]);
    a.text.insert(0, 'intact');
    await untilText(b, 'intact');
  });
  after(async () => {
    a.destroy();
    b.destroy();
    await server.close();
  });

  /** The document is still whole and still editable by the good providers. */
  async function stillIntact(marker: string): Promise<void> {
    a.text.insert(a.text.length, marker);
    await untilText(b, a.text.toString());
    assert.ok(b.text.toString().startsWith('intact'), b.text.toString());
  }

  it('a malformed message closes with 4400', async () => {
    const s = await RawYSocket.open(url());
    s.send(new Uint8Array([0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    assert.equal((await s.closeCode()).code, CloseCode.INVALID_DOCUMENT_MESSAGE);
    await stillIntact('.1');
  });

  it('a truncated update closes with 4400', async () => {
    const other = new Y.Doc();
    other.getText('t').insert(0, 'some text long enough to cut in half');
    const full = Y.encodeStateAsUpdate(other);
    const s = await RawYSocket.open(url());
    s.send(syncMessage(full.subarray(0, Math.floor(full.length / 2))));
    const closed = await s.closeCode();
    assert.equal(closed.code, CloseCode.INVALID_DOCUMENT_MESSAGE);
    assert.match(closed.reason, /malformed|truncated/);
    await stillIntact('.2');
  });

  it('an update larger than documents.maxUpdateBytes closes with 4400; a frame past the frame limit with 1009', async () => {
    const big = new Y.Doc();
    big.getText('t').insert(0, 'x'.repeat(MAX_UPDATE + 100));
    const s = await RawYSocket.open(url());
    s.send(syncMessage(Y.encodeStateAsUpdate(big)));
    const closed = await s.closeCode();
    assert.equal(closed.code, CloseCode.INVALID_DOCUMENT_MESSAGE);
    assert.match(closed.reason, /bytes/);

    const s2 = await RawYSocket.open(url());
    s2.send(new Uint8Array(MAX_UPDATE + 2048));
    assert.equal((await s2.closeCode()).code, 1009);
    await stillIntact('.3');
  });

  it('an update for another document closes with 4400', async () => {
    // Another document's change that refers to text this document never had.
    const other = new Y.Doc();
    other.getText('t').insert(0, 'elsewhere');
    const before = Y.encodeStateVector(other);
    other.getText('t').insert(4, '!!');
    const foreign = Y.encodeStateAsUpdate(other, before);
    const s = await RawYSocket.open(url());
    // As a provider does: answer the server's sync step 1 (here with nothing), then send an update.
    s.send(syncMessage(Y.encodeStateAsUpdate(new Y.Doc()), 1));
    s.send(syncMessage(foreign));
    const closed = await s.closeCode();
    assert.equal(closed.code, CloseCode.INVALID_DOCUMENT_MESSAGE);
    assert.match(closed.reason, /does not fit/);
    await stillIntact('.4');
    assert.ok(!b.text.toString().includes('!!'));
  });

  it('an awareness flood closes with 4021', async () => {
    const s = await RawYSocket.open(url());
    const fake = new Y.Doc();
    const aw = new awarenessProtocol.Awareness(fake);
    for (let i = 0; i < 200 && s.closed === null; i++) {
      aw.setLocalState({ cursor: i });
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 1);
      encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(aw, [fake.clientID]));
      s.send(encoding.toUint8Array(e));
    }
    assert.equal((await s.closeCode()).code, CloseCode.RATE_LIMITED);
    aw.destroy();
    // Its cursor is gone for the others.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (!a.provider.awareness.getStates().has(fake.clientID)) {
          a.provider.awareness.off('change', check);
          resolve();
        }
      };
      a.provider.awareness.on('change', check);
      check();
    });
    await stillIntact('.5');
  });

  it('more updates than documents.updateRate allows close with 4021; the updates before it are kept', async () => {
    const s = await RawYSocket.open(url());
    const flood = new Y.Doc();
    const updates: Uint8Array[] = [];
    flood.on('update', (u: Uint8Array) => updates.push(u));
    for (let i = 0; i < 60; i++) flood.getText('flood').insert(i, 'f');
    for (const u of updates) s.send(syncMessage(u));
    assert.equal((await s.closeCode()).code, CloseCode.RATE_LIMITED);
    const copy = new Y.Doc();
    Y.applyUpdate(copy, await server.sb.node.documents.read(DOC));
    const kept = copy.getText('flood').length;
    assert.ok(kept >= 30 && kept < 60, `kept ${kept}`);
    await stillIntact('.5b');
  });

  it('a text frame closes with 1003', async () => {
    const s = await RawYSocket.open(url());
    s.ws.send('hello');
    assert.equal((await s.closeCode()).code, 1003);
    await stillIntact('.6');
  });

  it('a name outside the document namespaces closes with 4404', async () => {
    const s = await RawYSocket.open(`${server.ws}/yjs/chat:room`);
    assert.equal((await s.closeCode()).code, CloseCode.NOT_A_DOCUMENT);
    const res = await fetch(`${server.http}/health`);
    assert.equal(res.status, 200);
    await stillIntact('.7');
  });
});
