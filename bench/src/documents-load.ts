/**
 * Collaborative documents scenario, load side (loaded by load.ts on the first `docs-*` command). Every editor
 * is a Y.Doc bound to the server by its own unmodified provider, as an application would write it:
 *   y-websocket   `new WebsocketProvider(url, name, doc, { WebSocketPolyfill: ws, disableBc: true, awareness })`
 *                 (Switchboard's /yjs endpoint and @y/websocket-server);
 *   hocuspocus    `new HocuspocusProvider({ websocketProvider, name, document, awareness })` with its own
 *                 `new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: ws })`: one socket per editor, as
 *                 with y-websocket (@hocuspocus/server speaks its own protocol).
 * `disableBc`: all editors live in this process, and Node has a global BroadcastChannel, through which
 * y-websocket providers of one room would otherwise exchange updates without the server. Awareness: an
 * Awareness with no local state (no cursor), so the traffic measured is document updates only (a cursor's
 * 15-second renewal would otherwise add one fan-out per editor every 15 s).
 *
 * An update is one local transaction: one character typed at a pseudo-random position of the document's
 * Y.Text and one number (performance.now() at the update) pushed to its Y.Array `marks`. Every other editor
 * of the document observes the mark: latency = observed - written, same process, same clock.
 */
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { WebsocketProvider } from 'y-websocket';
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider';
import WebSocket from 'ws';
import { Histogram } from './histogram.js';
import { runPhase, Waiters, type PhaseHost, type PhaseTally } from './open-loop.js';
import type { DocsOpenResult, DocsPhaseResult, DocsTarget } from './ipc.js';

interface Editor {
  doc: Y.Doc;
  text: Y.Text;
  marks: Y.Array<number>;
  destroy: () => void;
  synced: boolean;
  failed: boolean;
}

interface Phase extends PhaseTally {
  counting: boolean;
  /** Marks observed at least once (their first observation went to `first`). */
  seen: Set<number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Each WebsocketProvider adds a process 'exit' listener: a thousand editors are expected here.
process.setMaxListeners(0);

export class DocsLoad implements PhaseHost {
  private docs: Editor[][] = [];
  private phase: Phase | null = null;
  private lost = 0;
  readonly errors: string[] = [];
  private seed = 12345;
  readonly waiters = new Waiters();

  disconnects(): number {
    return this.lost;
  }

