/**
 * Encode a server-to-client WebSocket text frame (RFC 6455 section 5.2: FIN, opcode 1, no mask).
 * Hand-written because it is the per-publication hot path: one allocation, the text written straight into it.
 */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const buf = Buffer.allocUnsafe(header + length);
  buf[0] = 0x81;
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
  buf.write(text, header, length, 'utf8');
  return buf;
}
