// The SQLite pipeline (batches prepared while earlier ones commit on the writer thread): answers
// wait for the commits they depend on, and hold expiry never loses track of due holds.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import BetterSqlite3 from "better-sqlite3";
import { openDatabase } from "../../src/db/database.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import { createLedgerStore } from "../../src/ledger/store.ts";
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

test("a hold created, posted and posted again while each batch before is still in flight: reads see the newest batch's hold", async () => {
  const store = (app.tally.engine as unknown as { store: { overlay: unknown[] } }).store;
  const hold = app.tally.engine.submitTransfers(null, [transfer("pipe-hold", { pending: true, timeoutSeconds: 60 })]);
  await nextTurn();
  const post = app.tally.engine.submitTransfers(null, [{ id: "pipe-post", postPendingId: "pipe-hold", pending: false, timeoutSeconds: 0, linked: false }]);
  await nextTurn();
  const inFlight = store.overlay.length;
  const again = app.tally.engine.submitTransfers(null, [{ id: "pipe-post-2", postPendingId: "pipe-hold", pending: false, timeoutSeconds: 0, linked: false }]);
  const replay = app.tally.engine.submitTransfers(null, [transfer("pipe-hold", { pending: true, timeoutSeconds: 60 })]);
  const results = (await Promise.all([hold, post, again, replay])).map((o) => o[0]!.result);
  assert.deepEqual(results, ["created", "created", "pending_transfer_already_posted", "exists"]);
  assert.ok(inFlight >= 1, "the later batches were prepared while earlier ones were in flight");
  assert.equal(store.overlay.length, 0, "every committed batch left the overlay");
  assert.equal((await app.request("GET", "/v1/ledger/transfers/pipe-hold")).body.status, "posted");
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

test("balances are written by the account's seq, which a VACUUM on another connection keeps", async () => {
  const wallet = async () => (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
  const before = await wallet();
  // The writer now remembers the wallet's seq.
  assert.equal((await app.tally.engine.submitTransfers(null, [transfer("vacuum-1")]))[0]!.result, "created");
  const other = new BetterSqlite3(app.tally.db.sqlitePath!);
  try {
    other.pragma("busy_timeout = 5000");
    other.exec("vacuum");
  } finally {
    other.close();
  }
  assert.equal((await app.tally.engine.submitTransfers(null, [transfer("vacuum-2")]))[0]!.result, "created");
  assert.equal((await wallet()).credits_posted, before.credits_posted + 10);
  // A restart reads the same balance from the row.
  const row = app.tally.db.sqliteReader!.prepare("select credits_posted from ledger_accounts where id = 'wallet'").get() as { credits_posted: bigint };
  assert.equal(row.credits_posted, BigInt(before.credits_posted + 10));
});

test("a batch that fails at the writer is redone op by op; accounts created around it each get their own balance row", async () => {
  const other = new BetterSqlite3(app.tally.db.sqlitePath!);
  other.pragma("busy_timeout = 5000");
  other.defaultSafeIntegers(true);
  try {
    // A failure the engine cannot foresee: the database refuses one transfer's row.
    other.exec("create trigger refuse_boom before insert on ledger_transfers when new.id = 'boom' begin select raise(abort, 'refused by test trigger'); end");
    // Queued together, the new account and the refused transfer go to the writer in one batch,
    // which rolls back (and the writer forgets the seqs it remembered); the engine then redoes
    // each op alone, so the account is created and only the transfer is refused.
    const [created, boom] = await Promise.allSettled([
      app.tally.engine.createAccounts(null, [{ id: "ghost", currency: "CNY", code: 1, normalBalance: "credit", flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null }]),
      app.tally.engine.submitTransfers(null, [transfer("boom", { creditAccountId: "ghost" })]),
    ]);
    assert.equal(boom.status, "rejected");
    assert.equal(created.status, "fulfilled");
    assert.equal((await app.request("GET", "/v1/ledger/transfers/boom")).status, 404);
    other.exec("drop trigger refuse_boom");
    assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: "late", currency: "CNY" })).status, 201);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/ghost")).status, 200);
    const rows = other.prepare("select r.id, r.seq, b.seq as balance_seq from ledger_account_rows r left join ledger_balances b on b.seq = r.seq where r.id in ('ghost', 'late')").all() as Array<{ id: string; seq: bigint; balance_seq: bigint | null }>;
    assert.equal(rows.length, 2);
    for (const r of rows) assert.equal(r.balance_seq, r.seq, `${r.id} has its balance row`);
    assert.equal((other.prepare("select count(*) as n from ledger_balances").get() as { n: bigint }).n, (other.prepare("select count(*) as n from ledger_account_rows").get() as { n: bigint }).n);
    assert.equal((await app.tally.engine.submitTransfers(null, [transfer("to-late", { creditAccountId: "late", amount: 7n })]))[0]!.result, "created");
    assert.equal((await app.tally.engine.submitTransfers(null, [transfer("to-ghost", { creditAccountId: "ghost", amount: 3n })]))[0]!.result, "created");
    const posted = (id: string) => (other.prepare("select credits_posted from ledger_accounts where id = ?").get(id) as { credits_posted: bigint }).credits_posted;
    assert.equal(posted("late"), 7n);
    assert.equal(posted("ghost"), 3n);
  } finally {
    other.close();
  }
});

