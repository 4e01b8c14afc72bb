// JSON and CSV notices, read through the bank's profile: every record becomes one entry, and a
// record that cannot be applied is quarantined with the field and value at fault.

import type { DocumentBuilder, EntryDraft } from "./builder.ts";
import { firstReason, intern } from "./builder.ts";
import { parseWithFormats } from "./dates.ts";
import { decimalToMinor, exponentOf } from "./decimal.ts";
import { isObject, JsonError, parseJson, readField, selectNodes, type JsonValue } from "./jsonpath.ts";
import type { CompiledProfile } from "./profile.ts";
import type { EntryDirection, QuarantineReason } from "./types.ts";

/** One record's fields by profile field name; undefined = not configured, null = absent. */
type Getter = (field: string) => string | null | undefined;

const MAX_TEXT = 4096;

export function recordToEntry(get: Getter, p: CompiledProfile): EntryDraft {
  const text = (field: string): string | null => {
    const v = get(field);
    if (v === undefined || v === null) return null;
    return v.length > MAX_TEXT ? v.slice(0, MAX_TEXT) : v;
  };
  const reasons: (QuarantineReason | null)[] = [];

  const account = text("account");
  if (get("account") !== undefined && (account === null || account === "")) reasons.push({ code: "missing_field", field: "account" });

  const currency = get("currency") === undefined ? (p.profile.currency ?? null) : text("currency");
  let amount: bigint | null = null;
  let direction: EntryDirection | null = null;
  const amountText = text("amount");
  let signedNegative = false;
  if (amountText === null || amountText === "") reasons.push({ code: "missing_field", field: "amount" });
  else if (currency === null || currency === "") reasons.push({ code: "missing_field", field: "currency" });
  else if (exponentOf(currency) === null) reasons.push({ code: "unknown_currency", field: "currency", value: currency });
  else {
    let value: bigint | null = null;
    if (p.profile.amount_unit === "minor") {
      if (/^-?[0-9]{1,30}$/.test(amountText)) value = BigInt(amountText);
      else reasons.push({ code: "invalid_amount", field: "amount", value: amountText });
    } else {
      const r = decimalToMinor(amountText, currency);
      if (r.ok) value = r.value;
      else reasons.push({ code: r.code, field: "amount", value: amountText });
    }
    if (value !== null) {
      signedNegative = value < 0n;
      amount = signedNegative ? -value : value;
    }
  }

  const flag = get("direction");
  if (flag === undefined) {
    // Without a direction field the amount's sign says it: negative is a debit.
    direction = amount === null ? null : signedNegative ? "debit" : "credit";
  } else {
    const credit = p.profile.fields?.["credit_value"];
    const debit = p.profile.fields?.["debit_value"];
    if (flag === null) reasons.push({ code: "missing_field", field: "direction" });
    else if (flag === credit) direction = "credit";
    else if (debit === undefined || flag === debit) direction = "debit";
    else reasons.push({ code: "malformed", field: "direction", value: flag });
    if (signedNegative) reasons.push({ code: "invalid_amount", field: "amount", value: amountText ?? "" });
  }

  let bookedAtUs: bigint | null = null;
  let bookingDate: string | null = null;
  const dateText = get("booked_at");
  if (dateText === null || dateText === undefined) reasons.push({ code: "missing_field", field: "booked_at" });
  else {
    const parsed = parseWithFormats(dateText, p.dateFormats, p.timezone);
    if (parsed === null) reasons.push({ code: "unparseable_date", field: "booked_at", value: dateText.slice(0, 200) });
    else {
      bookedAtUs = parsed.us;
      bookingDate = intern(parsed.date);
    }
  }

  const bankReference = text("bank_reference") || null;
  if (bankReference === null) reasons.push({ code: "missing_bank_reference", field: "bank_reference" });

  return {
    account: account || null,
    amount,
    currency: intern(currency || null),
    direction,
    status: "booked",
    reversal: false,
    bankReference,
    payerName: text("payer_name") || null,
    payerAccount: text("payer_account") || null,
    remittance: text("remittance") || null,
    bookedAtUs,
    bookingDate,
    quarantine: firstReason(...reasons),
  };
}

