// Bytes to text, in bounded pieces: bank files are UTF-8 (with or without a BOM) or GB18030.
// Invalid byte sequences are a document error (the decoder is fatal), never replacement
// characters that would turn into mojibake payer names.

export type TextEncodingName = "utf-8" | "gb18030" | "windows-1252";

export const CHUNK_BYTES = 64 * 1024;

export class EncodingError extends Error {}

/** Maps a declared charset label (XML declaration, profile) to a decoder name, or null. */
export function encodingFromLabel(label: string): TextEncodingName | null {
  const l = label.trim().toLowerCase();
  if (l === "utf-8" || l === "utf8") return "utf-8";
  if (l === "gb18030" || l === "gbk" || l === "gb2312" || l === "cp936" || l === "x-gbk") return "gb18030";
  if (l === "iso-8859-1" || l === "latin1" || l === "windows-1252" || l === "us-ascii" || l === "ascii") {
    return "windows-1252";
  }
  return null;
}

export function hasUtf8Bom(body: Uint8Array): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

/** UTF-16/32 byte order marks: encodings the contract does not allow. */
export function hasForeignBom(body: Uint8Array): boolean {
  return (body[0] === 0xff && body[1] === 0xfe) || (body[0] === 0xfe && body[1] === 0xff);
}

/**
 * Decodes `chunks` piece by piece and hands each piece of text to `sink`; the text never exists
 * whole. A leading UTF-8 BOM is dropped. Throws EncodingError on an invalid sequence (including a
 * truncated one at the end).
 */
export function decodeChunks(
  chunks: Iterable<Uint8Array>,
  encoding: TextEncodingName,
  sink: (text: string) => void,
): void {
  const decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: false });
  try {
    for (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length; offset += CHUNK_BYTES) {
        const piece = chunk.subarray(offset, Math.min(chunk.length, offset + CHUNK_BYTES));
        const text = decoder.decode(piece, { stream: true });
        if (text.length > 0) sink(text);
      }
    }
    const rest = decoder.decode();
    if (rest.length > 0) sink(rest);
  } catch (error) {
    if (error instanceof TypeError) throw new EncodingError(`invalid ${encoding} byte sequence`);
    throw error;
  }
}

/** The first bytes of a body (for sniffing), across chunk boundaries. */
export function head(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  const out: number[] = [];
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length && out.length < bytes; i += 1) out.push(chunk[i]!);
    if (out.length >= bytes) break;
  }
  return Uint8Array.from(out);
}

/**
 * Splits an iterable of chunks into its first `bytes` bytes and an iterable that yields the whole
 * body again (the chunks already read, then the rest), so a one-shot generator can be sniffed.
 */
export function peek(
  source: Uint8Array | Iterable<Uint8Array>,
  bytes: number,
): { head: Uint8Array; body: Iterable<Uint8Array> } {
  if (source instanceof Uint8Array) return { head: source.subarray(0, bytes), body: [source] };
  const iterator = source[Symbol.iterator]();
  const seen: Uint8Array[] = [];
  let total = 0;
  let done = false;
  while (total < bytes) {
    const next = iterator.next();
    if (next.done === true) {
      done = true;
      break;
    }
    seen.push(next.value);
    total += next.value.length;
  }
  const body: Iterable<Uint8Array> = {
    *[Symbol.iterator]() {
      while (seen.length > 0) yield seen.shift()!;
      if (done) return;
      for (let next = iterator.next(); next.done !== true; next = iterator.next()) yield next.value;
    },
  };
  return { head: head(seen, bytes), body };
}
