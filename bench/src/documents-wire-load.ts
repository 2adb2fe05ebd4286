/**
 * Collaborative documents, server-bound form (load side; documents.ts runs it after the provider form). The
 * provider form binds a Y.Doc to every editor, so the load process applies every delivered update and its
 * event loop, not the servers, sets the latency and caps the rate (about 100 updates/s for 1,000 editors on
 * one core). Here every editor is a plain WebSocket speaking the target's wire protocol:
 *   - one writer per document types real Yjs updates (a local Y.Doc: one character typed + one latency mark
 *     per transaction, the provider form's update) and sends each as the protocol's sync update message;
 *   - the other editors handshake as a provider does (y-websocket: sync step 1, answered by sync step 2;
 *     Hocuspocus: its auth message, then sync step 1) and then only count the update messages they receive.
 * A server relays a document's updates in the order it got them and a WebSocket keeps that order, so an
 * editor's k-th update message is the writer's k-th update: latency = received - sent, one clock. What the
 * server does per update (parse, check, apply to its Y.Doc, one frame per editor) is the same as in the
 * provider form; the clients are cheap, so the server's own cost and latency show.
 */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import WebSocket from 'ws';
import { Histogram } from './histogram.js';
import { runPhase, Waiters, type PhaseHost, type PhaseTally } from './open-loop.js';
import type { DocsOpenResult, DocsPhaseResult, DocsTarget } from './ipc.js';

interface Reader {
  ws: WebSocket;
  /** Update messages received so far (index into the writer's send times). */
  got: number;
  ready: boolean;
}

interface WireDoc {
  name: string;
  /** Full name on the wire, as the protocol carries it. */
  doc: Y.Doc;
  text: Y.Text;
  marks: Y.Array<number>;
  writer: WebSocket;
  readers: Reader[];
  /** Send time (performance.now()) of every update the writer sent, in order. */
  sent: number[];
  /** Updates some reader received already (the next one received is a first observation). */
  firstSeen: number;
  hocuspocus: boolean;
}

type Phase = PhaseTally;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** y-protocols message types (sync 0: step1 0 / step2 1 / update 2) and Hocuspocus's auth (2: token 0, authenticated 2). */
const SYNC = 0;
const STEP1 = 0;
const STEP2 = 1;
const UPDATE = 2;
const AUTH = 2;

export class WireDocsLoad implements PhaseHost {
  private docs: WireDoc[] = [];
  private phase: Phase | null = null;
  readonly errors: string[] = [];
  private lost = 0;
  private seed = 12345;
  readonly waiters = new Waiters();

  disconnects(): number {
    return this.lost;
  }

