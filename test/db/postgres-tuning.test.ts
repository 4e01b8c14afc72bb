// PostgreSQL storage settings the ledger relies on for speed (migration 0009): account rows leave
// room on their pages, so a balance update keeps the new row version on the same page (HOT) and
// touches no index.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import { createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
let db: Database;
before(async () => {
  database = await createTestDatabase("postgres", "tuning");
  db = openDatabase(database.url);
  await migrate(db);
});
after(async () => {
  await db.close();
  await database.dispose();
});

test("ledger_accounts keeps 30 % of each page free", async () => {
  const { rows } = await db.pool!.query("select reloptions from pg_class where relname = 'ledger_accounts' and relkind = 'r'");
  assert.deepEqual(rows[0].reloptions, ["fillfactor=70"]);
});

test("a balance update of accounts the engine created is a HOT update: no index entry, the same page", async () => {
  const engine = new PostingEngine(createLedgerStore(db), systemClock, defaultLimits, undefined, "postgres");
  try {
    const base = { currency: "CNY", code: 1, normalBalance: "credit" as const, flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null };
    const created = await engine.createAccounts(null, Array.from({ length: 2000 }, (_, i) => ({ ...base, id: `tune-${String(i).padStart(4, "0")}` })));
    assert.ok(created.every((o) => o.result === "created"));
  } finally {
    await engine.close();
  }
  const client = await db.pool!.connect();
  try {
    await client.query("begin");
    // A quarter of the accounts, as a batch's netted UPDATE writes them.
    const updated = await client.query("update ledger_accounts set credits_posted = credits_posted + 1, transfer_count = transfer_count + 1 where id like 'tune-%' and right(id, 1) in ('0', '4')");
    assert.equal(updated.rowCount, 400);
    const { rows } = await client.query("select pg_stat_get_xact_tuples_hot_updated('ledger_accounts'::regclass) as hot");
    assert.equal(Number(rows[0].hot), 400, "every new row version stayed on its page");
    await client.query("rollback");
  } finally {
    client.release();
  }
});
