// The SQLite pipeline (batches prepared while earlier ones commit on the writer thread): answers
// wait for the commits they depend on, and hold expiry never loses track of due holds.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import BetterSqlite3 from "better-sqlite3";
import { ManualClock } from "../../src/kernel/clock.ts";
import { startTestApp, type TestApp } from "../support/app.ts";

let app: TestApp;
const clock = new ManualClock();
before(async () => {
  app = await startTestApp({ clock });
  for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
    assert.equal((await app.request("POST", "/v1/ledger/accounts", account)).status, 201);
  }
});
after(async () => app.close());

const transfer = (id: string, extra: object = {}) => ({
  id, debitAccountId: "bank", creditAccountId: "wallet", amount: 5n, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false, ...extra,
});

test("a replay is answered only after the batch that created the transfer committed", async () => {
  const order: string[] = [];
  const original = app.tally.engine.submitTransfers(null, [transfer("pipe-1")]).then((o) => order.push(`original:${o[0]!.result}`));
  // Let the first batch be prepared and handed to the writer, then replay while it is in flight.
  await nextTurn();
  const replay = app.tally.engine.submitTransfers(null, [transfer("pipe-1")]).then((o) => order.push(`replay:${o[0]!.result}`));
  await Promise.all([original, replay]);
  assert.deepEqual(order, ["original:created", "replay:exists"]);
});

test("more holds due at once than one batch expires are all expired", async () => {
  const holds = Array.from({ length: 1100 }, (_, i) => ({
    id: `due-${i}`, debit_account_id: "bank", credit_account_id: "wallet", amount: 1, currency: "CNY", pending: true, timeout_seconds: 1,
  }));
  const res = await app.request("POST", "/v1/ledger/transfers/batch", { transfers: holds });
  assert.equal(res.status, 200);
  assert.ok(res.body.results.every((r: { result: string }) => r.result === "created"));
  assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet")).body.credits_pending, 1100);
  clock.advanceMs(5_000);
  let expired = 0;
  for (let i = 0; i < 5 && expired < 1100; i++) expired += await app.tally.engine.tick();
  assert.equal(expired, 1100);
  const wallet = (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
  assert.equal(wallet.credits_pending, 0);
  assert.equal((await app.request("GET", "/v1/ledger/transfers/due-1099")).body.status, "expired");
});

test("an account that moved to another rowid (as a VACUUM may do) still gets its balance written", async () => {
  const wallet = async () => (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
  const before = await wallet();
  // The writer now remembers the wallet's rowid.
  assert.equal((await app.tally.engine.submitTransfers(null, [transfer("moved-1")]))[0]!.result, "created");
  // Another connection moves the row, as a VACUUM that renumbers the table would.
  const other = new BetterSqlite3(app.tally.db.sqlitePath!);
  try {
    other.pragma("busy_timeout = 5000");
    assert.equal(other.prepare("update ledger_accounts set rowid = rowid + 1000000 where id = 'wallet'").run().changes, 1);
  } finally {
    other.close();
  }
  assert.equal((await app.tally.engine.submitTransfers(null, [transfer("moved-2")]))[0]!.result, "created");
  assert.equal((await wallet()).credits_posted, before.credits_posted + 10);
  // A restart reads the same balance from the row.
  const row = app.tally.db.sqliteReader!.prepare("select credits_posted from ledger_accounts where id = 'wallet'").get() as { credits_posted: bigint };
  assert.equal(row.credits_posted, BigInt(before.credits_posted + 10));
});
