// ISO 20022 camt.053 (statement), camt.054 (debit/credit notification) and camt.052 (account
// report), versions 02 to 10+, read as a stream of XML events (saxes): no DOM, so memory is
// bounded by the largest entry, not the file. A DOCTYPE is refused outright (no external entities,
// no entity expansion), and so are deep nesting and overlong tokens.

import { SaxesParser } from "saxes";
import type { DocumentBuilder, EntryDraft, StatementDraft } from "./builder.ts";
import { firstReason, intern } from "./builder.ts";
import { decimalToMinor } from "./decimal.ts";
import { parseIsoDateTime } from "./dates.ts";
import type { EntryStatus, ParsedBalance, QuarantineReason } from "./types.ts";

const MAX_DEPTH = 64;
/** Bytes fed without a single XML event: one token (text, tag, attribute) longer than this is refused. */
const MAX_TOKEN_CHARS = 1024 * 1024;
/** Longest text kept for one element (references, names, remittance are far shorter). */
const MAX_FIELD_CHARS = 4096;

const CONTAINERS: Record<string, { item: string; format: "camt053" | "camt054" }> = {
  BkToCstmrStmt: { item: "Stmt", format: "camt053" },
  BkToCstmrAcctRpt: { item: "Rpt", format: "camt053" },
  BkToCstmrDbtCdtNtfctn: { item: "Ntfctn", format: "camt054" },
};

const STATEMENT_FIELDS = new Set(["Acct/Id/IBAN", "Acct/Id/Othr/Id", "Acct/Ccy", "FrToDt/FrDtTm", "FrToDt/ToDtTm"]);
const BALANCE_FIELDS = new Set(["Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry", "Amt", "CdtDbtInd", "Dt/Dt", "Dt/DtTm"]);
const ENTRY_FIELDS = new Set([
  "Amt",
  "CdtDbtInd",
  "RvslInd",
  "Sts",
  "Sts/Cd",
  "Sts/Prtry",
  "BookgDt/Dt",
  "BookgDt/DtTm",
  "AcctSvcrRef",
  "AddtlNtryInf",
]);
const TX_FIELDS = new Set([
  "Refs/AcctSvcrRef",
  "RltdPties/Dbtr/Nm",
  "RltdPties/Dbtr/Pty/Nm",
  "RltdPties/DbtrAcct/Id/IBAN",
  "RltdPties/DbtrAcct/Id/Othr/Id",
  "RmtInf/Ustrd",
]);

/** Every proper prefix of the wanted paths: below anything else nothing is wanted. */
function prefixesOf(sets: ReadonlySet<string>[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const set of sets) {
    for (const key of set) {
      const parts = key.split("/");
      for (let i = 1; i < parts.length; i += 1) out.add(parts.slice(0, i).join("/"));
    }
  }
  return out;
}
const PREFIXES = prefixesOf([STATEMENT_FIELDS, BALANCE_FIELDS, ENTRY_FIELDS, TX_FIELDS]);

class Abort extends Error {}

type Scope = "none" | "statement" | "balance" | "entry" | "tx";

interface Fields {
  values: Map<string, string>;
  overflow: string | null;
}

function newFields(): Fields {
  return { values: new Map(), overflow: null };
}

function localName(name: string): string {
  const i = name.indexOf(":");
  return i < 0 ? name : name.slice(i + 1);
}

export interface CamtParser {
  write(text: string): void;
  close(): void;
}