  async open(t: DocsTarget, documents: number, editors: number, textBytes: number, concurrency: number, timeoutMs: number): Promise<DocsOpenResult> {
    const t0 = performance.now();
    const deadline = t0 + timeoutMs;
    const base = this.docs.length;
    const all: Array<() => Promise<void>> = [];
    for (let d = 0; d < documents; d++) {
      const list: Editor[] = [];
      this.docs.push(list);
      for (let e = 0; e < editors; e++) all.push(() => this.connect(t, `${t.prefix}bench-${base + d}`, list, deadline));
    }
    // At most `concurrency` handshakes in flight (the same for every server).
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(concurrency, all.length) }, async () => {
      while (next < all.length) await all[next++]!();
    }));
    const opened = this.docs.slice(base).flat();
    const synced = opened.filter((e) => e.synced).length;
    if (textBytes > 0) {
      for (const list of this.docs.slice(base)) {
        const e = list[0];
        if (e?.synced) e.text.insert(0, 'x'.repeat(textBytes));
      }
    }
    return {
      editors: opened.length, synced, failed: opened.length - synced, ms: Math.round(performance.now() - t0), errors: this.errors.splice(0, 5),
    };
  }

  /** One editor: its provider connects at once; resolves when it is synced, failed, or at the deadline. */
  private connect(t: DocsTarget, name: string, list: Editor[], deadline: number): Promise<void> {
    const doc = new Y.Doc();
    const awareness = new Awareness(doc);
    awareness.setLocalState(null);
    const ed: Editor = { doc, text: doc.getText('text'), marks: doc.getArray<number>('marks'), destroy: () => undefined, synced: false, failed: false };
    list.push(ed);
    ed.marks.observe((ev, tr) => {
      const ph = this.phase;
      if (tr.local || ph === null || !ph.counting) return;
      const now = performance.now();
      for (const item of ev.changes.added) {
        for (const v of item.content.getContent() as number[]) {
          if (v < ph.start) continue; // an earlier phase's mark
          ph.hist.record((now - v) * 1000);
          ph.deliveries++;
          if (!ph.seen.has(v)) {
            ph.seen.add(v);
            ph.first.record((now - v) * 1000);
          }
        }
      }
      ph.lastDelivery = now;
      if (ph.deliveries >= ph.expected) this.waiters.wake();
    });
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (ok: boolean, why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        ed.synced = ok;
        ed.failed = !ok;
        if (!ok && why !== undefined && this.errors.length < 20) this.errors.push(why);
        resolve();
      };
      const timer = setTimeout(() => finish(false, `${name}: not synced before the deadline`), Math.max(1, deadline - performance.now()));
      if (t.client === 'y-websocket') {
        const p = new WebsocketProvider(t.url, name, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true, awareness });
        ed.destroy = () => p.destroy();
        p.on('sync', (s: boolean) => { if (s) finish(true); });
        p.on('status', ({ status }: { status: string }) => { if (status === 'disconnected' && ed.synced) this.lost++; });
        p.on('connection-close', (ev: { code?: number; reason?: string } | null) => { if (!ed.synced) finish(false, `${name}: closed ${ev?.code ?? ''} ${ev?.reason ?? ''}`); });
      } else {
        // One socket per editor, as y-websocket (HocuspocusProviderWebsocket can multiplex documents; a tab
        // editing one document has one).
        const socket = new HocuspocusProviderWebsocket({ url: t.url, WebSocketPolyfill: WebSocket });
        const p = new HocuspocusProvider({ websocketProvider: socket, name, document: doc, awareness });
        p.attach();
        ed.destroy = () => { p.destroy(); socket.destroy(); };
        p.on('synced', ({ state }: { state: boolean }) => { if (state) finish(true); });
        p.on('disconnect', () => { if (ed.synced) this.lost++; });
        p.on('close', ({ event }: { event: { code?: number; reason?: string } }) => { if (!ed.synced) finish(false, `${name}: closed ${event?.code ?? ''} ${event?.reason ?? ''}`); });
      }
    });
  }

  /** Open loop at `ratePerSec` updates/s over all documents for `seconds`, then waits for the observations. */
  async runPhase(name: string, ratePerSec: number, seconds: number, drainMs: number): Promise<DocsPhaseResult> {
    const docs = this.docs.map((list) => list.filter((e) => e.synced)).filter((list) => list.length > 0);
    if (docs.length === 0) throw new Error('no synced editor');
    const ph: Phase = {
      start: performance.now(), published: 0, deliveries: 0, expected: 0, firstPub: 0, lastDelivery: 0, hist: new Histogram(), first: new Histogram(), counting: true, seen: new Set(),
    };
    this.phase = ph;
    const cursor = new Array<number>(docs.length).fill(0);
    return runPhase(this, ph, name, ratePerSec, seconds, drainMs, (i) => {
      const d = i % docs.length;
      const list = docs[d]!;
      this.update(list[cursor[d]!++ % list.length]!);
      return list.length - 1;
    }, () => {
      ph.counting = false;
      this.phase = null;
    });
  }

  /** One small update: a character typed somewhere in the text, and the latency mark. */
  private update(ed: Editor): void {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    const pos = ed.text.length === 0 ? 0 : this.seed % (ed.text.length + 1);
    ed.doc.transact(() => {
      ed.text.insert(pos, 'a');
      ed.marks.push([performance.now()]);
    });
  }

  async closeAll(): Promise<void> {
    for (const e of this.docs.flat()) {
      try { e.destroy(); } catch { /* already gone */ }
      e.doc.destroy();
    }
    this.docs = [];
    await sleep(50);
  }
}
