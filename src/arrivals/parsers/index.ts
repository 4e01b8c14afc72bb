// The parsers of bank arrival notices and statements (ESCROW.md "Arrival notices", "Bank
// profiles", "Statements and reconciliation"). Pure and synchronous: bytes (+ profile) in, a
// ParsedDocument out; never throws on bad input. Bodies are decoded and tokenised in 64 KiB
// pieces, so files of any size are read in bounded memory (see jsonstream.ts for JSON's one
// exception). Pass `onEntry` to receive entries one by one instead of collecting them.

import { DocumentBuilder, type ParseOptions } from "./builder.ts";
import { camtParser, isAbort } from "./camt.ts";
import {
  decodeChunks,
  EncodingError,
  encodingFromLabel,
  hasForeignBom,
  hasUtf8Bom,
  peek,
  type TextEncodingName,
} from "./encoding.ts";
import { isJsonAbort, jsonStreamParser, streamable } from "./jsonstream.ts";
import { isMt940Abort, mt940Parser } from "./mt940.ts";
import { compileProfile, validateProfile, type CompiledProfile } from "./profile.ts";
import { csvParser, readJsonNotice } from "./tabular.ts";
import type { BankProfile, NoticeFormat, ParsedDocument } from "./types.ts";

export type * from "./types.ts";
export type { ParseOptions } from "./builder.ts";
export { validateProfile } from "./profile.ts";
export { decimalToMinor, minorToDecimal, exponentOf } from "./decimal.ts";
export { compileDateFormat, parseWithFormats, parseIsoDateTime, isValidTimeZone } from "./dates.ts";

/** The largest body the contract accepts. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export type Body = Uint8Array | Iterable<Uint8Array>;

interface Sink {
  write(text: string): void;
  close(): void;
}

function xmlDeclaredEncoding(head: Uint8Array): string | null {
  const text = Buffer.from(head).toString("latin1").replace(/^\xef\xbb\xbf/, "");
  const m = /^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']/.exec(text);
  return m === null ? null : m[1]!;
}

function firstSignificantByte(head: Uint8Array): number | undefined {
  let i = hasUtf8Bom(head) ? 3 : 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x09 || head[i] === 0x0a || head[i] === 0x0d)) i += 1;
  return head[i];
}

/** Runs `sink` over the decoded body; any failure becomes a document error. */
function run(
  doc: DocumentBuilder,
  body: Iterable<Uint8Array>,
  head: Uint8Array,
  xml: boolean,
  profileEncoding: TextEncodingName | undefined,
  sink: Sink,
): void {
  if (hasForeignBom(head)) {
    doc.error("malformed", "encoding", "UTF-16/UTF-32 bodies are not accepted (UTF-8 or GB18030)");
    return;
  }
  let encoding: TextEncodingName = hasUtf8Bom(head) ? "utf-8" : (profileEncoding ?? "utf-8");
  if (xml) {
    const declared = xmlDeclaredEncoding(head);
    if (declared !== null) {
      const e = encodingFromLabel(declared);
      if (e === null) {
        doc.error("malformed", "encoding", `unsupported XML encoding ${declared}`);
        return;
      }
      encoding = e;
    }
  }
  let bytes = 0;
  const limited: Iterable<Uint8Array> = {
    *[Symbol.iterator]() {
      for (const chunk of body) {
        bytes += chunk.length;
        if (bytes > MAX_BODY_BYTES) throw new RangeError("body larger than 64 MiB");
        yield chunk;
      }
    },
  };
  try {
    decodeChunks(limited, encoding, (text) => {
      if (text.includes("\u0000")) throw new EncodingError("binary content (NUL characters)");
      sink.write(text);
    });
    sink.close();
  } catch (e) {
    if (e instanceof EncodingError) {
      // Text before the bad bytes decoded fine, but a body in the wrong encoding is wrong as a
      // whole: no entries rather than some.
      doc.discard();
      doc.error("malformed", "encoding", e.message);
    }
    else if (e instanceof RangeError && e.message.includes("64 MiB")) doc.error("malformed", "body", e.message);
    else if (!isAbort(e) && !isMt940Abort(e) && !isJsonAbort(e)) {
      // Parsers signal every expected problem themselves; anything else is still a bad body, not a crash.
      doc.error("malformed", "body", e instanceof Error ? e.message : String(e));
    }
  }
}

function parseWith(format: NoticeFormat, body: Body, compiled: CompiledProfile | null, options: ParseOptions): ParsedDocument {
  const timezone = options.timezone ?? compiled?.timezone ?? "UTC";
  const { head, body: chunks } = peek(body, 1024);
  const doc = new DocumentBuilder(format, options.onEntry);
  const encoding = compiled?.profile.encoding;
  if (format === "camt053" || format === "camt054") {
    run(doc, chunks, head, true, encoding, camtParser(doc, timezone));
  } else if (format === "mt940") {
    run(doc, chunks, head, false, encoding, mt940Parser(doc, { timezone, reference: compiled?.reference ?? null }));
  } else if (format === "csv") {
    run(doc, chunks, head, false, encoding, csvParser(doc, compiled!));
  } else if (streamable(compiled!)) {
    run(doc, chunks, head, false, encoding, jsonStreamParser(doc, compiled!));
  } else {
    // Negative indices need whole arrays: parse the whole body (within the 64 MiB limit).
    const pieces: string[] = [];
    run(doc, chunks, head, false, encoding, {
      write: (t) => pieces.push(t),
      close: () => readJsonNotice(pieces.join(""), doc, compiled!),
    });
  }
  return doc.build();
}

/**
 * An arrival notice in the bank's format (camt054, mt940 incl. MT942, json, csv). A camt body is
 * read as camt.053 or camt.054 by its content (`format` says which it was).
 */
export function parseDocument(body: Body, profile: BankProfile, options: ParseOptions = {}): ParsedDocument {
  const checked = validateProfile(profile);
  if ("error" in checked) {
    return {
      format: profile?.format ?? "json",
      messageType: null,
      statements: [],
      errors: [{ code: "malformed", field: `profile.${checked.field}`, value: checked.error }],
    };
  }
  return parseWith(profile.format, body, compileProfile(profile), options);
}

/** A daily statement, camt.053 (or camt.052/054) or MT940, recognised by content. */
export function parseStatement(body: Body, options: ParseOptions & { mt940_reference?: string } = {}): ParsedDocument {
  const { head, body: chunks } = peek(body, 1024);
  const first = firstSignificantByte(head);
  const xml = first === 0x3c; // "<"
  let compiled: CompiledProfile | null = null;
  if (!xml && options.mt940_reference !== undefined) {
    compiled = compileProfile({ format: "mt940", mt940_reference: options.mt940_reference });
  }
  return parseWith(xml ? "camt053" : "mt940", chunks, compiled, options);
}