/** Text fed in pieces; events build the document through `doc`. */
export function camtParser(doc: DocumentBuilder, timezone: string): CamtParser {
  const parser = new SaxesParser({ xmlns: false, position: false });
  const stack: string[] = [];
  /** For each open element: its path relative to the scope it is in, or null when nothing below it is wanted. */
  const keys: (string | null)[] = [];
  let sinceEvent = 0;
  let statement: StatementDraft | null = null;
  let scope: Scope = "none";
  let scopeDepth = 0; // stack length at which the scope's element was opened
  let statementDepth = 0;
  let entryDepth = 0;
  let statementFields = newFields();
  let balanceFields = newFields();
  let entryFields = newFields();
  let txFields = newFields();
  let txList: Fields[] = [];
  let txCount = 0;
  let ustrd: string[] = [];
  let capture: { key: string; into: Fields; text: string } | null = null;
  let itemName: string | null = null;

  const fail = (field: string, message: string): never => {
    doc.error("malformed", field, message);
    throw new Abort(message);
  };


  parser.on("error", (e) => fail("body", `not well-formed XML: ${e.message}`));
  parser.on("doctype", () => fail("body", "XML with a DOCTYPE is refused (entities are never expanded)"));
  parser.on("xmldecl", () => {
    sinceEvent = 0;
  });
  parser.on("text", (text) => {
    sinceEvent = 0;
    if (capture === null) return;
    if (capture.text.length + text.length > MAX_FIELD_CHARS) {
      capture.into.overflow ??= capture.key;
      return;
    }
    capture.text += text;
  });
  parser.on("cdata", (text) => {
    sinceEvent = 0;
    if (capture !== null && capture.text.length + text.length <= MAX_FIELD_CHARS) capture.text += text;
  });

  parser.on("opentag", (tag) => {
    sinceEvent = 0;
    const name = localName(tag.name);
    stack.push(name);
    keys.push(null);
    const depth = stack.length;
    if (depth > MAX_DEPTH) fail("body", `XML nested deeper than ${MAX_DEPTH} elements`);
    if (depth === 1) {
      if (name !== "Document") fail("body", `not an ISO 20022 document (root element ${name})`);
      for (const [k, value] of Object.entries(tag.attributes)) {
        const m = k === "xmlns" || k.startsWith("xmlns:") ? /camt\.[0-9]{3}\.[0-9]{3}\.[0-9]{2}/.exec(String(value)) : null;
        if (m !== null) doc.messageType = m[0];
      }
      return;
    }
    if (depth === 2) {
      const container = CONTAINERS[name];
      if (container === undefined) fail("body", `not a camt.052/053/054 message (${name})`);
      itemName = container!.item;
      doc.format = container!.format;
      return;
    }
    if (depth === 3) {
      if (name === itemName) {
        statement = doc.startStatement();
        scope = "statement";
        statementDepth = depth;
        statementFields = newFields();
      }
      return;
    }
    if (statement === null) return;
    if (scope === "statement" && depth === statementDepth + 1) {
      if (name === "Bal") {
        scope = "balance";
        scopeDepth = depth;
        balanceFields = newFields();
        return;
      }
      if (name === "Ntry") {
        scope = "entry";
        scopeDepth = depth;
        entryDepth = depth;
        entryFields = newFields();
        txList = [];
        txCount = 0;
        ustrd = [];
        return;
      }
    }
    if (scope === "entry" && depth === entryDepth + 2 && name === "TxDtls" && stack[depth - 2] === "NtryDtls") {
      scope = "tx";
      scopeDepth = depth;
      txFields = newFields();
      txCount += 1;
      return;
    }
    let fields: ReadonlySet<string>;
    let into: Fields;
    let base: number;
    if (scope === "entry") {
      fields = ENTRY_FIELDS;
      into = entryFields;
      base = entryDepth;
    } else if (scope === "tx") {
      fields = TX_FIELDS;
      into = txFields;
      base = scopeDepth;
    } else if (scope === "balance") {
      fields = BALANCE_FIELDS;
      into = balanceFields;
      base = scopeDepth;
    } else if (scope === "statement") {
      fields = STATEMENT_FIELDS;
      into = statementFields;
      base = statementDepth;
    } else return;
    let key: string | null = null;
    if (depth === base + 1) key = name;
    else {
      const parent = keys[depth - 2];
      if (parent !== null && parent !== undefined && PREFIXES.has(parent)) key = `${parent}/${name}`;
    }
    keys[depth - 1] = key;
    if (key !== null && fields.has(key)) {
      capture = { key, into, text: "" };
      if (key === "Amt") {
        const ccy = tag.attributes["Ccy"];
        into.values.set("Amt@Ccy", typeof ccy === "string" ? detach(ccy) : "");
      }
    }
  });

  parser.on("closetag", () => {
    sinceEvent = 0;
    const depth = stack.length;
    const name = stack[depth - 1];
    if (capture !== null) {
      const key = capture.key;
      // A copy, so a kept value never pins the whole decoded piece it was sliced from.
      const text = detach(capture.text.trim());
      if (key === "RmtInf/Ustrd" && scope === "tx") ustrd.push(text);
      else if (!capture.into.values.has(key)) capture.into.values.set(key, text);
      capture = null;
      if (scope === "statement" && statement !== null && key.startsWith("Acct/")) {
        const v = statementFields.values;
        statement.account = v.get("Acct/Id/IBAN") || v.get("Acct/Id/Othr/Id") || null;
        statement.currency = v.get("Acct/Ccy") || null;
      }
    }
    if (statement !== null) {
      if (scope === "balance" && depth === scopeDepth) {
        readBalance(statement, balanceFields, doc);
        // Currency: Acct/Ccy, else the opening balance's, else the first entry's.
        statement.currency ??= statement.opening?.currency ?? null;
        scope = "statement";
      } else if (scope === "tx" && depth === scopeDepth) {
        if (ustrd.length > 0) txFields.values.set("RmtInf/Ustrd", ustrd.join(" "));
        ustrd = [];
        if (txList.length < 2) txList.push(txFields);
        scope = "entry";
      } else if (scope === "entry" && depth === entryDepth) {
        const draft = readEntry(statement, entryFields, txCount === 1 ? txList[0]! : null, txList, timezone);
        statement.currency ??= draft.currency;
        doc.addEntry(draft, statement);
        scope = "statement";
      } else if (scope === "statement" && depth === statementDepth && name === itemName) {
        finishStatement(statement, statementFields);
        statement = null;
        scope = "none";
      }
    }
    stack.pop();
    keys.pop();
  });

  return {
    write(text: string) {
      sinceEvent += text.length;
      parser.write(text);
      if (sinceEvent > MAX_TOKEN_CHARS) fail("body", "an XML token longer than 1 MiB");
    },
    close() {
      parser.close();
      if (statement !== null) finishStatement(statement, statementFields);
      if (doc.statements.length === 0 && doc.errors.length === 0) fail("body", "no statement or notification in the document");
    },
  };
}

