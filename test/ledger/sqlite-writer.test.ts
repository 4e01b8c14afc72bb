// The SQLite writer thread on its own: batches that wait together are written in one transaction,
// and the accounts' balances once, at the end, as the batches that succeeded left them. A batch
// that fails (and the batches prepared on top of it) leave nothing; the others commit.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { MessageChannel, type MessagePort, type Worker } from "node:worker_threads";
import { startTypeScriptWorker } from "../../src/kernel/worker.ts";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { afterFields, type Account, type Balances, type Transfer } from "../../src/ledger/model.ts";
import { accountValues, transferFromRow } from "../../src/ledger/rows.ts";
import { encodeRows } from "../../src/ledger/sqlite-rows-codec.ts";
import type { WalReport, WriterBatch, WriterReply } from "../../src/ledger/sqlite-writer-worker.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
let db: Database;
let worker: Worker;
let port: MessagePort;
/** Every reply message: one per writer transaction. */
const transactions: WriterReply[][] = [];
/** What each WAL checkpoint of the writer left. */
const walReports: Array<WalReport["wal"]> = [];
const waiting = new Map<number, (reply: WriterReply) => void>();

const T0 = 1_700_000_000_000_000n;
const zero: Balances = { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n };

function account(id: string, balances: Balances = zero, lastTs: bigint | null = null, transferCount = 0): Account {
  return {
    id, merchantId: null, currency: "CNY", code: 0, normalBalance: "credit", flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false },
    owner: null, metadata: null, createdAt: T0, ...balances, lastTs, transferCount, touchedBy: 0,
  };
}

let version = 0n;
let ts = T0;
let seq = 0;

/** A batch of one transfer debit -> credit of `amount`, prepared on `expectVersion`, with both accounts' new balances. */
function batch(id: string, debit: Account, credit: Account, amount: bigint, expectVersion: bigint, newAccounts: Account[] = []): WriterBatch {
  ts += 1n;
  const debitPrevTs = debit.lastTs;
  const creditPrevTs = credit.lastTs;
  const d = account(debit.id, { ...debit, debitsPosted: debit.debitsPosted + amount }, ts, debit.transferCount + 1);
  const c = account(credit.id, { ...credit, creditsPosted: credit.creditsPosted + amount }, ts, credit.transferCount + 1);
  const t: Transfer = {
    ts, id, merchantId: null, debitAccountId: d.id, creditAccountId: c.id, amount, currency: "CNY", code: 0, flags: 0, pendingId: null,
    timeoutSeconds: 0, expiresAt: null, status: "posted", resolvedAt: null, reference: null, metadata: null,
    ...afterFields(d, c), debitPrevTs, creditPrevTs,
  };
  Object.assign(debit, d);
  Object.assign(credit, c);
  const rows = encodeRows([t], [d, c].filter((a) => !newAccounts.some((n) => n.id === a.id)));
  return {
    seq: ++seq, expectVersion, version: expectVersion + 1n, lastTs: ts, accounts: newAccounts.map(accountValues),
    transfers: rows.transfers, holds: [], balances: rows.balances, checkpoints: [], statements: [], events: [],
  };
}

/** A batch of `n` transfers bank -> shop, amounts 1..n, prepared on `expectVersion`. */
function manyBatch(prefix: string, n: number, expectVersion: bigint): { batch: WriterBatch; transfers: Transfer[] } {
  const transfers: Transfer[] = [];
  for (let i = 0; i < n; i++) {
    ts += 1n;
    const amount = BigInt(i + 1);
    const debitPrevTs = bank.lastTs;
    const creditPrevTs = shop.lastTs;
    Object.assign(bank, { debitsPosted: bank.debitsPosted + amount, lastTs: ts, transferCount: bank.transferCount + 1 });
    Object.assign(shop, { creditsPosted: shop.creditsPosted + amount, lastTs: ts, transferCount: shop.transferCount + 1 });
    transfers.push({
      ts, id: `${prefix}-${i}`, merchantId: null, debitAccountId: bank.id, creditAccountId: shop.id, amount, currency: "CNY", code: 0, flags: 0,
      pendingId: null, timeoutSeconds: 0, expiresAt: null, status: "posted", resolvedAt: null, reference: null, metadata: null,
      ...afterFields(bank, shop), debitPrevTs, creditPrevTs,
    });
  }
  const rows = encodeRows(transfers, [bank, shop]);
  return {
    batch: { seq: ++seq, expectVersion, version: expectVersion + 1n, lastTs: ts, accounts: [], transfers: rows.transfers, holds: [], balances: rows.balances, checkpoints: [], statements: [], events: [] },
    transfers,
  };
}

/** Posts the batches in one go (so that the writer finds them waiting together) and waits for every reply. */
async function post(batches: WriterBatch[]): Promise<WriterReply[]> {
  const replies = batches.map((b) => new Promise<WriterReply>((resolve) => waiting.set(b.seq, resolve)));
  for (const b of batches) port.postMessage(b);
  return Promise.all(replies);
}

