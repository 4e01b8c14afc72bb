// The column-wise encoding of rows handed to the SQLite writer thread gives back exactly the
// values of sqliteTransferValues, nulls and any text included; and a SQLite row (its columns and
// its packed body) reads back as the transfer it was made of.
import { test } from "node:test";
import assert from "node:assert/strict";
import { afterFields, type Account, type Transfer } from "../../src/ledger/model.ts";
import { SQLITE_TRANSFER_COLUMNS, sqliteTransferValues, transferBody, transferFromRow, type CompactTransferRow } from "../../src/ledger/rows.ts";
import { TEXT_CHUNK_ROWS, TransferRowReader, encodeBalances, encodeRows, encodeTransfers, forEachBalanceId, readBalance, type BalanceColumns } from "../../src/ledger/sqlite-rows-codec.ts";

/** Calls `row` with each balance row as the writer binds it: the six values, then the id. */
function decodeBalances(c: BalanceColumns, row: (values: unknown[]) => void): void {
  const values: unknown[] = new Array(7);
  forEachBalanceId(c, (id, r) => {
    readBalance(c, r, id, values);
    row(values);
  });
}

const balances = (n: bigint) => ({ debitsPending: n, debitsPosted: n + 1n, creditsPending: n + 2n, creditsPosted: 2n ** 62n + n });

function transfer(i: number, withNulls: boolean): Transfer {
  return {
    ts: 1_700_000_000_000_000n + BigInt(i),
    id: `t-${i}`,
    merchantId: withNulls ? null : "mer_ü",
    debitAccountId: `d-${i}`,
    creditAccountId: "c-long-account-id-with-emoji-😀",
    amount: 9_007_199_254_740_991n,
    currency: "CNY",
    code: 2147483647,
    flags: 5,
    pendingId: withNulls ? null : "hold\u0000with-nul",
    timeoutSeconds: 31_622_400,
    expiresAt: withNulls ? null : 1_800_000_000_000_000n,
    status: "pending",
    resolvedAt: withNulls ? null : -1n,
    reference: withNulls ? null : "",
    metadata: withNulls ? null : '{"a":"\\u0000","b":[1,2]}',
    ...afterFields(balances(BigInt(i)), balances(-BigInt(i))),
    debitPrevTs: withNulls ? null : 7n,
    creditPrevTs: withNulls ? null : 0n,
  };
}

test("transfer rows decode to sqliteTransferValues, in order, several rows into one array", () => {
  const transfers = Array.from({ length: 7 }, (_, i) => transfer(i, i % 2 === 0));
  const reader = new TransferRowReader(encodeTransfers(transfers));
  const width = SQLITE_TRANSFER_COLUMNS.length;
  const out: unknown[] = new Array(transfers.length * width);
  transfers.forEach((_, r) => reader.read(r, out, r * width));
  transfers.forEach((t, r) => assert.deepEqual(out.slice(r * width, (r + 1) * width), sqliteTransferValues(t)));
  assert.throws(() => reader.read(0, out, 0), /in order/);
});

test("batches of many text chunks decode row by row, at and around the chunk boundaries", () => {
  const width = SQLITE_TRANSFER_COLUMNS.length;
  for (const n of [TEXT_CHUNK_ROWS - 1, TEXT_CHUNK_ROWS, TEXT_CHUNK_ROWS + 1, 2 * TEXT_CHUNK_ROWS, 3 * TEXT_CHUNK_ROWS + 17, 8190]) {
    // Text of uneven lengths, so that a row read from the wrong chunk or offset shows.
    const transfers = Array.from({ length: n }, (_, i) => ({ ...transfer(i, i % 3 === 0), id: `t-${i}-${"x".repeat(i % 11)}` }));
    const columns = encodeTransfers(transfers);
    assert.equal(columns.text.length, Math.ceil(n / TEXT_CHUNK_ROWS), `${n} rows: one string per ${TEXT_CHUNK_ROWS} rows`);
    const reader = new TransferRowReader(columns);
    const out: unknown[] = new Array(width);
    transfers.forEach((t, r) => {
      reader.read(r, out, 0);
      assert.deepEqual(out, sqliteTransferValues(t), `${n} rows: row ${r}`);
    });
  }
});

test("an empty batch encodes", () => {
  assert.equal(encodeTransfers([]).count, 0);
  const seen: unknown[][] = [];
  decodeBalances(encodeBalances([]), (v) => seen.push([...v]));
  assert.deepEqual(seen, []);
});

