// Migration 0008 on SQLite: ledger_accounts (one wide row per account, as releases before it
// wrote) is split into ledger_account_rows and the narrow ledger_balances, and a view by the old
// name reads exactly what the table held, column for column. The engine goes on from it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import { ACCOUNT_COLUMNS } from "../../src/ledger/rows.ts";
import { createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
let db: Database;

const MAX = 2n ** 63n - 1n;
/** Old rows, with rowids far apart: each account's seq is its old rowid. */
const old = [
  { rowid: 5n, id: "bank", merchant_id: null, currency: "CNY", code: 0n, normal_balance: "debit", flags: 0n, owner: null, metadata: null, created_at: 1n, debits_pending: 0n, debits_posted: 300n, credits_pending: 0n, credits_posted: 0n, last_ts: 77n, transfer_count: 3n },
  { rowid: 17n, id: "店铺-😀-\u0000", merchant_id: "mer_1", currency: "CNY", code: 7n, normal_balance: "credit", flags: 2n, owner: "所有者", metadata: '{"k":"' + "长".repeat(3_000) + '"}', created_at: 2n, debits_pending: MAX, debits_posted: MAX, credits_pending: MAX, credits_posted: MAX, last_ts: MAX, transfer_count: MAX },
  { rowid: 1_000n, id: "shop", merchant_id: null, currency: "CNY", code: 0n, normal_balance: "credit", flags: 0n, owner: null, metadata: null, created_at: 3n, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 300n, last_ts: null, transfer_count: 0n },
];

before(async () => {
  database = await createTestDatabase("sqlite", "balances");
  db = openDatabase(database.url);
  await migrate(db, { upTo: "0007_ledger_compact_rows" });
  const insert = db.sqlite!.prepare(`insert into ledger_accounts (rowid, ${ACCOUNT_COLUMNS.join(",")}) values (${["rowid", ...ACCOUNT_COLUMNS].map(() => "?").join(",")})`);
  for (const a of old) insert.run(a.rowid, ...ACCOUNT_COLUMNS.map((c) => a[c]));
  assert.deepEqual(await migrate(db, { upTo: "0008_ledger_balances" }), ["0008_ledger_balances"]);
});
after(async () => {
  await db.close();
  await database.dispose();
});

test("the view reads every account exactly as the table held it, with the table's columns in order", () => {
  const sqlite = db.sqlite!;
  const columns = (sqlite.prepare("select name from pragma_table_info('ledger_accounts')").all() as Array<{ name: string }>).map((c) => c.name);
  assert.deepEqual(columns, [...ACCOUNT_COLUMNS]);
  const rows = sqlite.prepare("select * from ledger_accounts order by created_at").all();
  assert.deepEqual(rows, old.map(({ rowid: _, ...a }) => a));
  const type = (sqlite.prepare("select type from sqlite_master where name = 'ledger_accounts'").get() as { type: string }).type;
  assert.equal(type, "view");
});

test("each account keeps its old rowid as its seq in both tables; ids stay unique", () => {
  const sqlite = db.sqlite!;
  const seqs = sqlite.prepare("select r.id, r.seq, b.seq as b from ledger_account_rows r join ledger_balances b on b.seq = r.seq order by r.seq").all() as Array<{ id: string; seq: bigint; b: bigint }>;
  assert.deepEqual(seqs.map((s) => [s.id, s.seq]), old.map((a) => [a.id, a.rowid]));
  assert.throws(
    () => sqlite.prepare("insert into ledger_account_rows (id, currency, code, normal_balance, flags, created_at) values ('bank', 'CNY', 0, 'debit', 0, 1)").run(),
    /UNIQUE constraint failed: ledger_account_rows\.id/,
  );
  // A lookup by id goes through the id's index, not a scan of either table.
  const plan = (sqlite.prepare("explain query plan select * from ledger_accounts where id = 'bank'").all() as Array<{ detail: string }>).map((p) => p.detail).join(" | ");
  assert.doesNotMatch(plan, /SCAN/, plan);
});

test("the engine goes on from the split accounts: balances, new accounts after the highest seq", async () => {
  const engine = new PostingEngine(createLedgerStore(db), systemClock, defaultLimits, undefined, "sqlite");
  try {
    const transfer = (id: string, credit: string) => ({ id, debitAccountId: "bank", creditAccountId: credit, amount: 5n, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false });
    await engine.createAccounts(null, [{ id: "late", currency: "CNY", code: 0, normalBalance: "credit", flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null }]);
    for (const [id, credit] of [["t1", "shop"], ["t2", "late"], ["t3", "shop"]] as const) {
      assert.equal((await engine.submitTransfers(null, [transfer(id, credit)]))[0]!.result, "created");
    }
    const row = (id: string) => db.sqlite!.prepare("select * from ledger_accounts where id = ?").get(id) as Record<string, unknown>;
    assert.equal(row("bank").debits_posted, 315n);
    assert.equal(row("bank").transfer_count, 6n);
    assert.equal(row("shop").credits_posted, 310n);
    assert.equal(row("late").credits_posted, 5n);
    const { rowid: _, ...untouched } = old[1]!;
    assert.deepEqual(row("店铺-😀-\u0000"), untouched);
    const late = db.sqlite!.prepare("select seq from ledger_account_rows where id = 'late'").get() as { seq: bigint };
    assert.equal(late.seq, 1_001n);
  } finally {
    await engine.close();
  }
});
