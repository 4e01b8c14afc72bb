// SWIFT MT940 (customer statement) and MT942 (interim report), as banks really write them: SWIFT
// envelopes ({1:..}{2:..}{4: .. -}), bare files, header lines, SOH/ETX framing, CRLF or LF,
// non-SWIFT tags such as :NS:, continuation pages (60M/62M), funds codes, amounts without
// decimals. Read line by line from text pieces, so memory is bounded by one message.

import type { DocumentBuilder, EntryDraft, StatementDraft } from "./builder.ts";
import { firstReason, intern } from "./builder.ts";
import { decimalToMinor } from "./decimal.ts";
import { daysInMonth, isoDate, localToEpochMs } from "./dates.ts";
import type { EntryDirection, ParsedBalance, QuarantineReason } from "./types.ts";

const MAX_LINE = 16 * 1024;
const MAX_MESSAGE_FIELDS = 100_000;
const TAG = /^:([0-9]{2}[A-Z]?|NS):/;
const BALANCE = /^([CD])([0-9]{6})([A-Z]{3})([0-9][0-9,]*)$/;
const STATEMENT_LINE =
  /^([0-9]{6})([0-9]{4}| {4})?(RC|RD|EC|ED|C|D)([A-Z])?([0-9][0-9,]{0,16})([NFS][A-Za-z0-9 ]{3})(.*)$/;

interface Field {
  tag: string;
  lines: string[];
}

class Abort extends Error {}

export function isMt940Abort(e: unknown): boolean {
  return e instanceof Abort;
}

export interface Mt940Options {
  readonly timezone: string;
  /** The profile's mt940_reference, compiled; its first group is the bank reference. */
  readonly reference: RegExp | null;
}

