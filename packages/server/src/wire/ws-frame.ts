const BATCH_OPEN = Buffer.from('{"type":"batch","messages":[');
const BATCH_CLOSE = Buffer.from(']}');
const COMMA = 0x2c;

/** Bytes of a text frame's header for a payload of `length` bytes. */
function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

const TEXT = 0x81; // FIN + opcode 1
const BINARY = 0x82; // FIN + opcode 2

/** Write a server frame header (FIN, `opcode`, no mask) for a payload of `length` bytes; returns its size. */
function writeHeader(buf: Buffer, length: number, first = TEXT): number {
  const header = headerLength(length);
  buf[0] = first;
  if (header === 2) {
    buf[1] = length;
  } else if (header === 4) {
    buf[1] = 126;
    buf.writeUInt16BE(length, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    buf.writeUInt32BE(length >>> 0, 6);
  }
  return header;
}

/**
 * One text frame carrying the JSON frames `parts` (UTF-8, `bytes` in all): the frame itself when there is one,
 * else `{"type":"batch","messages":[part,part,...]}` (seed 002). One allocation, parts copied once.
 */
export function encodeBatchFrame(parts: readonly Buffer[], bytes: number): Buffer {
  if (parts.length === 1) {
    const part = parts[0]!;
    const buf = Buffer.allocUnsafe(headerLength(part.length) + part.length);
    part.copy(buf, writeHeader(buf, part.length));
    return buf;
  }
  const length = BATCH_OPEN.length + bytes + (parts.length - 1) + BATCH_CLOSE.length;
  const buf = Buffer.allocUnsafe(headerLength(length) + length);
  let at = writeHeader(buf, length);
  at += BATCH_OPEN.copy(buf, at);
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) buf[at++] = COMMA;
    at += parts[i]!.copy(buf, at);
  }
  BATCH_CLOSE.copy(buf, at);
  return buf;
}

/**
 * Encode a server-to-client WebSocket text frame (RFC 6455 section 5.2: FIN, opcode 1, no mask).
 * Hand-written because it is the per-publication hot path: one allocation, the text written straight into it.
 */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const buf = Buffer.allocUnsafe(headerLength(length) + length);
  buf.write(text, writeHeader(buf, length), length, 'utf8');
  return buf;
}

/** Encode a server-to-client WebSocket binary frame (FIN, opcode 2, no mask): one allocation. */
export function encodeBinaryFrame(payload: Uint8Array): Buffer {
  const length = payload.byteLength;
  const buf = Buffer.allocUnsafe(headerLength(length) + length);
  buf.set(payload, writeHeader(buf, length, BINARY));
  return buf;
}
