// A Tally ledger that commits transfers until a commit fails, for test/ledger/wal-monitor.test.ts,
// which starts it under a file size limit (prlimit --fsize): the database file reaches the limit
// first, so WAL checkpoints fail while commits into the WAL still succeed, until the WAL reaches
// it too. Prints, as one JSON line, every commit's outcome and every checkpoint report, in order.
import { openDatabase } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { systemClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../../src/ledger/model.ts";
import { SqliteLedgerStore } from "../../src/ledger/store-sqlite.ts";

type Event = { kind: "wal"; frames: number; checkpointed: number; error: string | null } | { kind: "commit"; ok: boolean; error?: string };

const db = openDatabase(`sqlite:${process.argv[2]}`);
await migrate(db);
const store = new SqliteLedgerStore(db);
const events: Event[] = [];
store.listen({ wal: (wal) => events.push({ kind: "wal", ...wal }) });
const engine = new PostingEngine(store, systemClock, defaultLimits, undefined, "sqlite");
const account = (id: string, normalBalance: "debit" | "credit"): AccountInput => ({
  id, currency: "CNY", code: 0, normalBalance, flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null,
});
await engine.createAccounts(null, [account("bank", "debit"), account("shop", "credit")]);
let n = 0;
const transfer = (): TransferInput => ({
  id: `fault-${n++}`, debitAccountId: "bank", creditAccountId: "shop", amount: 1n, currency: "CNY", code: 0, pending: false, timeoutSeconds: 0, linked: false,
  reference: "x".repeat(100),
});
for (let i = 0; i < 5000; i++) {
  try {
    const outcomes = await engine.submitTransfers(null, Array.from({ length: 100 }, transfer));
    events.push({ kind: "commit", ok: outcomes.every((o) => o.result === "created") });
  } catch (error) {
    events.push({ kind: "commit", ok: false, error: (error as Error).message });
    break;
  }
}
process.stdout.write(`${JSON.stringify(events)}\n`);
// Closed as Tally closes it, with checkpoints failing: the process must end on its own, cleanly.
await engine.close();
await db.close();