test("requests that arrive one by one while a commit is in flight gather into one batch", async () => {
  const batches = async () => Number(/^tally_ledger_batch_transfers_count (\d+)$/m.exec((await app.request("GET", "/metrics")).text)![1]);
  const before = await batches();
  const other = new BetterSqlite3(app.tally.db.sqlitePath!);
  try {
    // The first batch's commit waits for this lock, so it is in flight for as long as the test wants.
    other.exec("begin immediate");
    const first = app.tally.engine.submitTransfers(null, [transfer("gather-0")]);
    await nextTurn();
    await nextTurn();
    // Each arrives on a turn of its own, as requests from separate connections do.
    const later: Array<Promise<unknown>> = [];
    for (let i = 1; i <= 5; i++) {
      later.push(app.tally.engine.submitTransfers(null, [transfer(`gather-${i}`)]));
      await nextTurn();
    }
    other.exec("rollback");
    const results = (await Promise.all([first, ...later])) as Array<Array<{ result: string }>>;
    assert.deepEqual(results.map((o) => o[0]!.result), Array(6).fill("created"));
  } finally {
    other.close();
  }
  assert.equal((await batches()) - before, 2, "the first request's batch, then one batch for the five that waited");
});

test("a batch starts from the ledger state its own commits left; another writer's commit is caught and the batch redone on the state it left", async () => {
  const store = (app.tally.engine as unknown as { store: { selectState: { get(): unknown } } }).store;
  const original = store.selectState;
  let reads = 0;
  store.selectState = { get: () => (reads++, original.get()) };
  const second = openDatabase(`sqlite:${app.tally.db.sqlitePath!}`);
  const other = new PostingEngine(createLedgerStore(second), clock, defaultLimits, undefined, "sqlite");
  try {
    const wallet = async () => BigInt((await app.request("GET", "/v1/ledger/accounts/wallet")).body.credits_posted);
    assert.equal((await app.tally.engine.submitTransfers(null, [transfer("state-1")]))[0]!.result, "created");
    const before = await wallet();
    reads = 0;
    assert.equal((await app.tally.engine.submitTransfers(null, [transfer("state-2")]))[0]!.result, "created");
    assert.equal(reads, 0, "the state after its own commit was not read back");
    // Another writer on the same file moves the version and the wallet's balance.
    assert.equal((await other.submitTransfers(null, [transfer("state-other", { amount: 100n })]))[0]!.result, "created");
    const [third] = await app.tally.engine.submitTransfers(null, [transfer("state-3")]);
    assert.equal(third!.result, "created");
    assert.ok(reads >= 1, "the refused batch was redone on a state read afresh");
    assert.equal(third!.transfer!.crCreditsPosted, before + 110n, "its balance after counts the other writer's transfer");
    assert.equal(await wallet(), before + 110n, "5 + 100 + 5: no update lost");
    assert.equal((await app.tally.engine.submitTransfers(null, [transfer("state-4")]))[0]!.result, "created");
    assert.equal(await wallet(), before + 115n);
  } finally {
    store.selectState = original;
    await other.close();
    await second.close();
  }
});
