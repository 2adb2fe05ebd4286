/**
 * Switchboard binary frames of document channels (docs/documents.md, "Native form"): a lib0 varstring (varuint
 * byte length, then UTF-8) naming the channel, then one y-websocket message. Written here without lib0 so
 * the SDK's main entry stays dependency-free.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** `varstring channel + message` as one frame. */
export function encodeDocumentFrame(channel: string, message: Uint8Array): Uint8Array {
  const name = encoder.encode(channel);
  const head: number[] = [];
  let n = name.length;
  while (n > 0x7f) {
    head.push(0x80 | (n & 0x7f));
    n >>>= 7;
  }
  head.push(n);
  const out = new Uint8Array(head.length + name.length + message.length);
  out.set(head, 0);
  out.set(name, head.length);
  out.set(message, head.length + name.length);
  return out;
}

/** Split a frame into channel and message; null when malformed (truncated, bad UTF-8, absurd length). */
export function decodeDocumentFrame(frame: Uint8Array): { channel: string; message: Uint8Array } | null {
  let length = 0;
  let shift = 0;
  let pos = 0;
  for (;;) {
    if (pos >= frame.length || shift > 28) return null;
    const b = frame[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) break;
  }
  if (pos + length > frame.length) return null;
  let channel: string;
  try {
    channel = decoder.decode(frame.subarray(pos, pos + length));
  } catch {
    return null;
  }
  return { channel, message: frame.subarray(pos + length) };
}