  async open(t: DocsTarget, documents: number, editors: number, concurrency: number, timeoutMs: number): Promise<DocsOpenResult> {
    const t0 = performance.now();
    const deadline = t0 + timeoutMs;
    const base = this.docs.length;
    const jobs: Array<() => Promise<boolean>> = [];
    for (let d = 0; d < documents; d++) {
      const name = `${t.prefix}wire-${base + d}`;
      const doc = new Y.Doc();
      const wd: WireDoc = {
        name, doc, text: doc.getText('text'), marks: doc.getArray<number>('marks'), writer: null as unknown as WebSocket, readers: [], sent: [], firstSeen: 0,
        hocuspocus: t.client === 'hocuspocus',
      };
      this.docs.push(wd);
      jobs.push(() => this.connect(t, wd, null, deadline));
      for (let e = 1; e < editors; e++) {
        const r: Reader = { ws: null as unknown as WebSocket, got: 0, ready: false };
        wd.readers.push(r);
        jobs.push(() => this.connect(t, wd, r, deadline));
      }
    }
    let next = 0;
    let ok = 0;
    await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, async () => {
      while (next < jobs.length) if (await jobs[next++]!()) ok++;
    }));
    return { editors: jobs.length, synced: ok, failed: jobs.length - ok, ms: Math.round(performance.now() - t0), errors: this.errors.splice(0, 5) };
  }

  /** One editor's socket; resolves true once it is synced (its sync step 2 came), false on failure or the deadline. */
  private connect(t: DocsTarget, wd: WireDoc, reader: Reader | null, deadline: number): Promise<boolean> {
    const url = t.client === 'hocuspocus' ? t.url : `${t.url}/${wd.name}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'nodebuffer';
    if (reader === null) wd.writer = ws;
    else reader.ws = ws;
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean, why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (reader !== null) reader.ready = ok;
        if (!ok && why !== undefined && this.errors.length < 20) this.errors.push(why);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false, `${wd.name}: not synced before the deadline`), Math.max(1, deadline - performance.now()));
      ws.on('open', () => {
        if (wd.hocuspocus) ws.send(this.frame(wd, (e) => { encoding.writeVarUint(e, AUTH); encoding.writeVarUint(e, 0); encoding.writeVarString(e, ''); }));
        else ws.send(this.step1(wd));
      });
      ws.on('message', (data: Buffer) => {
        const dec = decoding.createDecoder(data);
        if (wd.hocuspocus) decoding.readVarString(dec);
        const type = decoding.readVarUint(dec);
        const sub = decoding.hasContent(dec) ? decoding.readVarUint(dec) : -1;
        if (type === SYNC && sub === UPDATE) {
          if (reader !== null && done) this.received(wd, reader);
          return;
        }
        if (wd.hocuspocus && type === AUTH && sub === 2) ws.send(this.step1(wd));
        else if (type === SYNC && sub === STEP2) finish(true);
      });
      ws.on('close', (code: number) => {
        if (done) this.lost++;
        finish(false, `${wd.name}: closed ${code}`);
      });
      ws.on('error', (err) => finish(false, `${wd.name}: ${err.message}`));
    });
  }

  private frame(wd: WireDoc, body: (e: encoding.Encoder) => void): Uint8Array {
    const e = encoding.createEncoder();
    if (wd.hocuspocus) encoding.writeVarString(e, wd.name);
    body(e);
    return encoding.toUint8Array(e);
  }

  private step1(wd: WireDoc): Uint8Array {
    return this.frame(wd, (e) => { encoding.writeVarUint(e, SYNC); encoding.writeVarUint(e, STEP1); encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())); });
  }

  private received(wd: WireDoc, r: Reader): void {
    const k = r.got++;
    const ph = this.phase;
    const sentAt = wd.sent[k];
    if (ph === null || sentAt === undefined || sentAt < ph.start) return;
    const now = performance.now();
    ph.hist.record((now - sentAt) * 1000);
    if (k >= wd.firstSeen) {
      wd.firstSeen = k + 1;
      ph.first.record((now - sentAt) * 1000);
    }
    ph.deliveries++;
    ph.lastDelivery = now;
    if (ph.deliveries >= ph.expected) this.waiters.wake();
  }

  /** Open loop at `ratePerSec` updates/s over all documents for `seconds`, then waits for the deliveries. */
  async runPhase(name: string, ratePerSec: number, seconds: number, drainMs: number): Promise<DocsPhaseResult> {
    const docs = this.docs.filter((d) => d.writer.readyState === WebSocket.OPEN);
    if (docs.length === 0) throw new Error('no open writer');
    const ph: Phase = { start: performance.now(), published: 0, deliveries: 0, expected: 0, firstPub: 0, lastDelivery: 0, hist: new Histogram(), first: new Histogram() };
    this.phase = ph;
    return runPhase(this, ph, name, ratePerSec, seconds, drainMs, (i) => {
      const wd = docs[i % docs.length]!;
      this.update(wd);
      return wd.readers.filter((r) => r.ready).length;
    }, () => {
      this.phase = null;
    });
  }

  /** One small update, as a provider makes it (a character typed, a latency mark), sent by the writer. */
  private update(wd: WireDoc): void {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    const pos = wd.text.length === 0 ? 0 : this.seed % (wd.text.length + 1);
    let update: Uint8Array | null = null;
    const grab = (u: Uint8Array) => { update = u; };
    wd.doc.once('update', grab);
    wd.doc.transact(() => {
      wd.text.insert(pos, 'a');
      wd.marks.push([performance.now()]);
    });
    const u = update as Uint8Array | null;
    if (u === null) return;
    wd.sent.push(performance.now());
    wd.writer.send(this.frame(wd, (e) => { encoding.writeVarUint(e, SYNC); encoding.writeVarUint(e, UPDATE); encoding.writeVarUint8Array(e, u); }));
  }

  async closeAll(): Promise<void> {
    for (const d of this.docs) {
      d.writer?.terminate();
      for (const r of d.readers) r.ws?.terminate();
      d.doc.destroy();
    }
    this.docs = [];
    await sleep(50);
  }
}
