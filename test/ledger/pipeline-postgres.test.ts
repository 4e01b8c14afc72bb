// The PostgreSQL pipeline: a batch is prepared without the ledger lock on top of this process's
// batches in flight, and checked at commit. Another process's commit in between, or the failure of
// the batch below it, makes it redo its work on what the database holds: never an overdraft,
// never a result computed from a batch that did not commit.
//
// These tests order batches by wrapping the store's main-thread write, so their stores write on
// the main thread (writerThread: false); test/ledger/writer-thread-postgres.test.ts shows the same
// on the writer thread, ordered by the database's own row lock.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../../src/ledger/model.ts";
import { VersionConflictError, createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

let database: TestDatabase;
let dbA: Database;
let dbB: Database;
let engineA: PostingEngine;
let engineB: PostingEngine;

const account = (id: string, normalBalance: "credit" | "debit", limited = false): AccountInput => ({
  id, currency: "CNY", code: 0, normalBalance, owner: null, metadata: null,
  flags: { debitsMustNotExceedCredits: limited, creditsMustNotExceedDebits: false },
});
const transfer = (id: string, debitAccountId: string, creditAccountId: string, amount: bigint): TransferInput => ({
  id, debitAccountId, creditAccountId, amount, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false,
});

/** The store's private commit steps, wrapped by the tests to order batches as they need. */
interface StoreInternals {
  commit(epoch: number, locked: unknown, w: { transfers: Array<{ id: string }> }): Promise<void>;
  write(seq: number, epoch: number, locked: unknown, w: { transfers: Array<{ id: string }> }, steps: unknown): Promise<void>;
}

before(async () => {
  database = await createTestDatabase("postgres", "pipeline");
  dbA = openDatabase(database.url);
  dbB = openDatabase(database.url);
  await migrate(dbA);
  engineA = new PostingEngine(createLedgerStore(dbA, { lease: false, writerThread: false }), systemClock, defaultLimits, undefined, "postgres");
  engineB = new PostingEngine(createLedgerStore(dbB, { lease: false, writerThread: false }), systemClock, defaultLimits, undefined, "postgres");
});
after(async () => {
  await engineA.close();
  await engineB.close();
  await dbA.close();
  await dbB.close();
  await database.dispose();
});

async function balance(id: string): Promise<{ debits: bigint; credits: bigint }> {
  const row = await dbA.kysely.selectFrom("ledger_accounts").select(["debits_posted", "credits_posted"]).where("id", "=", id).executeTakeFirstOrThrow();
  return { debits: BigInt(row.debits_posted), credits: BigInt(row.credits_posted) };
}

/**
 * Holds the commit of the batch creating `firstId` until the next batch has been prepared and
 * handed over (so that one is prepared on top of the first, without the lock), then runs `between`
 * just before that next batch commits. Returns the errors the next batch met, whether it was
 * prepared without the lock, and a promise of the first batch's hand-over (submit the next one
 * after it, so that it is a batch of its own).
 */
function orderBatches(engine: PostingEngine, firstId: string, between: () => Promise<void>) {
  const store = (engine as unknown as { store: StoreInternals & { seq: number } }).store;
  const commit = store.commit.bind(store);
  const write = store.write.bind(store);
  let release!: () => void;
  const handedOver = new Promise<void>((resolve) => (release = resolve));
  let firstHandedOver!: () => void;
  const first = new Promise<void>((resolve) => (firstHandedOver = resolve));
  let firstSeq: number | null = null;
  let secondSeq: number | null = null;
  let betweenDone = false;
  const errors: unknown[] = [];
  const optimistic: boolean[] = [];
  store.commit = (epoch, locked, w) => {
    const result = commit(epoch, locked, w);
    if (firstSeq !== null && secondSeq === null) {
      secondSeq = store.seq;
      optimistic.push(locked === null);
      release();
    }
    if (firstSeq === null && w.transfers.some((t) => t.id === firstId)) {
      firstSeq = store.seq;
      firstHandedOver();
    }
    return result;
  };
  store.write = async (seq, epoch, locked, w, steps) => {
    if (seq === firstSeq) await handedOver;
    if (seq === secondSeq && !betweenDone) {
      betweenDone = true;
      await between();
    }
    try {
      return await write(seq, epoch, locked, w, steps);
    } catch (error) {
      if (seq === secondSeq) errors.push(error);
      throw error;
    }
  };
  return {
    errors,
    optimistic,
    first,
    restore() {
      store.commit = commit;
      store.write = write;
    },
  };
}

test("another process's commit between prepare and commit: the batch is redone on its state, no overdraft", async () => {
  await engineA.createAccounts(null, [account("bank", "debit"), account("funded", "credit", true), account("other", "credit")]);
  assert.equal((await engineA.submitTransfers(null, [transfer("fund", "bank", "funded", 100n)]))[0]!.result, "created");
  const { errors, optimistic, first: handedOver, restore } = orderBatches(engineA, "first", async () => {
    // The other process spends 50 of the 100 while this one's batch waits to commit.
    assert.equal((await engineB.submitTransfers(null, [transfer("spend-50", "funded", "other", 50n)]))[0]!.result, "created");
  });
  const first = engineA.submitTransfers(null, [transfer("first", "bank", "other", 1n)]);
  // Submitted while the first batch is in flight: the next batch, prepared on top of it.
  await handedOver;
  const second = engineA.submitTransfers(null, [transfer("spend-80", "funded", "other", 80n)]);
  assert.equal((await first)[0]!.result, "created");
  assert.equal((await second)[0]!.result, "exceeds_credits");
  assert.equal(optimistic[0], true, "the second batch was first prepared without the lock");
  assert.ok(errors.some((e) => e instanceof VersionConflictError && !e.stale), "the optimistic batch met the other process's commit");
  assert.deepEqual(await balance("funded"), { debits: 50n, credits: 100n });
  restore();
  // Both engines go on from the same state.
  assert.equal((await engineA.submitTransfers(null, [transfer("spend-40", "funded", "other", 40n)]))[0]!.result, "created");
  assert.equal((await engineB.submitTransfers(null, [transfer("spend-20", "funded", "other", 20n)]))[0]!.result, "exceeds_credits");
  assert.deepEqual(await balance("funded"), { debits: 90n, credits: 100n });
});

test("a batch that fails at commit dooms the batch prepared on top of it, which is redone without its effects", async () => {
  await engineA.createAccounts(null, [account("funded2", "credit", true)]);
  assert.equal((await engineA.submitTransfers(null, [transfer("fund2", "bank", "funded2", 100n)]))[0]!.result, "created");
  await dbA.kysely.insertInto("outbox_events").values({ id: "evt_taken", type: "test", created_at: 1n, data: "{}" } as never).execute();
  const { errors, optimistic, first: handedOver, restore } = orderBatches(engineA, "doomed-70", async () => {});
  // A unit of work whose write fails at commit (its outbox id exists): its transfer never happens.
  const doomed = engineA.submitTransfers(null, [transfer("doomed-70", "funded2", "other", 70n)], async (tx) => {
    await tx.insertInto("outbox_events").values({ id: "evt_taken", type: "test", created_at: 2n, data: "{}" } as never).execute();
  });
  await handedOver;
  // Prepared as if 70 were spent (30 left): must be redone with the full 100.
  const afterIt = engineA.submitTransfers(null, [transfer("after-50", "funded2", "other", 50n)]);
  await assert.rejects(doomed, /duplicate key|unique/i);
  assert.equal((await afterIt)[0]!.result, "created");
  assert.equal(optimistic[0], true, "the second batch was first prepared without the lock");
  assert.ok(errors.some((e) => e instanceof VersionConflictError && e.stale), "the batch on top was refused as doomed");
  restore();
  assert.deepEqual(await balance("funded2"), { debits: 50n, credits: 100n });
  const row = await dbA.kysely.selectFrom("ledger_transfers").select("id").where("id", "=", "doomed-70").executeTakeFirst();
  assert.equal(row, undefined);
});

test("a commit that fails while the next batch is loading its accounts: that batch is redone, not answered from a cleared cache", async () => {
  // A fresh engine: its cache holds only what its own batches loaded.
  const dbC = openDatabase(database.url);
  const engineC = new PostingEngine(createLedgerStore(dbC, { lease: false, writerThread: false }), systemClock, defaultLimits, undefined, "postgres");
  try {
    await engineA.createAccounts(null, [account("third", "credit")]);
    assert.equal((await engineC.submitTransfers(null, [transfer("warm", "bank", "other", 1n)]))[0]!.result, "created");
    const store = (engineC as unknown as { store: StoreInternals & { session(...args: unknown[]): Record<string, unknown> } }).store;
    const commit = store.commit.bind(store);
    const write = store.write.bind(store);
    const session = store.session.bind(store);
    let releaseFailing!: () => void;
    const failingMayWrite = new Promise<void>((resolve) => (releaseFailing = resolve));
    let markFailed!: () => void;
    const failed = new Promise<void>((resolve) => (markFailed = resolve));
    let failingSeq: number | null = null;
    let wrapNextSession = false;
    store.commit = (epoch, locked, w) => {
      const result = commit(epoch, locked, w);
      if (failingSeq === null && w.transfers.some((t) => t.id === "fails-at-commit")) {
        failingSeq = (store as unknown as { seq: number }).seq;
        wrapNextSession = true;
      }
      return result;
    };
    store.write = async (seq, epoch, locked, w, steps) => {
      if (seq !== failingSeq) return write(seq, epoch, locked, w, steps);
      await failingMayWrite;
      try {
        return await write(seq, epoch, locked, w, steps);
      } finally {
        markFailed();
      }
    };
    store.session = (...args) => {
      const s = session(...args);
      if (wrapNextSession) {
        wrapNextSession = false;
        const loadAccounts = s.loadAccounts as (ids: Iterable<string>) => Promise<unknown>;
        // The batch below fails (and the engine forgets its cache) while this one loads.
        s.loadAccounts = async (ids: Iterable<string>) => {
          releaseFailing();
          await failed;
          await new Promise((resolve) => setImmediate(resolve));
          return loadAccounts(ids);
        };
      }
      return s;
    };
    await dbA.kysely.insertInto("outbox_events").values({ id: "evt_taken_2", type: "test", created_at: 1n, data: "{}" } as never).execute();
    const failing = engineC.submitTransfers(null, [transfer("fails-at-commit", "bank", "other", 1n)], async (tx) => {
      await tx.insertInto("outbox_events").values({ id: "evt_taken_2", type: "test", created_at: 2n, data: "{}" } as never).execute();
    });
    await new Promise<void>((resolve) => {
      const poll = () => (failingSeq !== null ? resolve() : setImmediate(poll));
      poll();
    });
    // Needs "third", which engine C has never loaded; "bank" is in its cache until the failure.
    const next = engineC.submitTransfers(null, [transfer("after-reset", "bank", "third", 7n)]);
    await assert.rejects(failing, /duplicate key|unique/i);
    assert.equal((await next)[0]!.result, "created");
    store.commit = commit;
    store.write = write;
    store.session = session;
    assert.deepEqual(await balance("third"), { debits: 0n, credits: 7n });
  } finally {
    await engineC.close();
    await dbC.close();
  }
});

test("binary COPY refuses a value its column cannot hold instead of wrapping it", async () => {
  const { CopyBinaryWriter } = await import("../../src/db/pg-copy.ts");
  const out = new CopyBinaryWriter(16);
  assert.throws(() => out.int4(2 ** 31), RangeError);
  assert.throws(() => out.int4(1.5), RangeError);
  assert.throws(() => out.int8(2n ** 63n), RangeError);
  out.row(2);
  out.int4(-(2 ** 31));
  out.int8(-(2n ** 63n));
  assert.ok(out.finish().length > 19);
});

test("transfers written by COPY read back exactly: text of any kind, nulls, 64-bit balances", async () => {
  const reference = "tab\there\nnewline\\backslash ü 😀 \\N";
  const metadata = '{"a":"\\u0000\\t","b":[1,2]}';
  await engineA.createAccounts(null, [account("copy-debit", "debit"), account("copy-credit", "credit")]);
  const t = { ...transfer("copy-text", "copy-debit", "copy-credit", 4_503_599_627_370_496n), reference, metadata, pending: true, timeoutSeconds: 60 };
  assert.equal((await engineA.submitTransfers(null, [t]))[0]!.result, "created");
  const row = await dbA.kysely.selectFrom("ledger_transfers").selectAll().where("id", "=", "copy-text").executeTakeFirstOrThrow();
  assert.equal(row.reference, reference);
  assert.equal(row.metadata, metadata);
  assert.equal(BigInt(row.amount), 4_503_599_627_370_496n);
  assert.equal(BigInt(row.dr_debits_pending), 4_503_599_627_370_496n);
  assert.equal(row.status, "pending");
  assert.equal(row.resolved_at, null);
  assert.equal(row.merchant_id, null);
  assert.equal(BigInt(row.expires_at!) - BigInt(row.ts), 60_000_000n);
});
