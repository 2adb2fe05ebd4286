import { ErrorCode, isTemporaryError, type RequestId } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Member } from '../hub/member.js';
import { Outbound } from '../outbound.js';
import type { ConnectionInfo } from '../ports/hooks.js';
import type { Documents } from './documents.js';
import type { DocumentPeer, DocumentSession } from './documents-session.js';
import { DOCUMENT_NODES_CHANNEL, nativeFrame, type DocumentFrame } from './documents-wire.js';

/** A Switchboard connection as documents see it. */
export type DocumentClient = Member & ConnectionInfo;

/** A command of a connection (the pipeline's Command, without depending on the client folder). */
export interface DocumentCommand {
  type: string;
  data: Record<string, unknown>;
  id: RequestId | undefined;
}

/** Channel commands that make no sense on a document channel (a document is opened, not joined). */
const CHANNEL_COMMANDS = new Set(['join_channel', 'message', 'typing']);

/** One open document of a Switchboard connection. */
class NativePeer implements DocumentPeer {
  readonly standalone = false;
  constructor(
    private readonly c: DocumentClient,
    private readonly frames: CoreContext['frames'],
  ) {}

  get id(): string {
    return this.c.id;
  }

  get info(): ConnectionInfo {
    return this.c;
  }

  get actorId(): string {
    return this.c.actorId;
  }

  send(frame: DocumentFrame): void {
    let out = frame.native;
    if (out === undefined) {
      out = new Outbound('', frame.kind, 0, frame.channel);
      out.binary = nativeFrame(frame.channel, frame.message);
      frame.native = out;
    }
    this.c.sink.send(out);
  }

  refused(channel: string, code: string, message: string): void {
    this.frames.send(this.c, 'error', { code, message, temporary: isTemporaryError(code), channel }, { channel });
  }

  close(code: number, reason: string): void {
    this.c.sink.close(code, reason);
  }
}

/**
 * Documents over the Switchboard connection itself (one WebSocket for chat and documents): `doc_open` /
 * `doc_close` JSON commands, then binary frames `varstring channel + y-websocket message` both ways
 * (docs/documents.md, "Native form"). Binary frames bypass the JSON command pipeline; each open document has
 * its own rate limits (DocumentSession).
 */
export class NativeDocuments {
  /** connection id -> channel -> its session (null while opening). */
  private readonly open = new Map<string, Map<string, DocumentSession | null>>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'frames' | 'options'>,
    private readonly docs: Documents,
  ) {}

  /** Whether this command is the documents' to answer (document commands; channel commands on a document). */
  handles(cmd: DocumentCommand): boolean {
    if (cmd.type === 'doc_open' || cmd.type === 'doc_close') return true;
    if (!CHANNEL_COMMANDS.has(cmd.type)) return false;
    const channel = cmd.data.channel;
    return typeof channel === 'string' && (channel === DOCUMENT_NODES_CHANNEL || this.docs.isDocument(channel));
  }

  /** Run a command `handles` accepted. */
  run(c: DocumentClient, cmd: DocumentCommand): void | Promise<void> {
    const channel = cmd.data.channel as string;
    if (cmd.type === 'doc_open') return this.openDocument(c, channel, cmd.id);
    if (cmd.type === 'doc_close') return this.closeDocument(c, channel, cmd.id);
    if (channel === DOCUMENT_NODES_CHANNEL) {
      this.ctx.frames.error(c, ErrorCode.FORBIDDEN, `"${channel}" is reserved for the server`, cmd.id);
      return;
    }
    this.ctx.frames.error(c, ErrorCode.NOT_A_DOCUMENT, `"${channel.slice(0, 200)}" is a document channel: open it with doc_open`, cmd.id);
  }

  private async openDocument(c: DocumentClient, channel: string, id: RequestId | undefined): Promise<void> {
    let mine = this.open.get(c.id);
    const current = mine?.get(channel);
    if (current) {
      // Opened already: answer again and restart the sync (a client that lost track resynchronizes).
      this.opened(c, current, id);
      return;
    }
    const max = this.docs.options.maxPerConnection;
    if (mine !== undefined && mine.size >= max) {
      this.ctx.frames.error(c, ErrorCode.TOO_MANY_CHANNELS, `At most ${max} documents per connection`, id);
      return;
    }
    if (mine === undefined) this.open.set(c.id, (mine = new Map()));
    mine.set(channel, null);
    const r = await this.docs.attach(new NativePeer(c, this.ctx.frames), channel);
    if (c.closed || mine.get(channel) !== null) {
      if (!('refused' in r)) r.detach();
      return;
    }
    if ('refused' in r) {
      this.forget(c.id, channel);
      this.ctx.frames.error(c, r.code, r.message, id);
      return;
    }
    mine.set(channel, r);
    this.opened(c, r, id);
  }

  private opened(c: DocumentClient, s: DocumentSession, id: RequestId | undefined): void {
    this.ctx.frames.send(c, 'doc_opened', { channel: s.channel, writable: s.writable, max_message_bytes: this.docs.maxFrameBytes }, { channel: s.channel, id });
    s.start();
  }

  private closeDocument(c: DocumentClient, channel: string, id: RequestId | undefined): void {
    const s = this.open.get(c.id)?.get(channel);
    if (!s) {
      this.ctx.frames.error(c, ErrorCode.NOT_SUBSCRIBED, `Document "${channel.slice(0, 200)}" is not open`, id);
      return;
    }
    s.detach();
    this.forget(c.id, channel);
    this.ctx.frames.send(c, 'ok', { channel }, { channel, id });
  }

  /** Whether binary frames naming `channel` are document messages (BinaryFrames routes them here). */
  isDocument(channel: string): boolean {
    return this.docs.isDocument(channel);
  }

  /** A binary frame of a connection naming a document channel: a message for one of its open documents. */
  receive(c: DocumentClient, channel: string, message: Uint8Array): void {
    const s = this.open.get(c.id)?.get(channel);
    if (s) {
      s.receive(message);
      return;
    }
    this.ctx.frames.send(c, 'error', { code: ErrorCode.NOT_SUBSCRIBED, message: `Open "${channel.slice(0, 200)}" with doc_open first`, temporary: false, channel }, { channel });
  }

  /** The connection ended: leave its documents. */
  closed(c: { id: string }): void {
    const mine = this.open.get(c.id);
    if (mine === undefined) return;
    this.open.delete(c.id);
    for (const s of mine.values()) s?.detach();
  }

  private forget(connectionId: string, channel: string): void {
    const mine = this.open.get(connectionId);
    if (mine === undefined) return;
    mine.delete(channel);
    if (mine.size === 0) this.open.delete(connectionId);
  }
}