/** A string that shares no storage with the (large) string it was cut from. */
function detach(s: string): string {
  return s.length < 13 ? s : (s + " ").slice(0, -1);
}

export function isAbort(error: unknown): boolean {
  return error instanceof Abort;
}

function finishStatement(statement: StatementDraft, f: Fields): void {
  const v = f.values;
  statement.account = v.get("Acct/Id/IBAN") || v.get("Acct/Id/Othr/Id") || statement.account;
  statement.fromDate = v.get("FrToDt/FrDtTm")?.slice(0, 10) || null;
  statement.toDate = v.get("FrToDt/ToDtTm")?.slice(0, 10) || null;
}

function readBalance(statement: StatementDraft, f: Fields, doc: DocumentBuilder): void {
  const v = f.values;
  const code = v.get("Tp/CdOrPrtry/Cd") ?? v.get("Tp/CdOrPrtry/Prtry") ?? "";
  const isOpening = code === "OPBD" || code === "PRCD";
  const isClosing = code === "CLBD";
  if (!isOpening && !isClosing) return;
  const currency = v.get("Amt@Ccy") ?? "";
  const amount = decimalToMinor(v.get("Amt") ?? "", currency);
  if (!amount.ok) {
    doc.error(amount.code, `Bal(${code})/Amt`, v.get("Amt") ?? "");
    return;
  }
  const ind = v.get("CdtDbtInd");
  // A balance without CdtDbtInd is a credit balance (seen in real exports).
  const signed = ind === "DBIT" ? -amount.value : amount.value;
  const dateText = v.get("Dt/Dt") ?? v.get("Dt/DtTm") ?? null;
  const date = dateText !== null && /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(dateText) ? dateText.slice(0, 10) : null;
  const balance: ParsedBalance = { amount: signed, currency, date, tag: code };
  if (isOpening) {
    // The first opening wins; PRCD only stands in for a missing OPBD.
    if (statement.opening === null || (statement.opening.tag === "PRCD" && code === "OPBD")) statement.opening = balance;
  } else {
    statement.closing = balance;
  }
}