const stored = (id: string) =>
  db.sqlite!.prepare("select debits_posted, credits_posted, last_ts, transfer_count from ledger_accounts where id = ?").get(id) as {
    debits_posted: bigint; credits_posted: bigint; last_ts: bigint | null; transfer_count: bigint;
  };

before(async () => {
  database = await createTestDatabase("sqlite", "writer");
  db = openDatabase(database.url);
  await migrate(db);
  const channel = new MessageChannel();
  port = channel.port1;
  worker = startTypeScriptWorker(new URL("../../src/ledger/sqlite-writer-worker.ts", import.meta.url), { path: db.sqlitePath, port: channel.port2 }, [
    channel.port2,
  ]);
  port.on("message", (message: WriterReply[] | WalReport) => {
    if (!Array.isArray(message)) return void walReports.push(message.wal);
    const replies = message;
    transactions.push(replies);
    for (const r of replies) waiting.get(r.seq)?.(r);
  });
});
after(async () => {
  port.close();
  await worker.terminate();
  await db.close();
  await database.dispose();
});

const bank = account("bank");
const shop = account("shop");
const fee = account("fee");

test("batches written together: each account's row holds what the last batch left", async () => {
  // The accounts arrive with the first batch that uses them.
  const first = batch("w-1", bank, shop, 10n, version, [bank, shop]);
  version += 1n;
  const second = batch("w-2", bank, fee, 5n, version, [fee]);
  version += 1n;
  const third = batch("w-3", bank, shop, 7n, version);
  version += 1n;
  // Grouping is up to the writer thread's timing; posting all three at once makes it likely, and
  // the balances must be right either way.
  const replies = await post([first, second, third]);
  assert.deepEqual(replies.map((r) => r.ok), [true, true, true]);
  assert.deepEqual(stored("bank"), { debits_posted: 22n, credits_posted: 0n, last_ts: bank.lastTs, transfer_count: 3n });
  assert.deepEqual(stored("shop"), { debits_posted: 0n, credits_posted: 17n, last_ts: shop.lastTs, transfer_count: 2n });
  assert.deepEqual(stored("fee"), { debits_posted: 0n, credits_posted: 5n, last_ts: fee.lastTs, transfer_count: 1n });
});

