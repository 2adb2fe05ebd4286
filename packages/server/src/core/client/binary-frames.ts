import { CloseCode, ErrorCode } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import { readNativeFrame } from '../features/documents-wire.js';
import type { Client } from './client.js';
import type { CommandPipeline } from './pipeline.js';

/** The request id a binary app publish is answered with: `bin-<n>`, n counting the connection's binary frames. */
export const BINARY_REQUEST_ID_PREFIX = 'bin-';

/** Where a binary frame of a document channel goes (NativeDocuments). */
export interface DocumentFrameSink {
  isDocument(channel: string): boolean;
  receive(c: Client, channel: string, message: Uint8Array): void;
}

/**
 * Binary WebSocket frames of a Switchboard connection (docs/protocol.md "Binary frames"). Every binary frame
 * is `varstring channel + payload`:
 *
 * - a channel of a document namespace: a document message (NativeDocuments), with the documents' own limits;
 * - a channel of a namespace with `binary: true`: a publish of the payload bytes, run as the `message`
 *   command `{channel, binary: "<base64>"}` through the connection's pipeline (same rate limit, order,
 *   membership rule and authorization), answered `ok` / `error` with id `bin-<n>` where n counts the
 *   connection's binary frames from 1 (document frames included). A frame over `limits.maxMessageBytes`
 *   closes the connection with 1009, as a text frame over it does;
 * - anything else: `error` BINARY_NOT_SUPPORTED (id `bin-<n>`); the connection stays. Refused frames (this,
 *   and INVALID_MESSAGE for a frame without a channel name) cost a message token like bad text frames, so a
 *   flood of them is throttled (RATE_LIMITED) and closed with 4021.
 *
 * Why base64 in an ordinary publication: history, recovery, Redis, SSE and the HTTP API carry JSON data
 * unchanged, so a binary publication needs nothing of its own anywhere past this point.
 */
export class BinaryFrames {
  constructor(
    private readonly ctx: Pick<CoreContext, 'frames' | 'namespaces' | 'options'>,
    private readonly documents: DocumentFrameSink,
    private readonly pipeline: CommandPipeline,
  ) {}

  /**
   * A binary frame from the transport (SessionPort.handleBinary): `undefined` when the transport could not
   * read one (answered BINARY_NOT_SUPPORTED); otherwise it counts as activity and goes to `receive`.
   */
  handle(c: Client, data: Uint8Array | undefined, now: number): void {
    if (c.closed) return;
    if (data === undefined) {
      this.ctx.frames.error(c, ErrorCode.BINARY_NOT_SUPPORTED, 'Binary frames are not supported; send JSON text frames', undefined);
      return;
    }
    c.lastSeen = now;
    c.lastActivity = now;
    c.pingSentAt = 0;
    this.receive(c, data);
  }

  /** One binary frame from the client. Never throws. */
  receive(c: Client, data: Uint8Array): void {
    const id = `${BINARY_REQUEST_ID_PREFIX}${++c.binaryFrames}`;
    let frame: { channel: string; message: Uint8Array };
    try {
      frame = readNativeFrame(data);
    } catch {
      this.pipeline.invalid(c, ErrorCode.INVALID_MESSAGE, 'Malformed binary frame (expected a varstring channel, then the payload)', id, data.length);
      return;
    }
    const channel = frame.channel;
    if (this.documents.isDocument(channel)) {
      this.documents.receive(c, channel, frame.message);
      return;
    }
    if (this.ctx.namespaces.of(channel).binary !== true) {
      this.pipeline.invalid(c, ErrorCode.BINARY_NOT_SUPPORTED, `Binary frames are accepted for document channels and namespaces with "binary": true; "${channel.slice(0, 200)}" is neither (send JSON text frames)`, id, data.length);
      return;
    }
    const max = this.ctx.options.limits.maxMessageBytes;
    if (data.length > max) {
      // As a text frame over the limit: the socket may take larger frames only for documents.
      c.sink.close(CloseCode.MESSAGE_TOO_BIG, `frame over limits.maxMessageBytes (${max})`);
      return;
    }
    const payload = frame.message;
    const binary = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
    this.pipeline.binary(c, { type: 'message', data: { channel, binary }, id }, data.length);
  }
}
