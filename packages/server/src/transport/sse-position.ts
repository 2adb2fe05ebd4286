import type { StreamPosition } from '@switchboard/protocol';

/** Version tag that starts every SSE event id (`s1;…`). */
const VERSION = 's1';

/**
 * The stream position of every channel of one SSE connection, written as the SSE `id:` so that ONE
 * `Last-Event-ID` resumes all channels (an EventSource keeps only the last id it saw).
 *
 * Text form (docs/protocol.md, "SSE"): `s1;<channel>:<epoch>:<offset>;<channel>:<epoch>:<offset>…`
 * - entries in the order the channels were first seen, separated by `;`;
 * - `<channel>` and `<epoch>` are escaped: `%`, `;`, `:` (epoch only), and every character outside printable
 *   ASCII become `%XX` UTF-8 escapes, so an id never holds CR, LF or NUL; a channel name may hold `:`
 *   unescaped because an entry is split at its LAST two colons;
 * - `<offset>` is a decimal integer.
 *
 * Bounded: the encoded text never exceeds `maxBytes`. Entries that do not fit are left out (kept in
 * memory); a resume then answers those channels `recovered: false`, never silently skips publications.
 */
export class PositionVector {
  private readonly entries = new Map<string, { epoch: string; offset: number; text: string }>();
  private encoded: string | null = VERSION;
  /** Channels left out of the id by the size bound at the last encode. */
  omitted = 0;

  constructor(private readonly maxBytes: number) {}

  /** Record a channel's position. Returns true if it changed (the next event needs a new id). */
  set(channel: string, epoch: string, offset: number): boolean {
    const cur = this.entries.get(channel);
    if (cur !== undefined && cur.epoch === epoch && cur.offset === offset) return false;
    const text = cur !== undefined && cur.epoch === epoch
      ? cur.text.slice(0, cur.text.lastIndexOf(':') + 1) + offset
      : escape(channel, false) + ':' + escape(epoch, true) + ':' + offset;
    if (cur === undefined) this.entries.set(channel, { epoch, offset, text });
    else {
      cur.epoch = epoch;
      cur.offset = offset;
      cur.text = text;
    }
    this.encoded = null;
    return true;
  }

  get(channel: string): StreamPosition | undefined {
    const e = this.entries.get(channel);
    return e === undefined ? undefined : { epoch: e.epoch, offset: e.offset };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The id text (cached until the next change). */
  encode(): string {
    if (this.encoded !== null) return this.encoded;
    let out = VERSION;
    let omitted = 0;
    for (const e of this.entries.values()) {
      if (out.length + 1 + e.text.length > this.maxBytes) {
        omitted++;
        continue;
      }
      out += ';' + e.text;
    }
    this.omitted = omitted;
    this.encoded = out;
    return out;
  }

  /**
   * Parse an id written by `encode`. Returns null when the text is not a position vector (wrong version,
   * malformed entry): the caller then treats every channel as not recoverable.
   */
  static decode(text: string): Map<string, StreamPosition> | null {
    const parts = text.trim().split(';');
    if (parts[0] !== VERSION) return null;
    const out = new Map<string, StreamPosition>();
    for (let i = 1; i < parts.length; i++) {
      const part = parts[i]!;
      const b = part.lastIndexOf(':');
      const a = b > 0 ? part.lastIndexOf(':', b - 1) : -1;
      if (a <= 0) return null;
      const offsetText = part.slice(b + 1);
      if (!/^\d{1,15}$/.test(offsetText)) return null;
      let channel: string;
      let epoch: string;
      try {
        channel = decodeURIComponent(part.slice(0, a));
        epoch = decodeURIComponent(part.slice(a + 1, b));
      } catch {
        return null;
      }
      out.set(channel, { epoch, offset: Number(offsetText) });
    }
    return out;
  }
}

/** Percent-escape `%`, `;`, (`:`), and everything outside printable ASCII. */
function escape(s: string, colon: boolean): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x25 || c === 0x3b || (colon && c === 0x3a)) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c <= 0x20 || c >= 0x7f || c === 0x25 || c === 0x3b || (colon && c === 0x3a)) out += escapeChar(ch);
    else out += ch;
  }
  return out;
}

function escapeChar(ch: string): string {
  try {
    return encodeURIComponent(ch);
  } catch {
    return '%EF%BF%BD'; // lone surrogate: U+FFFD
  }
}
