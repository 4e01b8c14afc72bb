// Tally's posting engine in-process: transfers per second with full ledger semantics
// (validation, history with balance_after, idempotency by id, outbox), at a given request size,
// over uniform accounts or with one hot account on every transfer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Database } from "../src/db/database.ts";
import { migrate } from "../src/db/migrations.ts";
import { systemClock } from "../src/kernel/clock.ts";
import { defaultLimits } from "../src/kernel/config.ts";
import { PostingEngine } from "../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../src/ledger/model.ts";
import { createLedgerStore } from "../src/ledger/store.ts";

export const BENCH_ACCOUNTS = 10_000;

export interface EngineBench {
  readonly engine: PostingEngine;
  readonly db: Database;
  close(): Promise<void>;
}

export async function openEngine(databaseUrl: string | null): Promise<EngineBench> {
  let dir: string | null = null;
  if (!databaseUrl) {
    dir = mkdtempSync(join(tmpdir(), "tally-bench-"));
    databaseUrl = `sqlite:${join(dir, "tally.db")}`;
  }
  const db = openDatabase(databaseUrl);
  await migrate(db);
  const engine = new PostingEngine(createLedgerStore(db), systemClock, { ...defaultLimits, engineQueueTransfersMax: 10_000_000 }, undefined, db.dialect);
  const accounts: AccountInput[] = [];
  const base = { currency: "CNY", code: 1, flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null };
  accounts.push({ ...base, id: "bank", normalBalance: "debit" }, { ...base, id: "hot", normalBalance: "debit" });
  for (let i = 0; i < BENCH_ACCOUNTS; i++) accounts.push({ ...base, id: `acct-${i}`, normalBalance: "credit" });
  for (let i = 0; i < accounts.length; i += 5000) await engine.createAccounts(null, accounts.slice(i, i + 5000));
  return {
    engine,
    db,
    async close() {
      await engine.close();
      await db.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

let sequence = 0;

export function makeTransfers(n: number, hot: boolean): TransferInput[] {
  const out: TransferInput[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = sequence++;
    const credit = `acct-${(s * 7919) % BENCH_ACCOUNTS}`;
    const debit = hot ? "hot" : `acct-${(s * 104729 + 13) % BENCH_ACCOUNTS}`;
    out[i] = {
      id: `b${process.pid}-${String(s).padStart(12, "0")}`,
      debitAccountId: debit === credit ? "bank" : debit,
      creditAccountId: credit,
      amount: 100n,
      currency: "CNY",
      code: 1,
      pending: false,
      timeoutSeconds: 0,
      linked: false,
    };
  }
  return out;
}

/**
 * Transfers a client keeps outstanding by default: four requests of the largest size. With two,
 * the SQLite pipeline's two stages (the main thread preparing a batch, the writer thread
 * committing one) waited on each other whenever their times differed: back to back, uniform
 * accounts ran at 58-68 k transfers/s with two and 64-80 k with four.
 */
export const ENGINE_IN_FLIGHT = 4 * 8190;

/**
 * Submits `total` transfers in requests of `requestSize`, keeping up to `inFlight` transfers
 * outstanding (so group commit can gather them), and returns transfers per second.
 */
export async function engineThroughput(engine: PostingEngine, total: number, requestSize: number, hot: boolean, inFlight = ENGINE_IN_FLIGHT): Promise<number> {
  const requests = Math.ceil(total / requestSize);
  const batches: TransferInput[][] = [];
  for (let i = 0; i < requests; i++) batches.push(makeTransfers(requestSize, hot));
  const maxOutstanding = Math.max(1, Math.floor(inFlight / requestSize));
  let next = 0;
  let failures = 0;
  const started = performance.now();
  async function worker(): Promise<void> {
    while (next < batches.length) {
      const outcomes = await engine.submitTransfers(null, batches[next++]!);
      for (const o of outcomes) if (o.result !== "created") failures++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(maxOutstanding, batches.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  if (failures > 0) throw new Error(`${failures} transfers failed in the benchmark`);
  return (requests * requestSize) / seconds;
}
