// The ledger lease on PostgreSQL: writers of one database take turns at a lock on the
// ledger_lease table, so that each writes alone for a while, pipelined on a warm cache. These tests hold two engines
// (two stores, two pools: two "processes" as the database sees them) in one test process, with a
// lease wait far longer than any test, so that only a hand-over (never the wait's time-out) can
// let the second writer in: a busy holder hands the lease to a writer that waits, an idle holder
// lets it go, and under both at once no update is lost and the flagged account is never overdrawn.
// A holder that never lets go (a stuck process) delays the others only by the wait's bound.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../../src/ledger/model.ts";
import { createLedgerStore } from "../../src/ledger/store.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";

/** Far past any test's duration: a writer that got in was handed the lease. */
const NO_TIMEOUT_MS = 120_000;

let database: TestDatabase;
const dbs: Database[] = [];
const engines: PostingEngine[] = [];

const account = (id: string, normalBalance: "credit" | "debit", limited = false): AccountInput => ({
  id, currency: "CNY", code: 0, normalBalance, owner: null, metadata: null,
  flags: { debitsMustNotExceedCredits: limited, creditsMustNotExceedDebits: false },
});
const transfer = (id: string, debitAccountId: string, creditAccountId: string, amount: bigint): TransferInput => ({
  id, debitAccountId, creditAccountId, amount, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false,
});

function engine(leaseWaitMs = NO_TIMEOUT_MS): PostingEngine {
  const db = openDatabase(database.url);
  dbs.push(db);
  const e = new PostingEngine(createLedgerStore(db, { leaseWaitMs }), systemClock, defaultLimits, undefined, "postgres");
  engines.push(e);
  return e;
}

before(async () => {
  database = await createTestDatabase("postgres", "lease");
  const db = openDatabase(database.url);
  dbs.push(db);
  await migrate(db);
});
after(async () => {
  for (const e of engines) await e.close();
  for (const db of dbs) await db.close();
  await database.dispose();
});

async function posted(id: string): Promise<{ debits: bigint; credits: bigint }> {
  const row = await dbs[0]!.kysely.selectFrom("ledger_accounts").select(["debits_posted", "credits_posted"]).where("id", "=", id).executeTakeFirstOrThrow();
  return { debits: BigInt(row.debits_posted), credits: BigInt(row.credits_posted) };
}

async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

test("an idle holder lets the lease go: the other writer gets in at once", async () => {
  const a = engine();
  const b = engine();
  await a.createAccounts(null, [account("bank", "debit"), account("shop", "credit")]);
  assert.equal((await a.submitTransfers(null, [transfer("idle-a", "bank", "shop", 1n)]))[0]!.result, "created");
  // A is idle now (and keeps its pool): B's batch must not wait for anything of A's.
  const outcome = await withDeadline(b.submitTransfers(null, [transfer("idle-b", "bank", "shop", 2n)]), 2_000, "the second writer's transfer");
  assert.equal(outcome[0]!.result, "created");
  assert.equal((await a.submitTransfers(null, [transfer("idle-a2", "bank", "shop", 4n)]))[0]!.result, "created");
  assert.deepEqual(await posted("shop"), { debits: 0n, credits: 7n });
});

