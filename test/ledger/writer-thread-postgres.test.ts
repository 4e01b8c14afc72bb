// The PostgreSQL writer thread: batches prepared without the ledger lock commit there, in the
// order they were handed over. These tests hold the ledger's row lock (from a connection of their
// own, or as another process's commit held back), so that batches queue up on the thread as they
// would behind another process's commit, and check what the pipeline promises: a batch prepared on state another process changed
// is redone, never committed as prepared (no overdraft); a batch that fails dooms the ones queued
// on top of it, which are redone without its effects, and the store goes on afterwards; a thread
// that dies fails the batches it held and the next batch starts another.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../../src/ledger/model.ts";
import { VersionConflictError, createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
const dbs: Database[] = [];
const engines: PostingEngine[] = [];
let blocker: pg.Client;

const account = (id: string, normalBalance: "credit" | "debit", limited = false): AccountInput => ({
  id, currency: "CNY", code: 0, normalBalance, owner: null, metadata: null,
  flags: { debitsMustNotExceedCredits: limited, creditsMustNotExceedDebits: false },
});
const transfer = (id: string, debitAccountId: string, creditAccountId: string, amount: bigint): TransferInput => ({
  id, debitAccountId, creditAccountId, amount, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false,
});

/** An engine as one process: its own pool, the lease and the writer thread on (the defaults). */
function engine(): PostingEngine {
  const db = openDatabase(database.url);
  dbs.push(db);
  const e = new PostingEngine(createLedgerStore(db), systemClock, defaultLimits, undefined, "postgres");
  engines.push(e);
  return e;
}

interface StoreInternals {
  commit(epoch: number, locked: unknown, w: { transfers: Array<{ id: string }> }): Promise<void>;
  writer: { worker: { terminate(): Promise<number> } } | null;
}
const internals = (e: PostingEngine) => (e as unknown as { store: StoreInternals }).store;

/**
 * Records each batch handed over from the one holding `firstId` on: whether it was prepared
 * without the lock, and how it ended. `then` runs as that first batch is handed over, so that
 * what it submits joins the engine's queue at once and is prepared on top of it (later, a small
 * request would wait for the batch in flight to land). A batch's transfers may be refused
 * (exceeds_credits): then it has none to recognize it by, so batches are known by their order.
 */
function watchCommits(e: PostingEngine, firstId: string, then: () => void = () => {}) {
  const store = internals(e);
  const commit = store.commit.bind(store);
  const seen: Array<{ optimistic: boolean; error: unknown }> = [];
  store.commit = (epoch, locked, w) => {
    const result = commit(epoch, locked, w);
    if (seen.length > 0 || w.transfers.some((t) => t.id === firstId)) {
      const entry = { optimistic: locked === null, error: null as unknown };
      seen.push(entry);
      result.catch((error) => (entry.error = error));
      if (seen.length === 1) then();
    }
    return result;
  };
  return { seen, restore: () => (store.commit = commit) };
}

/** Holds the ledger's row lock, as another process's commit would, until `release()`. */
async function holdLedgerLock(): Promise<{ release(): Promise<void> }> {
  await blocker.query("begin; select version from ledger_state where id = 1 for update");
  return { release: async () => void (await blocker.query("commit")) };
}

/**
 * Waits until `n` sessions of the test database wait for a lock. Asked on a pool connection, not
 * the blocker's: inside a transaction, pg_stat_activity keeps showing what it showed first.
 */
async function lockWaiters(n: number): Promise<void> {
  const count = "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'";
  for (let i = 0; i < 500; i++) {
    if ((await dbs[0]!.pool!.query(count)).rows[0].n >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`fewer than ${n} sessions came to wait for a lock`);
}

async function until(condition: () => boolean, what: () => string): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), what());
}

async function posted(id: string): Promise<{ debits: bigint; credits: bigint }> {
  const row = await dbs[0]!.kysely.selectFrom("ledger_accounts").select(["debits_posted", "credits_posted"]).where("id", "=", id).executeTakeFirstOrThrow();
  return { debits: BigInt(row.debits_posted), credits: BigInt(row.credits_posted) };
}

before(async () => {
  database = await createTestDatabase("postgres", "writer_thread");
  const db = openDatabase(database.url);
  dbs.push(db);
  await migrate(db);
  blocker = new pg.Client({ connectionString: database.url });
  await blocker.connect();
});
after(async () => {
  await blocker.end();
  for (const e of engines) await e.close();
  for (const db of dbs) await db.close();
  await database.dispose();
});

