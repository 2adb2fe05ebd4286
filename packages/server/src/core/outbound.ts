/**
 * A server frame ready to send to many connections. Serialized once; each transport caches its own encoding
 * on the object (WebSocket frame bytes, SSE event bytes), so a publication is encoded once per transport per
 * node, never once per recipient.
 */
export class Outbound {
  /** WebSocket frame bytes (set by the WebSocket transport on first use). */
  ws: Buffer | undefined = undefined;
  /** SSE event bytes (set by the SSE transport on first use). */
  sse: Buffer | undefined = undefined;
  /** The JSON as UTF-8 bytes (set by transports that frame several frames together, e.g. batch mode). */
  utf8: Buffer | undefined = undefined;
  /**
   * A BINARY frame's payload (document frames, docs/documents.md); `json` is then empty. WebSocket only: the
   * transport frames it as a binary message (cached in `ws`).
   */
  binary: Uint8Array | undefined = undefined;
  constructor(
    /** Complete server frame JSON text. */
    readonly json: string,
    /** Frame type, for metrics and SSE `event:` lines. */
    readonly type: string,
    /** Channel offset for SSE `id:` lines (0 when not a channel publication). */
    readonly seq = 0,
    readonly channel: string | null = null,
    readonly epoch: string | null = null,
  ) {}
}

/** Splice `"seq":N,"epoch":"E",` (and `"replayed":true,`) into a frame JSON object text. */
export function withPosition(frame: string, offset: number, epoch: string, replayed = false): string {
  return '{"seq":' + offset + ',"epoch":' + JSON.stringify(epoch) + (replayed ? ',"replayed":true,' : ',') + frame.slice(1);
}