test("a busy holder hands the lease to a writer that waits, and both go on without lost updates or overdraft", async () => {
  const a = engine();
  const b = engine();
  await a.createAccounts(null, [account("fund", "debit"), account("wallet", "credit", true), account("sink", "credit")]);
  assert.equal((await a.submitTransfers(null, [transfer("top-up", "fund", "wallet", 1_500n)]))[0]!.result, "created");
  // Each request: 45 transfers that always go through, and 5 that spend from the flagged wallet.
  let stop = false;
  let serial = 0;
  const paid = { a: 0n, b: 0n };
  const spent = { a: 0n, b: 0n };
  let refused = 0;
  const request = () => Array.from({ length: 50 }, (_, i) => (i % 10 === 0 ? transfer(`spend-${serial++}`, "wallet", "sink", 3n) : transfer(`pay-${serial++}`, "fund", "sink", 1n)));
  const busy = async (e: PostingEngine, who: "a" | "b") => {
    while (!stop) {
      const inputs = request();
      (await e.submitTransfers(null, inputs)).forEach((o, i) => {
        const spend = inputs[i]!.debitAccountId === "wallet";
        if (o.result === "created") {
          if (spend) spent[who] += 3n;
          else paid[who] += 1n;
        } else if (spend && o.result === "exceeds_credits") refused++;
        else assert.fail(`unexpected result ${o.result}`);
      });
    }
  };
  // A writes without a pause, several requests in flight.
  const runningA = Promise.all(Array.from({ length: 4 }, () => busy(a, "a")));
  await new Promise((resolve) => setTimeout(resolve, 200));
  // B joins while A is never idle: it gets in by a hand-over, long before the lease wait could end.
  const outcome = await withDeadline(b.submitTransfers(null, [transfer("b-joins", "fund", "sink", 1n)]), 10_000, "the waiting writer's transfer");
  assert.equal(outcome[0]!.result, "created");
  paid.b += 1n;
  const runningB = Promise.all(Array.from({ length: 4 }, () => busy(b, "b")));
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  stop = true;
  await Promise.all([runningA, runningB]);
  assert.ok(paid.a > 0n && paid.b > 1n, `both kept writing: ${paid.a} and ${paid.b} paid`);
  // Every acknowledged transfer counted exactly once; the wallet was never overdrawn.
  const wallet = await posted("wallet");
  assert.equal(wallet.debits, spent.a + spent.b);
  assert.ok(wallet.debits <= wallet.credits, `overdrawn: ${wallet.debits} > ${wallet.credits}`);
  if (refused > 0) assert.equal(wallet.credits - wallet.debits, 0n, "spends were refused only once the wallet was empty");
  assert.equal((await posted("sink")).credits, paid.a + paid.b + spent.a + spent.b);
  assert.equal((await posted("fund")).debits, 1_500n + paid.a + paid.b);
});

test("a holder that never lets go delays another writer only by the lease wait; the row lock keeps it correct", async () => {
  const stuck = new pg.Client({ connectionString: database.url });
  await stuck.connect();
  try {
    // The lease as a stuck process would hold it (store-postgres.ts).
    await stuck.query("begin; lock table ledger_lease in exclusive mode");
    const c = engine(300);
    await c.createAccounts(null, [account("stuck-in", "debit"), account("stuck-out", "credit")]);
    const started = performance.now();
    const outcome = await withDeadline(c.submitTransfers(null, [transfer("past-stuck", "stuck-in", "stuck-out", 9n)]), 5_000, "a transfer past a stuck holder");
    assert.equal(outcome[0]!.result, "created");
    assert.ok(performance.now() - started >= 250, "it waited for the lease first");
    assert.deepEqual(await posted("stuck-out"), { debits: 0n, credits: 9n });
  } finally {
    await stuck.end();
  }
});

test("a writer waiting for the lease holds no snapshot, so the holder's account updates stay HOT", async () => {
  const holder = new pg.Client({ connectionString: database.url });
  await holder.connect();
  try {
    const c = engine();
    await c.createAccounts(null, [account("snap-in", "debit"), account("snap-out", "credit")]);
    await holder.query("begin; lock table ledger_lease in exclusive mode");
    const waiting = c.submitTransfers(null, [transfer("snap-1", "snap-in", "snap-out", 1n)]);
    // Its connection waits on the lease's lock, and holds back no row version meanwhile.
    let waiters: Array<{ backend_xmin: string | null }> = [];
    for (let i = 0; i < 200 && waiters.length === 0; i++) {
      waiters = (
        await holder.query(
          `select a.backend_xmin from pg_stat_activity a join pg_locks l on l.pid = a.pid
            where not l.granted and l.locktype = 'relation' and l.relation = 'ledger_lease'::regclass`,
        )
      ).rows;
      if (waiters.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(waiters.length, 1, "the writer waits for the lease");
    assert.equal(waiters[0]!.backend_xmin, null);
    await holder.query("commit");
    assert.equal((await withDeadline(waiting, 10_000, "the waiting writer"))[0]!.result, "created");
  } finally {
    await holder.end();
  }
});