export function mt940Parser(doc: DocumentBuilder, options: Mt940Options) {
  let partial = "";
  let fields: Field[] = [];
  let inMessage = false;
  let sawAnyMessage = false;

  const fail = (message: string): never => {
    doc.error("malformed", "body", message);
    throw new Abort(message);
  };

  const endMessage = (): void => {
    if (fields.length > 0) {
      sawAnyMessage = true;
      processMessage(doc, fields, options);
    }
    fields = [];
    inMessage = false;
  };

  const line = (raw: string): void => {
    // Control characters framing a message (SOH, ETX) and trailing blanks carry nothing.
    let text = raw.replace(/^[\x00-\x08\x0b\x0c\x0e-\x1f]+|[\x00-\x08\x0b\x0c\x0e-\x1f]+$/g, "");
    if (text.startsWith("{")) {
      // SWIFT envelope blocks {1:...}{2:...}{3:...}{4: on one line; the text after {4: is content.
      const body = /\{4:(.*)$/.exec(text);
      if (body === null) {
        if (text.includes("-}") || /\{5:/.test(text)) endMessage();
        return;
      }
      text = body[1] ?? "";
      if (text === "") return;
    }
    if (text === "-" || text.startsWith("-}")) {
      endMessage();
      return;
    }
    const tag = TAG.exec(text);
    if (tag !== null) {
      const name = tag[1]!;
      if (name === "20") endMessage();
      inMessage = true;
      if (fields.length >= MAX_MESSAGE_FIELDS) fail("an MT940 message with too many fields");
      fields.push({ tag: name, lines: [text.slice(tag[0].length)] });
      return;
    }
    // A continuation line of the field before it; outside a message, header noise ("940", BICs).
    if (inMessage && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      if (text.trim() === "") return;
      if (last.lines.length < 1000) last.lines.push(text);
    }
  };

  return {
    write(text: string) {
      partial += text;
      let start = 0;
      const re = /\r\n?|\n/g;
      for (let m = re.exec(partial); m !== null; m = re.exec(partial)) {
        // A lone \r at the very end may be the first half of \r\n: wait for more text.
        if (m[0] === "\r" && m.index + 1 === partial.length) break;
        line(partial.slice(start, m.index));
        start = m.index + m[0].length;
      }
      partial = partial.slice(start);
      if (partial.length > MAX_LINE) fail(`a line longer than ${MAX_LINE} characters`);
    },
    close() {
      if (partial.length > 0) line(partial.replace(/\r$/, ""));
      partial = "";
      endMessage();
      if (!sawAnyMessage) fail("no MT940/MT942 message (no :20:/:25:/:61: fields) in the document");
    },
  };
}

function yearOf(yy: number): number {
  return yy < 80 ? 2000 + yy : 1900 + yy;
}

function parseBalance(value: string, tag: string): ParsedBalance | { error: QuarantineReason } {
  const m = BALANCE.exec(value.trim());
  if (m === null) return { error: { code: "malformed", field: tag, value } };
  const currency = m[3]!;
  const amount = decimalToMinor(m[4]!, currency, { comma: true });
  if (!amount.ok) return { error: { code: amount.code, field: tag, value } };
  const d = m[2]!;
  const year = yearOf(Number(d.slice(0, 2)));
  const month = Number(d.slice(2, 4));
  const day = Number(d.slice(4, 6));
  const real = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
  return {
    amount: m[1] === "D" ? -amount.value : amount.value,
    currency,
    date: real ? isoDate(year, month, day) : null,
    tag,
  };
}

/** :86: split into its parts: GVC-structured (?20..?29 remittance, ?32/?33 name, ?31 account) or free text. */
export function parseInformation(lines: readonly string[]): { remittance: string | null; payerName: string | null; payerAccount: string | null; raw: string } {
  const raw = lines.join("\n");
  const joined = lines.join("");
  if (/^[0-9]{3}\?/.test(joined) || /\?2[0-9]/.test(joined)) {
    const parts = new Map<string, string>();
    const re = /\?([0-9]{2})([^?]*)/g;
    for (let m = re.exec(joined); m !== null; m = re.exec(joined)) {
      parts.set(m[1]!, (parts.get(m[1]!) ?? "") + m[2]!);
    }
    const pick = (codes: string[]): string | null => {
      const text = codes.map((c) => parts.get(c) ?? "").join("").trim();
      return text === "" ? null : text;
    };
    const remittanceCodes = ["20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "60", "61", "62", "63"];
    return { remittance: pick(remittanceCodes), payerName: pick(["32", "33"]), payerAccount: pick(["31"]), raw };
  }
  const text = raw.trim();
  return { remittance: text === "" ? null : text, payerName: null, payerAccount: null, raw };
}

function processMessage(doc: DocumentBuilder, fields: readonly Field[], options: Mt940Options): void {
  const statement: StatementDraft = doc.startStatement();
  const first = (tag: string): Field | undefined => fields.find((f) => f.tag === tag);
  const has = (...tags: string[]): boolean => fields.some((f) => tags.includes(f.tag));
  const isMt942 = !has("60F", "60M") && has("34F", "13D", "13");
  doc.messageType ??= isMt942 ? "MT942" : "MT940";

  statement.account = first("25")?.lines[0]?.trim() || null;
  for (const f of fields) {
    if (f.tag === "60F" || f.tag === "60M") {
      const b = parseBalance(f.lines.join(""), f.tag);
      if ("error" in b) doc.error(b.error.code, b.error.field ?? f.tag, b.error.value);
      else statement.opening ??= b;
    } else if (f.tag === "62F" || f.tag === "62M") {
      const b = parseBalance(f.lines.join(""), f.tag);
      if ("error" in b) doc.error(b.error.code, b.error.field ?? f.tag, b.error.value);
      else statement.closing = b;
    }
  }
  if (!isMt942 && has("60F", "60M") && !has("62F", "62M")) {
    doc.error("malformed", "62F", `statement ${doc.statements.length} has no closing balance (truncated?)`);
  }
  const floor = /^([A-Z]{3})/.exec(first("34F")?.lines[0] ?? "");
  const totals = /^[0-9]+([A-Z]{3})/.exec(first("90C")?.lines[0] ?? first("90D")?.lines[0] ?? "");
  statement.currency = statement.opening?.currency ?? statement.closing?.currency ?? floor?.[1] ?? totals?.[1] ?? null;

  for (let i = 0; i < fields.length; i += 1) {
    const f = fields[i]!;
    if (f.tag !== "61") continue;
    let info: Field | undefined;
    for (let j = i + 1; j < fields.length && fields[j]!.tag !== "61"; j += 1) {
      if (fields[j]!.tag === "86") {
        info = fields[j];
        break;
      }
    }
    doc.addEntry(readStatementLine(statement, f, info, options), statement);
  }
}

function readStatementLine(statement: StatementDraft, f: Field, info: Field | undefined, options: Mt940Options): EntryDraft {
  const firstLine = f.lines[0] ?? "";
  const m = STATEMENT_LINE.exec(firstLine);
  const details = info === undefined ? null : parseInformation(info.lines);
  const base: EntryDraft = {
    account: statement.account,
    amount: null,
    currency: statement.currency,
    direction: null,
    status: "booked",
    reversal: false,
    bankReference: null,
    payerName: details?.payerName ?? null,
    payerAccount: details?.payerAccount ?? null,
    remittance: details?.remittance ?? null,
    bookedAtUs: null,
    bookingDate: null,
    quarantine: null,
  };
  if (m === null) return { ...base, quarantine: { code: "malformed", field: "61", value: firstLine.slice(0, 200) } };
  const [, valueDate, entryDate, mark, , amountText, , rest] = m;
  const direction: EntryDirection = mark === "C" || mark === "RD" || mark === "EC" ? "credit" : "debit";
  const reversal = mark === "RC" || mark === "RD";

  let amount: bigint | null = null;
  let amountReason: QuarantineReason | null = null;
  if (statement.currency === null) amountReason = { code: "missing_field", field: "currency" };
  else {
    const r = decimalToMinor(amountText!, statement.currency, { comma: true });
    if (r.ok) amount = r.value;
    else amountReason = { code: r.code, field: "61", value: amountText! };
  }

  // Booking date: the entry date (MMDD, year from the value date, across a year end when the two
  // are December and January), else the value date. An impossible date is never clamped.
  const vYear = yearOf(Number(valueDate!.slice(0, 2)));
  const vMonth = Number(valueDate!.slice(2, 4));
  const vDay = Number(valueDate!.slice(4, 6));
  let year = vYear;
  let month = vMonth;
  let day = vDay;
  let dateField = "61/value_date";
  let dateText = valueDate!;
  if (entryDate !== undefined && entryDate.trim() !== "") {
    month = Number(entryDate.slice(0, 2));
    day = Number(entryDate.slice(2, 4));
    if (vMonth === 12 && month === 1) year = vYear + 1;
    else if (vMonth === 1 && month === 12) year = vYear - 1;
    dateField = "61/entry_date";
    dateText = entryDate;
  }
  let bookingDate: string | null = null;
  let bookedAtUs: bigint | null = null;
  let dateReason: QuarantineReason | null = null;
  const real = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
  const ms = real ? localToEpochMs({ year, month, day, hour: 0, minute: 0, second: 0, millisecond: 0 }, options.timezone) : null;
  if (ms === null) dateReason = { code: "unparseable_date", field: dateField, value: dateText };
  else {
    bookingDate = intern(isoDate(year, month, day));
    bookedAtUs = BigInt(ms) * 1000n;
  }

  // Reference: after "//" on the first line; else the profile's rule on :86:.
  const slash = rest!.indexOf("//");
  let bankReference: string | null = slash >= 0 ? rest!.slice(slash + 2).trim() || null : null;
  if (bankReference === null && options.reference !== null && details !== null) {
    const found = options.reference.exec(details.raw.slice(0, 4096));
    bankReference = found?.[1]?.trim() || null;
  }

  return {
    ...base,
    amount,
    direction,
    reversal,
    bankReference,
    bookedAtUs,
    bookingDate,
    quarantine: firstReason(
      amountReason,
      dateReason,
      bankReference === null ? { code: "missing_bank_reference", field: "61" } : null,
    ),
  };
}
