// How job output becomes lines on the page, as a terminal would show it.
//
// Output arrives as byte chunks cut anywhere (mid-line, mid-character, mid-escape). Each
// stream keeps its own UTF-8 decoder and unfinished line; a carriage return moves back to
// the start of the line so the text after it overwrites what was there (progress bars);
// control characters that are neither layout nor ANSI escapes are shown as U+FFFD, so
// binary output stays readable and harmless. Colours are ansi_up's job (it also escapes
// HTML); this module never builds markup.

const ESCAPE = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/y;
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

/** Index in `text` after the first `count` visible characters (escapes take no room). */
function visibleIndex(text, count) {
  let i = 0;
  let seen = 0;
  while (i < text.length && seen < count) {
    ESCAPE.lastIndex = i;
    const m = ESCAPE.exec(text);
    if (m) { i += m[0].length; continue; }
    const cp = text.codePointAt(i);
    i += cp > 0xffff ? 2 : 1;
    seen += 1;
  }
  // Escapes right after the last counted character belong to what follows.
  return i;
}

/** Number of visible characters in `text`. */
export function visibleLength(text) {
  let n = 0;
  let i = 0;
  while (i < text.length) {
    ESCAPE.lastIndex = i;
    const m = ESCAPE.exec(text);
    if (m) { i += m[0].length; continue; }
    const cp = text.codePointAt(i);
    i += cp > 0xffff ? 2 : 1;
    n += 1;
  }
  return n;
}

/** One line (no "\n") with its carriage returns applied: later text overwrites earlier. */
export function applyCarriageReturns(line) {
  let shown = "";
  for (const part of line.split("\r")) {
    if (part === "") continue; // "\r\n" and repeated "\r" move nothing
    const width = visibleLength(part);
    shown = visibleLength(shown) <= width ? part : part + shown.slice(visibleIndex(shown, width));
  }
  return shown;
}

/** Control characters other than tab and escape become U+FFFD. */
export function showControls(text) {
  return text.replace(CONTROL, "\ufffd");
}

/** Splits one stream's bytes into finished lines and the unfinished rest. */
export class StreamLines {
  constructor() {
    this.decoder = new TextDecoder("utf-8");
    this.partial = "";
  }

  /** Feed bytes; returns {lines: [finished lines], partial: the unfinished line}. */
  push(bytes) {
    const text = this.partial + this.decoder.decode(bytes, { stream: true });
    const pieces = text.split("\n");
    this.partial = pieces.pop();
    return { lines: pieces, partial: this.partial };
  }
}

/** The text of one line as it should be handed to the colour renderer. */
export function displayLine(raw) {
  return showControls(applyCarriageReturns(raw));
}