function statusOf(text: string | undefined): { status: EntryStatus; reason: QuarantineReason | null } {
  if (text === undefined || text === "") return { status: "booked", reason: null };
  if (text === "BOOK") return { status: "booked", reason: null };
  if (text === "PDNG" || text === "FUTR") return { status: "pending", reason: null };
  if (text === "INFO") return { status: "info", reason: null };
  return { status: "info", reason: { code: "malformed", field: "Sts", value: text } };
}

function readEntry(
  statement: StatementDraft,
  f: Fields,
  tx: Fields | null,
  txList: Fields[],
  timezone: string,
): EntryDraft {
  const v = f.values;
  const currency = intern(v.get("Amt@Ccy") || null);
  const amountText = v.get("Amt");
  let amount: bigint | null = null;
  let amountReason: QuarantineReason | null = null;
  if (amountText === undefined || amountText === "") amountReason = { code: "missing_field", field: "Amt" };
  else if (currency === null) amountReason = { code: "missing_field", field: "Amt/@Ccy" };
  else {
    const r = decimalToMinor(amountText, currency);
    if (!r.ok) amountReason = { code: r.code, field: r.code === "unknown_currency" ? "Amt/@Ccy" : "Amt", value: r.code === "unknown_currency" ? currency : amountText };
    else if (r.value < 0n) amountReason = { code: "invalid_amount", field: "Amt", value: amountText };
    else amount = r.value;
  }
  const ind = v.get("CdtDbtInd");
  const direction = ind === "CRDT" ? "credit" : ind === "DBIT" ? "debit" : null;
  const directionReason: QuarantineReason | null =
    direction !== null ? null : ind === undefined ? { code: "missing_field", field: "CdtDbtInd" } : { code: "malformed", field: "CdtDbtInd", value: ind };
  const rvsl = v.get("RvslInd");
  const reversal = rvsl === "true" || rvsl === "1";
  const statusCode = intern(v.get("Sts/Cd") || v.get("Sts/Prtry") || v.get("Sts") || null);
  const st = statusOf(statusCode ?? undefined);

  let bookedAtUs: bigint | null = null;
  let bookingDate: string | null = null;
  let dateReason: QuarantineReason | null = null;
  const dateField = v.has("BookgDt/DtTm") ? "BookgDt/DtTm" : v.has("BookgDt/Dt") ? "BookgDt/Dt" : null;
  if (dateField !== null) {
    const text = v.get(dateField)!;
    const parsed = parseIsoDateTime(text, timezone);
    if (parsed === null) dateReason = { code: "unparseable_date", field: dateField, value: text };
    else {
      bookedAtUs = parsed.us;
      bookingDate = intern(parsed.date);
    }
  }

  let bankReference = v.get("AcctSvcrRef") || null;
  if (bankReference === null && txList.length === 1) bankReference = txList[0]!.values.get("Refs/AcctSvcrRef") || null;
  const refReason: QuarantineReason | null = bankReference === null ? { code: "missing_bank_reference", field: "AcctSvcrRef" } : null;

  const t = tx?.values;
  const payerName = t?.get("RltdPties/Dbtr/Nm") || t?.get("RltdPties/Dbtr/Pty/Nm") || null;
  const payerAccount = t?.get("RltdPties/DbtrAcct/Id/IBAN") || t?.get("RltdPties/DbtrAcct/Id/Othr/Id") || null;
  const remittance = t?.get("RmtInf/Ustrd") || v.get("AddtlNtryInf") || null;
  const overflow = f.overflow ?? tx?.overflow ?? null;
  const overflowReason: QuarantineReason | null = overflow === null ? null : { code: "malformed", field: overflow, value: "longer than 4096 characters" };

  return {
    account: statement.account,
    amount,
    currency,
    direction,
    status: st.status,
    statusCode,
    reversal,
    bankReference,
    payerName,
    payerAccount,
    remittance,
    bookedAtUs,
    bookingDate,
    quarantine: firstReason(overflowReason, amountReason, directionReason, st.reason, dateReason, refReason),
  };
}
