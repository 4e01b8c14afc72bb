// Migration 0007 on SQLite: a ledger written with one column per field (as releases before it
// wrote) is rebuilt into the compact layout without losing or changing a transfer, keeps its
// indexes and its duplicate-id refusal, and the engine goes on from it: balances, history chains
// across the old and new rows, point-in-time balances.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import { CHECKPOINT_INTERVAL, afterFields, type Transfer } from "../../src/ledger/model.ts";
import { LedgerQueries } from "../../src/ledger/queries.ts";
import { TRANSFER_COLUMNS, transferFromRow, transferValues } from "../../src/ledger/rows.ts";
import { createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
let db: Database;

const T0 = 1_700_000_000_000_000n;
const balances = (n: bigint) => ({ debitsPending: 0n, debitsPosted: n, creditsPending: 0n, creditsPosted: 0n });

/** Transfers bank -> shop as an earlier release stored them, each linked to the one before. */
function oldTransfers(): Transfer[] {
  const out: Transfer[] = [];
  for (let i = 0; i < 2_500; i++) {
    const ts = T0 + BigInt(i);
    out.push({
      ts,
      id: i === 7 ? "旧-😀-\u0000-id" : `old-${i}`,
      merchantId: i % 3 === 0 ? null : "mer_1",
      debitAccountId: "bank",
      creditAccountId: "shop",
      amount: 10n,
      currency: "CNY",
      code: i,
      flags: 0,
      pendingId: null,
      timeoutSeconds: 0,
      expiresAt: null,
      status: "posted",
      resolvedAt: null,
      reference: i % 2 === 0 ? null : `ref ${i} 参考`,
      metadata: i === 11 ? '{"note":"' + "长".repeat(5_000) + '"}' : null,
      ...afterFields(balances(10n * BigInt(i + 1)), { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 10n * BigInt(i + 1) }),
      debitPrevTs: i === 0 ? null : ts - 1n,
      creditPrevTs: i === 0 ? null : ts - 1n,
    });
  }
  return out;
}

let stored: Transfer[];

before(async () => {
  database = await createTestDatabase("sqlite", "compact");
  db = openDatabase(database.url);
  assert.ok((await migrate(db, { upTo: "0006_escrow" })).includes("0006_escrow"));
  stored = oldTransfers();
  const sqlite = db.sqlite!;
  const insert = sqlite.prepare(`insert into ledger_transfers (${TRANSFER_COLUMNS.join(",")}) values (${TRANSFER_COLUMNS.map(() => "?").join(",")})`);
  const last = stored.at(-1)!;
  sqlite.transaction(() => {
    const checkpoint = sqlite.prepare("insert into ledger_checkpoints (account_id, ts) values (?, ?)");
    stored.forEach((t, i) => {
      insert.run(transferValues(t));
      // Every CHECKPOINT_INTERVAL-th transfer of an account is indexed (model.ts linkHistory).
      if ((i + 1) % CHECKPOINT_INTERVAL === 0) for (const a of ["bank", "shop"]) checkpoint.run(a, t.ts);
    });
    const account = sqlite.prepare(
      `insert into ledger_accounts (id, currency, code, normal_balance, flags, created_at, debits_pending, debits_posted, credits_pending, credits_posted, last_ts, transfer_count)
       values (?, 'CNY', 0, ?, 0, 1, 0, ?, 0, ?, ?, ?)`,
    );
    account.run("bank", "debit", last.drDebitsPosted, 0n, last.ts, BigInt(stored.length));
    account.run("shop", "credit", 0n, last.crCreditsPosted, last.ts, BigInt(stored.length));
    sqlite.prepare("update ledger_state set last_ts = ?, version = 1 where id = 1").run(last.ts);
  })();
  assert.deepEqual(await migrate(db, { upTo: "0008_ledger_balances" }), ["0007_ledger_compact_rows", "0008_ledger_balances"]);
});
after(async () => {
  await db.close();
  await database.dispose();
});

test("every transfer reads back exactly as it was stored before the migration", async () => {
  const rows = db.sqlite!.prepare("select * from ledger_transfers order by ts").all() as any[];
  assert.equal(rows.length, stored.length);
  assert.deepEqual(rows.map(transferFromRow), stored);
  const columns = (db.sqlite!.prepare("select name from pragma_table_info('ledger_transfers')").all() as Array<{ name: string }>).map((c) => c.name);
  assert.ok(columns.includes("body") && !columns.includes("dr_debits_posted"), `columns: ${columns.join(", ")}`);
});

test("the indexes are back, and a duplicate id is refused by name", () => {
  const indexes = (db.sqlite!.prepare("select name from sqlite_master where type = 'index' and tbl_name = 'ledger_transfers'").all() as Array<{ name: string }>).map((i) => i.name);
  for (const name of ["ledger_transfers_due_holds", "ledger_transfers_expired_debit", "ledger_transfers_expired_credit"]) assert.ok(indexes.includes(name), name);
  const plan = db.sqlite!.prepare("explain query plan select * from ledger_transfers where status = 'pending' and expires_at <= 5").all() as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join(" "), /ledger_transfers_due_holds/);
  assert.throws(
    () => db.sqlite!.prepare("insert into ledger_transfers (ts, id, debit_account_id, credit_account_id, amount, status, body) values (1, 'old-1', 'a', 'b', 1, 'posted', x'00')").run(),
    /UNIQUE constraint failed: ledger_transfers\.id/,
  );
});

test("the engine goes on from the migrated ledger: balances, replays, history across old and new rows, balance at a moment", async () => {
  const engine = new PostingEngine(createLedgerStore(db), systemClock, defaultLimits, undefined, "sqlite");
  try {
    const transfer = (id: string) => ({ id, debitAccountId: "bank", creditAccountId: "shop", amount: 5n, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false });
    const [created] = await engine.submitTransfers(null, [transfer("new-1")]);
    assert.equal(created!.result, "created");
    assert.equal(created!.transfer!.creditPrevTs, stored.at(-1)!.ts, "the new transfer links to the last migrated one");
    const [replay] = await engine.submitTransfers(null, [{ ...transfer("old-5"), amount: 10n }]);
    assert.equal(replay!.result, "exists_with_different_fields");
    const queries = new LedgerQueries(db);
    const shop = (await queries.account("shop", null))!;
    assert.equal(shop.creditsPosted, 25_005n);
    const page = await queries.history(shop, 3, null);
    assert.deepEqual(page.data.map((e) => e.transfer.id), ["new-1", "old-2499", "old-2498"]);
    assert.equal(page.data[1]!.balanceAfter.creditsPosted, 25_000n);
    const at = await queries.balanceAt(shop, T0 + 1_000n);
    assert.equal(at.creditsPosted, 10_010n);
  } finally {
    await engine.close();
  }
});
