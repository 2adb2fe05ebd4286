/**
 * JSON with comments (the format `switchboard genconfig` writes): `//` and `/* *\/` comments and trailing commas
 * are removed outside strings, then the text is parsed as JSON. Plain JSON parses unchanged.
 */
export function parseJsonc(text: string): unknown {
  return JSON.parse(stripJsonComments(text));
}

/** Blank comments (with spaces, so error positions stay) and drop trailing commas, outside strings. */
export function stripJsonComments(text: string): string {
  return dropTrailingCommas(blankComments(text));
}

/** End index (exclusive) of the string literal starting at `i` (a `"`). */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  return Math.min(text.length, j + 1);
}

function blankComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    let end = i + 1;
    if (ch === '"') {
      end = stringEnd(text, i);
    } else if (ch === '/' && text[i + 1] === '/') {
      end = text.indexOf('\n', i);
      if (end === -1) end = text.length;
      out += ' '.repeat(end - i);
      i = end;
      continue;
    } else if (ch === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      end = close === -1 ? text.length : close + 2;
      out += text.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
      continue;
    }
    out += text.slice(i, end);
    i = end;
  }
  return out;
}

function dropTrailingCommas(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      const end = stringEnd(text, i);
      out += text.slice(i, end);
      i = end;
      continue;
    }
    if (ch === ',') {
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      out += text[j] === '}' || text[j] === ']' ? ' ' : ',';
    } else {
      out += ch;
    }
    i++;
  }
  return out;
}