test("another process commits while batches wait on the writer thread: they are redone on its state, no overdraft", async () => {
  const a = engine();
  // The other process writes at the row lock alone, on its main thread, so that the test can hold
  // its commit while it holds the lock.
  const dbB = openDatabase(database.url);
  dbs.push(dbB);
  const b = new PostingEngine(createLedgerStore(dbB, { lease: false, writerThread: false }), systemClock, defaultLimits, undefined, "postgres");
  engines.push(b);
  await a.createAccounts(null, [account("bank", "debit"), account("funded", "credit", true), account("other", "credit")]);
  assert.equal((await a.submitTransfers(null, [transfer("fund", "bank", "funded", 100n)]))[0]!.result, "created");
  const storeB = (b as unknown as { store: { write(...args: unknown[]): Promise<void> } }).store;
  const writeB = storeB.write.bind(storeB);
  let letBCommit!: () => void;
  const bMayCommit = new Promise<void>((resolve) => (letBCommit = resolve));
  let bWaits!: () => void;
  const bHoldsTheLock = new Promise<void>((resolve) => (bWaits = resolve));
  storeB.write = async (...args: unknown[]) => {
    bWaits();
    await bMayCommit;
    return writeB(...args);
  };
  // B prepared its batch under the ledger's row lock, and holds it until let commit.
  const spend50 = b.submitTransfers(null, [transfer("spend-50", "funded", "other", 50n)]);
  await bHoldsTheLock;
  // A holds the lease and prepares without the lock, on the state before B's: its first batch
  // waits on the thread for the row lock, the next is prepared on top of it.
  let second!: ReturnType<PostingEngine["submitTransfers"]>;
  const watch = watchCommits(a, "first", () => (second = a.submitTransfers(null, [transfer("spend-80", "funded", "other", 80n)])));
  const first = a.submitTransfers(null, [transfer("first", "bank", "other", 1n)]);
  await until(() => watch.seen.length === 2, () => `batches handed over: ${JSON.stringify(watch.seen)}`);
  await lockWaiters(1);
  letBCommit();
  assert.equal((await spend50)[0]!.result, "created");
  assert.equal((await first)[0]!.result, "created");
  assert.equal((await second)[0]!.result, "exceeds_credits");
  watch.restore();
  storeB.write = writeB;
  assert.deepEqual(watch.seen.slice(0, 2).map((s) => s.optimistic), [true, true], "both were prepared without the lock");
  const [firstError, secondError] = watch.seen.map((s) => s.error);
  assert.ok(firstError instanceof VersionConflictError && !firstError.stale, "the first met the other process's commit");
  assert.ok(secondError instanceof VersionConflictError && secondError.stale, "the one on top was refused untouched");
  assert.deepEqual(await posted("funded"), { debits: 50n, credits: 100n });
  // Both go on from the same state.
  assert.equal((await a.submitTransfers(null, [transfer("spend-40", "funded", "other", 40n)]))[0]!.result, "created");
  assert.equal((await b.submitTransfers(null, [transfer("spend-20", "funded", "other", 20n)]))[0]!.result, "exceeds_credits");
  assert.deepEqual(await posted("funded"), { debits: 90n, credits: 100n });
});

test("a batch that fails on the writer thread dooms the batches queued on top of it; they are redone, and the store goes on", async () => {
  const a = engine();
  await a.createAccounts(null, [account("bank2", "debit"), account("funded2", "credit", true), account("other2", "credit")]);
  assert.equal((await a.submitTransfers(null, [transfer("fund2", "bank2", "funded2", 100n)]))[0]!.result, "created");
  await dbs[0]!.kysely.insertInto("outbox_events").values({ id: "evt_taken_thread", type: "test", created_at: 1n, data: "{}" } as never).execute();
  // Prepared as if 70 were spent (30 left): must be redone with the full 100.
  let afterIt!: ReturnType<PostingEngine["submitTransfers"]>;
  const watch = watchCommits(a, "doomed-70", () => (afterIt = a.submitTransfers(null, [transfer("after-50", "funded2", "other2", 50n)])));
  const lock = await holdLedgerLock();
  // A unit of work whose write fails (its outbox id exists): its transfer never happens.
  const doomed = a.submitTransfers(null, [transfer("doomed-70", "funded2", "other2", 70n)], async (tx) => {
    await tx.insertInto("outbox_events").values({ id: "evt_taken_thread", type: "test", created_at: 2n, data: "{}" } as never).execute();
  });
  await until(() => watch.seen.length === 2, () => `batches handed over: ${JSON.stringify(watch.seen)}`);
  await lock.release();
  await assert.rejects(doomed, /duplicate key|unique/i);
  assert.equal((await afterIt)[0]!.result, "created");
  watch.restore();
  const onTop = watch.seen[1]!;
  assert.equal(onTop.optimistic, true, "the second batch was prepared without the lock, on top of the doomed one");
  assert.ok(onTop.error instanceof VersionConflictError && onTop.error.stale, "it was refused as doomed, untouched");
  assert.deepEqual(await posted("funded2"), { debits: 50n, credits: 100n });
  const row = await dbs[0]!.kysely.selectFrom("ledger_transfers").select("id").where("id", "=", "doomed-70").executeTakeFirst();
  assert.equal(row, undefined);
  // After the failure, batches pipeline on the thread again.
  const more = await Promise.all(Array.from({ length: 20 }, (_, i) => a.submitTransfers(null, [transfer(`more-${i}`, "funded2", "other2", 1n)])));
  assert.deepEqual(more.map((r) => r[0]!.result), new Array(20).fill("created"));
  assert.deepEqual(await posted("funded2"), { debits: 70n, credits: 100n });
});

test("a writer thread that dies fails the batch it held; the next batch starts another thread", async () => {
  const a = engine();
  await a.createAccounts(null, [account("bank3", "debit"), account("shop3", "credit")]);
  assert.equal((await a.submitTransfers(null, [transfer("warm3", "bank3", "shop3", 1n)]))[0]!.result, "created");
  const store = internals(a);
  const dying = store.writer;
  assert.ok(dying, "the first batch started the writer thread");
  const watch = watchCommits(a, "lost-3");
  const lock = await holdLedgerLock();
  const lost = a.submitTransfers(null, [transfer("lost-3", "bank3", "shop3", 5n)]);
  await until(() => watch.seen.length === 1, () => `batches handed over: ${JSON.stringify(watch.seen)}`);
  await lockWaiters(1);
  await dying.worker.terminate();
  await assert.rejects(lost, /writer thread exited/);
  await lock.release();
  watch.restore();
  // Its connection closed with the thread: the transaction it had begun never committed.
  assert.deepEqual(await posted("shop3"), { debits: 0n, credits: 1n });
  assert.equal((await a.submitTransfers(null, [transfer("next-3", "bank3", "shop3", 7n)]))[0]!.result, "created");
  assert.notEqual(store.writer, dying);
  assert.deepEqual(await posted("shop3"), { debits: 0n, credits: 8n });
});
