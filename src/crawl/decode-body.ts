/**
 * Turns a page's bytes into text. Pages in the wild still come in windows-1252, ISO-8859-x,
 * Shift_JIS…; decoding them as UTF-8 would fill the extraction prompt with U+FFFD. Order as
 * browsers do: a byte order mark, the Content-Type charset, a <meta> in the first 2 KB, UTF-8.
 */

const SNIFF_BYTES = 2048;

export interface DecodedBody {
  text: string;
  /** The WHATWG name of the encoding used (`utf-8`, `windows-1252`, `shift_jis`, …). */
  charset: string;
}

export function decodeBody(bytes: Uint8Array, contentType: string | undefined): DecodedBody {
  const label =
    bomCharset(bytes) ??
    usableCharset(charsetFromContentType(contentType)) ??
    usableCharset(charsetFromMeta(bytes)) ??
    "utf-8";
  const decoder = new TextDecoder(label);
  let text = decoder.decode(bytes);
  if (decoder.encoding === "windows-1252" && WINDOWS_1252_DECODED_AS_LATIN1) {
    text = text.replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] ?? c);
  }
  return { text, charset: decoder.encoding };
}

// Node 20's TextDecoder decodes windows-1252 (and the labels WHATWG maps to it: iso-8859-1,
// latin1, ascii) as ISO-8859-1, so 0x80–0x9F come out as C1 controls instead of € ‘ ’ “ ” … .
// Detected at load, so a Node that decodes correctly skips the fix-up.
const WINDOWS_1252_DECODED_AS_LATIN1 =
  new TextDecoder("windows-1252").decode(Uint8Array.of(0x80)) === "\u0080";

// WHATWG index-windows-1252 for 0x80–0x9F (0x81, 0x8D, 0x8F, 0x90, 0x9D map to themselves).
const WINDOWS_1252_C1 = [
  "\u20ac",
  "\u0081",
  "\u201a",
  "\u0192",
  "\u201e",
  "\u2026",
  "\u2020",
  "\u2021",
  "\u02c6",
  "\u2030",
  "\u0160",
  "\u2039",
  "\u0152",
  "\u008d",
  "\u017d",
  "\u008f",
  "\u0090",
  "\u2018",
  "\u2019",
  "\u201c",
  "\u201d",
  "\u2022",
  "\u2013",
  "\u2014",
  "\u02dc",
  "\u2122",
  "\u0161",
  "\u203a",
  "\u0153",
  "\u009d",
  "\u017e",
  "\u0178",
];

export function charsetFromContentType(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "");
  return match?.[1];
}

/** `<meta charset="x">` or `<meta http-equiv="Content-Type" content="…; charset=x">`. */
export function charsetFromMeta(bytes: Uint8Array): string | undefined {
  // latin1 maps each byte to one char, so an ASCII tag reads the same whatever the encoding.
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, SNIFF_BYTES))
    .toString("latin1")
    .toLowerCase();
  const direct = /<meta[^>]*?\scharset\s*=\s*["']?\s*([a-z0-9._:-]+)/.exec(head);
  if (direct?.[1]) return direct[1];
  const equiv = /<meta[^>]*http-equiv\s*=\s*["']?content-type[^>]*>/.exec(head);
  if (equiv) return /charset\s*=\s*([a-z0-9._:-]+)/.exec(equiv[0])?.[1];
  return undefined;
}

function bomCharset(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return "utf-8";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return "utf-16be";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return "utf-16le";
  return undefined;
}

/** The label when TextDecoder knows it; an unknown label falls through to the next source. */
function usableCharset(label: string | undefined): string | undefined {
  if (label === undefined) return undefined;
  try {
    new TextDecoder(label);
    return label;
  } catch (error) {
    // A RangeError is TextDecoder's way of saying "unknown label" (e.g. charset=x-user-defined-2):
    // the browser rule is to ignore such a declaration, which the caller does on undefined.
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}
