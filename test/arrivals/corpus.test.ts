// Walks every file of the bank-statement corpus and checks the parsers' figures against
// expected.json (its conventions: SOURCES.md). Amounts are compared as bigint minor units.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { corpusDir } from "../support/corpus.ts";
import { test } from "node:test";
import { decimalToMinor, parseStatement, type ParsedEntry, type ParsedStatement } from "../../src/arrivals/parsers/index.ts";

const DIR = pathToFileURL(join(corpusDir(), "bank-statements") + "/");

interface PerStatement {
  account: string;
  opening_balance: string | null;
  closing_balance: string | null;
  opening_tag?: string | null;
  closing_tag?: string | null;
  entries: number;
  sum_credits: string;
  sum_debits: string;
  reconciles: boolean | null;
}
interface Expected {
  file: string;
  format: "mt940" | "camt053" | "camt054";
  message_type: string;
  currency: string;
  account: string;
  accounts?: string[];
  statements: number;
  entries: number;
  entries_by_status: Record<string, number>;
  opening_balance: string | null;
  closing_balance: string | null;
  sum_credits: string;
  sum_debits: string;
  first_booking_date: string | null;
  last_booking_date: string | null;
  reconciles: boolean | null;
  chain_breaks: number;
  per_statement?: PerStatement[];
}

const expected = JSON.parse(readFileSync(new URL("expected.json", DIR), "utf8")) as Expected[];

function minor(text: string, currency: string): bigint {
  const r = decimalToMinor(text, currency);
  assert.ok(r.ok, `${text} ${currency}`);
  return r.value;
}

/** Corpus convention: an entry counts by its own direction (RC = debit, RD = credit, RvslInd keeps CdtDbtInd). */
function sums(entries: readonly ParsedEntry[]): { credits: bigint; debits: bigint } {
  let credits = 0n;
  let debits = 0n;
  for (const e of entries) {
    assert.notEqual(e.amount, null, `entry ${e.position} has an amount`);
    if (e.direction === "credit") credits += e.amount!;
    else if (e.direction === "debit") debits += e.amount!;
    else assert.fail(`entry ${e.position} has no direction`);
  }
  return { credits, debits };
}

function reconciles(s: ParsedStatement): boolean | null {
  if (s.opening === null || s.closing === null) return null;
  if (s.opening.currency !== s.closing.currency) return false;
  const { credits, debits } = sums(s.entries);
  return s.opening.amount + credits - debits === s.closing.amount;
}

test("the corpus lists files", () => assert.ok(expected.length >= 19));

for (const e of expected) {
  test(`corpus: ${e.file}`, () => {
    const doc = parseStatement(readFileSync(new URL(e.file, DIR)));
    assert.deepEqual(doc.errors, []);
    assert.equal(doc.messageType, e.message_type);
    assert.equal(doc.format, e.format);
    const statements = doc.statements;
    assert.equal(statements.length, e.statements, "statements");
    const entries = statements.flatMap((s) => s.entries);
    assert.equal(entries.length, e.entries, "entries");
    entries.forEach((entry, i) => assert.equal(entry.position, i));

    const byStatus: Record<string, number> = {};
    for (const entry of entries) {
      const key = e.format === "mt940" ? "BOOK" : (entry.statusCode ?? "absent");
      byStatus[key] = (byStatus[key] ?? 0) + 1;
    }
    assert.deepEqual(byStatus, e.entries_by_status, "entries_by_status");

    const first = statements[0]!;
    assert.equal(first.account, e.account, "account");
    assert.equal(first.currency, e.currency, "currency");
    if (e.accounts !== undefined) assert.deepEqual([...new Set(statements.map((s) => s.account))], e.accounts);
    for (const entry of entries) assert.equal(entry.account, statements.find((s) => s.entries.includes(entry))!.account);

    const total = sums(entries);
    assert.equal(total.credits, minor(e.sum_credits, e.currency), "sum_credits");
    assert.equal(total.debits, minor(e.sum_debits, e.currency), "sum_debits");

    const own = statements.filter((s) => s.account === e.account);
    const opening = own.find((s) => s.opening !== null)?.opening ?? null;
    const closing = own.filter((s) => s.closing !== null).at(-1)?.closing ?? null;
    assert.equal(opening === null ? null : opening.amount, e.opening_balance === null ? null : minor(e.opening_balance, opening!.currency), "opening");
    assert.equal(closing === null ? null : closing.amount, e.closing_balance === null ? null : minor(e.closing_balance, closing!.currency), "closing");

    const dates = entries.map((x) => x.bookingDate).filter((d): d is string => d !== null).sort();
    assert.equal(dates[0] ?? null, e.first_booking_date, "first booking date");
    assert.equal(dates.at(-1) ?? null, e.last_booking_date, "last booking date");

    const results = statements.map(reconciles);
    const overall = results.every((r) => r === null) ? null : results.every((r) => r !== false);
    assert.equal(overall, e.reconciles, "reconciles");
    let breaks = 0;
    for (let i = 1; i < statements.length; i += 1) {
      const prev = statements.slice(0, i).filter((s) => s.account === statements[i]!.account).at(-1);
      const cur = statements[i]!;
      if (prev?.closing != null && cur.opening !== null && prev.closing.amount !== cur.opening.amount) breaks += 1;
    }
    assert.equal(breaks, e.chain_breaks, "chain breaks");

    if (e.per_statement !== undefined) {
      assert.equal(statements.length, e.per_statement.length);
      e.per_statement.forEach((p, i) => {
        const s = statements[i]!;
        const ccy = s.currency ?? e.currency;
        assert.equal(s.account, p.account, `#${i} account`);
        assert.equal(s.entries.length, p.entries, `#${i} entries`);
        const st = sums(s.entries);
        assert.equal(st.credits, minor(p.sum_credits, ccy), `#${i} credits`);
        assert.equal(st.debits, minor(p.sum_debits, ccy), `#${i} debits`);
        assert.equal(s.opening?.amount ?? null, p.opening_balance === null ? null : minor(p.opening_balance, s.opening!.currency), `#${i} opening`);
        assert.equal(s.closing?.amount ?? null, p.closing_balance === null ? null : minor(p.closing_balance, s.closing!.currency), `#${i} closing`);
        if (p.opening_tag !== undefined) assert.equal(s.opening?.tag ?? null, p.opening_tag, `#${i} opening tag`);
        if (p.closing_tag !== undefined) assert.equal(s.closing?.tag ?? null, p.closing_tag, `#${i} closing tag`);
        assert.equal(reconciles(s), p.reconciles, `#${i} reconciles`);
      });
    }
  });
}

test("corpus: a camt.054 notification and the camt.053 statement hold the same four entries", () => {
  const notice = parseStatement(readFileSync(new URL("camt054/postfinance-v04-reversals-batches.xml", DIR)));
  const statement = parseStatement(readFileSync(new URL("camt053/postfinance-v04-reversals-batches.xml", DIR)));
  assert.equal(notice.format, "camt054");
  const key = (x: ParsedEntry) => `${x.account} ${x.amount} ${x.direction} ${x.reversal} ${x.bookingDate}`;
  const last4 = statement.statements[0]!.entries.slice(-4).map(key);
  assert.deepEqual(notice.statements[0]!.entries.map(key), last4);
  assert.equal(notice.statements[0]!.entries.filter((x) => x.reversal).length, 2);
});