test("balance rows decode with their id last and a null last_ts", () => {
  const account = (id: string, lastTs: bigint | null): Account => ({
    id, merchantId: null, currency: "CNY", code: 0, normalBalance: "credit",
    flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null,
    createdAt: 1n, ...balances(3n), lastTs, transferCount: 12, touchedBy: 0,
  });
  const accounts = [account("a", 5n), account("ünïcode-😀", null), account("", 2n ** 63n - 1n)];
  const seen: unknown[][] = [];
  decodeBalances(encodeBalances(accounts), (v) => seen.push([...v]));
  assert.deepEqual(
    seen,
    accounts.map((a) => [a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted, a.lastTs, BigInt(a.transferCount), a.id]),
  );
});

test("rows encoded into one buffer read back as rows encoded alone", () => {
  const transfers = Array.from({ length: 5 }, (_, i) => transfer(i, i % 3 === 0));
  const accounts: Account[] = [0, 1, 2].map((i) => ({
    id: `acc-${i}`, merchantId: null, currency: "CNY", code: 0, normalBalance: "credit",
    flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null,
    createdAt: 1n, ...balances(BigInt(i)), lastTs: i === 1 ? null : BigInt(i), transferCount: 1, touchedBy: 0,
  }));
  const both = structuredClone(encodeRows(transfers, accounts));
  const width = SQLITE_TRANSFER_COLUMNS.length;
  const reader = new TransferRowReader(both.transfers);
  transfers.forEach((t, r) => {
    const out: unknown[] = new Array(width);
    reader.read(r, out, 0);
    assert.deepEqual(out, sqliteTransferValues(t));
  });
  const seen: unknown[][] = [];
  decodeBalances(both.balances, (v) => seen.push([...v]));
  const alone: unknown[][] = [];
  decodeBalances(encodeBalances(accounts), (v) => alone.push([...v]));
  assert.deepEqual(seen, alone);
});

function compactRow(t: Transfer): CompactTransferRow {
  const v = sqliteTransferValues(t);
  const row = Object.fromEntries(SQLITE_TRANSFER_COLUMNS.map((c, i) => [c, v[i]]));
  return row as unknown as CompactTransferRow;
}

test("a SQLite row reads back as the transfer it was made of: nulls, any text, 64-bit extremes", () => {
  for (const withNulls of [true, false]) {
    const t = transfer(3, withNulls);
    assert.deepEqual(transferFromRow(compactRow(t)), t);
  }
  const extreme: Transfer = {
    ...transfer(9, false),
    currency: "XXXXXXXX",
    code: -2147483648,
    metadata: "x".repeat(70_000) + "中文😀",
    reference: "\u0000",
    drDebitsPending: 2n ** 63n - 1n,
    drDebitsPosted: -(2n ** 63n),
    drCreditsPending: 0n,
    drCreditsPosted: 1n,
  };
  assert.deepEqual(transferFromRow(compactRow(extreme)), extreme);
});

test("a row body of an unknown format or cut short is refused, not misread", () => {
  const t = transfer(1, true);
  const body = transferBody(t);
  const future = Buffer.from(body);
  future[0] = 2;
  assert.throws(() => transferFromRow({ ...compactRow(t), body: future }), /unknown row body format/);
  assert.throws(() => transferFromRow({ ...compactRow(t), body: body.subarray(0, 40) }), /unknown row body format/);
  const truncatedText = transferBody(transfer(1, false));
  assert.throws(() => transferFromRow({ ...compactRow(transfer(1, false)), body: truncatedText.subarray(0, truncatedText.length - 3) }), /cut short/);
});

test("currencies of any text round-trip, ASCII or not, in a batch's buffer and alone", () => {
  const currencies = ["", "CNY", "\u007f", "\u0080", "€", "ÄÖÜ", "中文😀", "A€B", "X".repeat(255)];
  const transfers = currencies.map((currency, i) => ({ ...transfer(i, i % 2 === 1), currency }));
  for (const t of transfers) assert.deepEqual(transferFromRow(compactRow(t)), t, JSON.stringify(t.currency));
  const reader = new TransferRowReader(encodeTransfers(transfers));
  const width = SQLITE_TRANSFER_COLUMNS.length;
  const out: unknown[] = new Array(width);
  transfers.forEach((t, r) => {
    reader.read(r, out, 0);
    assert.deepEqual(out, sqliteTransferValues(t), JSON.stringify(t.currency));
    const row = Object.fromEntries(SQLITE_TRANSFER_COLUMNS.map((c, i) => [c, out[i]])) as unknown as CompactTransferRow;
    assert.equal(transferFromRow(row).currency, t.currency);
  });
  assert.throws(() => transferBody({ ...transfers[0]!, currency: "€".repeat(100) }), /at most 255 bytes/);
});