/** A JSON notice: the profile's `entries` path must select exactly one array. */
export function readJsonNotice(text: string, doc: DocumentBuilder, p: CompiledProfile): void {
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) {
      doc.error("malformed", "body", `not valid JSON: ${e.message}`);
      return;
    }
    throw e;
  }
  const nodes = selectNodes(root, p.entries!);
  if (nodes.length !== 1 || !Array.isArray(nodes[0])) {
    doc.error("missing_field", "entries", `${p.profile.fields?.["entries"]} selects ${nodes.length === 1 ? "a non-array" : `${nodes.length} nodes`}, not one array`);
    return;
  }
  const statement = doc.startStatement();
  for (const item of nodes[0]) {
    const get: Getter = (field) => {
      const path = p.paths.get(field);
      if (path === undefined) return undefined;
      return readField(item, root, path);
    };
    const entry = recordToEntry(get, p);
    doc.addEntry(
      isObject(item) ? entry : { ...entry, quarantine: { code: "malformed", field: "entries", value: "an entry is not an object" } },
      statement,
    );
  }
  statement.account = statement.entries[0]?.account ?? null;
  statement.currency = statement.entries[0]?.currency ?? null;
}

const MAX_CSV_FIELD = 64 * 1024;
const MAX_CSV_COLUMNS = 1000;

/**
 * RFC 4180 CSV fed in text pieces: quoted fields with "" escapes, separators and line breaks
 * inside quotes, CRLF or LF. The first row is the header; each later non-empty row is an entry.
 */
export function csvParser(doc: DocumentBuilder, p: CompiledProfile) {
  const delimiter = p.profile.csv_delimiter ?? ",";
  let header: string[] | null = null;
  let columns = new Map<string, number>();
  let row: string[] = [];
  let field = "";
  let quoted = false; // inside quotes
  let wasQuoted = false;
  let afterQuote = false; // just read a closing quote (or the first of a "" pair)
  let pendingCR = false;
  let failed = false;
  const statement = doc.startStatement();

  const fail = (message: string): void => {
    if (!failed) doc.error("malformed", "body", message);
    failed = true;
  };

  const endField = (): void => {
    if (row.length >= MAX_CSV_COLUMNS) return fail(`more than ${MAX_CSV_COLUMNS} columns`);
    row.push(field);
    field = "";
    wasQuoted = false;
    afterQuote = false;
  };
  const endRow = (): void => {
    endField();
    const r = row;
    row = [];
    if (r.length === 1 && r[0] === "") return; // blank line
    if (header === null) {
      header = r;
      if (header[0]?.startsWith("\ufeff")) header[0] = header[0].slice(1);
      columns = new Map();
      header.forEach((name, i) => {
        if (!columns.has(name)) columns.set(name, i);
      });
      return;
    }
    const fields = p.profile.fields ?? {};
    const get: Getter = (name) => {
      if (name === "credit_value" || name === "debit_value") return undefined;
      const column = fields[name];
      if (column === undefined) return undefined;
      const index = columns.get(column);
      if (index === undefined) return null;
      return r[index] ?? null;
    };
    const entry = recordToEntry(get, p);
    const malformed: QuarantineReason | null =
      r.length !== header.length ? { code: "malformed", field: "row", value: `${r.length} columns, header has ${header.length}` } : null;
    doc.addEntry(malformed === null ? entry : { ...entry, quarantine: malformed }, statement);
    statement.account ??= entry.account;
    statement.currency ??= entry.currency;
  };

  return {
    write(text: string) {
      for (let i = 0; i < text.length && !failed; i += 1) {
        const c = text[i]!;
        if (pendingCR) {
          pendingCR = false;
          if (c === "\n") continue;
        }
        if (quoted) {
          if (c === '"') {
            quoted = false;
            afterQuote = true;
          } else {
            field += c;
            if (field.length > MAX_CSV_FIELD) fail("a CSV field longer than 64 KiB");
          }
          continue;
        }
        if (c === '"') {
          if (afterQuote) {
            // "" inside a quoted field: a literal quote, and still quoted.
            field += '"';
            quoted = true;
            afterQuote = false;
          } else if (field === "" && !wasQuoted) {
            quoted = true;
            wasQuoted = true;
          } else {
            fail("a quote inside an unquoted CSV field");
          }
          continue;
        }
        if (c === delimiter) {
          endField();
          continue;
        }
        if (c === "\r" || c === "\n") {
          endRow();
          pendingCR = c === "\r";
          continue;
        }
        if (afterQuote) {
          fail("text after a closing quote in a CSV field");
          continue;
        }
        field += c;
        if (field.length > MAX_CSV_FIELD) fail("a CSV field longer than 64 KiB");
      }
    },
    close() {
      if (failed) return;
      if (quoted) return fail("the CSV ends inside a quoted field (truncated?)");
      if (field !== "" || row.length > 0) endRow();
      if (header === null) fail("the CSV has no header row");
    },
  };
}