test("a batch that fails between good ones leaves no balance, and the batches on top of it fail their version check", async () => {
  const BetterSqlite3 = (await import("better-sqlite3")).default;
  const other = new BetterSqlite3(db.sqlitePath!);
  other.exec("create trigger refuse_boom before insert on ledger_transfers when new.id = 'boom' begin select raise(abort, 'refused by test trigger'); end");
  try {
    // Make the writer wait: another connection holds the write lock while the writer begins a
    // transaction for a first batch, so the three batches below are all waiting when it turns
    // to its queue again, and it takes them in one transaction.
    other.exec("begin immediate");
    const first = batch("w-first", bank, shop, 1n, version);
    version += 1n;
    const firstDone = post([first]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const good = batch("w-good", bank, shop, 3n, version);
    const afterGood = { bank: { ...bank }, shop: { ...shop } };
    const boom = batch("boom", bank, shop, 1000n, version + 1n);
    const onTop = batch("w-top", bank, shop, 50n, version + 2n);
    const pending = post([good, boom, onTop]);
    other.exec("commit");
    assert.equal((await firstDone)[0]!.ok, true);
    const replies = await pending;
    const together = transactions.find((t) => t.some((r) => r.seq === good.seq))!;
    assert.deepEqual(together.map((r) => r.seq).slice(-3), [good.seq, boom.seq, onTop.seq], "the three batches shared one transaction");
    assert.equal(replies[0]!.ok, true);
    assert.equal(replies[1]!.ok, false);
    assert.match((replies[1] as { message: string }).message, /refused by test trigger/);
    assert.equal(replies[2]!.ok, false);
    assert.equal((replies[2] as { conflict: boolean }).conflict, true, "prepared on the failed batch");
    version += 1n;
    // Only the first and the good batch took effect: the in-memory accounts go back to what the good one left.
    Object.assign(bank, afterGood.bank);
    Object.assign(shop, afterGood.shop);
    assert.deepEqual(stored("bank"), { debits_posted: bank.debitsPosted, credits_posted: bank.creditsPosted, last_ts: bank.lastTs, transfer_count: BigInt(bank.transferCount) });
    assert.deepEqual(stored("shop"), { debits_posted: shop.debitsPosted, credits_posted: shop.creditsPosted, last_ts: shop.lastTs, transfer_count: BigInt(shop.transferCount) });
    assert.equal(stored("bank").debits_posted, 22n + 1n + 3n);
  } finally {
    if (other.inTransaction) other.exec("rollback");
    other.exec("drop trigger refuse_boom");
    other.close();
  }
});

test("a batch alone in its transaction that fails leaves nothing, and the next batch on the same version commits", async () => {
  // A batch alone is written without a savepoint; its failure rolls the transaction back whole.
  const BetterSqlite3 = (await import("better-sqlite3")).default;
  const other = new BetterSqlite3(db.sqlitePath!);
  // Refuses the balance UPDATE of the batch's second account, after its transfer row went in.
  other.exec("create trigger refuse_big before update on ledger_balances when new.credits_posted > 1000000 begin select raise(abort, 'refused by test trigger'); end");
  try {
    const before = { bank: { ...bank }, shop: { ...shop } };
    const alone = batch("alone-boom", bank, shop, 2_000_000n, version);
    const [reply] = await post([alone]);
    assert.equal(transactions.at(-1)!.length, 1, "the batch was alone in its transaction");
    assert.equal(reply!.ok, false);
    assert.match((reply as { message: string }).message, /refused by test trigger/);
    assert.equal((db.sqlite!.prepare("select count(*) as n from ledger_transfers where id = 'alone-boom'").get() as { n: bigint }).n, 0n, "its transfer row was rolled back");
    Object.assign(bank, before.bank);
    Object.assign(shop, before.shop);
    assert.deepEqual(stored("bank"), { debits_posted: bank.debitsPosted, credits_posted: bank.creditsPosted, last_ts: bank.lastTs, transfer_count: BigInt(bank.transferCount) });
    assert.deepEqual(stored("shop"), { debits_posted: shop.debitsPosted, credits_posted: shop.creditsPosted, last_ts: shop.lastTs, transfer_count: BigInt(shop.transferCount) });
    const next = batch("alone-next", bank, shop, 4n, version);
    const [ok] = await post([next]);
    assert.equal(ok!.ok, true, "the version the failed batch expected is still the ledger's");
    version += 1n;
    assert.equal(stored("shop").credits_posted, shop.creditsPosted);
  } finally {
    other.exec("drop trigger refuse_big");
    other.close();
  }
});

test("batches of every size are stored whole and in order (INSERTs of 64, 32, … 1 rows)", async () => {
  // Sizes that take each statement size alone, every mix of them, and more than one of the largest.
  for (const n of [1, 2, 3, 7, 31, 63, 64, 65, 100, 127, 129, 200]) {
    const prefix = `size${n}`;
    const { batch: b, transfers } = manyBatch(prefix, n, version);
    const [reply] = await post([b]);
    assert.equal(reply!.ok, true, `a batch of ${n}`);
    version += 1n;
    const rows = db.sqlite!.prepare("select * from ledger_transfers where id like ? order by ts").all(`${prefix}-%`);
    assert.equal(rows.length, n, `rows of the batch of ${n}`);
    assert.deepEqual(rows.map((r) => transferFromRow(r as never)), transfers, `the batch of ${n} as it was sent`);
  }
  assert.deepEqual(stored("bank"), { debits_posted: bank.debitsPosted, credits_posted: bank.creditsPosted, last_ts: bank.lastTs, transfer_count: BigInt(bank.transferCount) });
  assert.deepEqual(stored("shop"), { debits_posted: shop.debitsPosted, credits_posted: shop.creditsPosted, last_ts: shop.lastTs, transfer_count: BigInt(shop.transferCount) });
});

test("the writer checkpoints the WAL itself (after replying): under many commits the WAL starts over and stays near the mark", async () => {
  // The writer's connection has SQLite's automatic checkpoint off and checkpoints after each
  // transaction's replies instead; without that, the WAL would hold every frame of this test.
  const wal = () => {
    const row = db.sqlite!.prepare("pragma wal_checkpoint(NOOP)").get() as { log: bigint; checkpointed: bigint };
    return { log: Number(row.log), checkpointed: Number(row.checkpointed) };
  };
  let most = 0;
  let restarts = 0;
  let last = wal().log;
  let written = 0;
  const reportsBefore = walReports.length;
  for (let i = 0; i < 400; i++) {
    const { batch: b } = manyBatch(`ckpt${i}`, 100, version);
    const [reply] = await post([b]);
    assert.equal(reply!.ok, true);
    version += 1n;
    const now = wal().log;
    written += now > last ? now - last : now;
    if (now < last) restarts++;
    most = Math.max(most, now);
    last = now;
  }
  assert.ok(written > 3000, `the batches wrote ${written} frames: enough to pass the mark several times`);
  assert.ok(restarts >= 2, `the WAL started over ${restarts} times`);
  assert.ok(most < 2000, `the WAL held at most ${most} frames (the mark is 1000)`);
  // Each checkpoint reported what it left: with no reader in the way, every frame copied.
  const reports = walReports.slice(reportsBefore);
  assert.ok(reports.length >= restarts, `${reports.length} checkpoint reports for ${restarts} restarts`);
  for (const r of reports) {
    assert.equal(r.error, null);
    assert.ok(r.frames >= 1000 && r.frames < 2000, `a checkpoint at ${r.frames} frames`);
    assert.equal(r.checkpointed, r.frames);
  }
  assert.deepEqual(stored("bank"), { debits_posted: bank.debitsPosted, credits_posted: bank.creditsPosted, last_ts: bank.lastTs, transfer_count: BigInt(bank.transferCount) });
});
