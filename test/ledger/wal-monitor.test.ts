// WAL checkpoints that cannot do their work are loud and lose nothing. The SQLite writer copies
// the write-ahead log into the database file about every 1000 frames and reports what each
// checkpoint left; WalMonitor turns the reports into metrics and log lines. Two real ways a
// checkpoint falls behind: a reader holding an old snapshot (the frames after it cannot be copied)
// and a disk that refuses the database file's writes (a file size limit, in a child process).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import { openDatabase } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { defaultLimits } from "../../src/kernel/config.ts";
import { PostingEngine } from "../../src/ledger/engine.ts";
import type { AccountInput, TransferInput } from "../../src/ledger/model.ts";
import type { WalReport } from "../../src/ledger/sqlite-writer-worker.ts";
import { SqliteLedgerStore } from "../../src/ledger/store-sqlite.ts";
import { WalMonitor } from "../../src/ledger/wal-monitor.ts";
import { createLogger } from "../../src/ops/logger.ts";
import { MetricsRegistry } from "../../src/ops/metrics.ts";
import { createTestDatabase } from "../support/databases.ts";

type LogLine = { level: number; msg: string; walFrames?: number; walBacklogFrames?: number; checkpointFailures?: number; error?: string };

function captureLogger() {
  const lines: LogLine[] = [];
  const logger = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

function metric(registry: MetricsRegistry, name: string): number {
  const line = registry.render().split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is exported`);
  return Number(line.slice(name.length + 1));
}

const account = (id: string, normalBalance: "debit" | "credit"): AccountInput => ({
  id, currency: "CNY", code: 0, normalBalance, flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null,
});

test("a reader holding an old snapshot: the WAL's backlog is reported and warned about once, and clears when the reader lets go", async () => {
  const database = await createTestDatabase("sqlite", "wal");
  const db = openDatabase(database.url);
  await migrate(db);
  const store = new SqliteLedgerStore(db);
  const { logger, lines } = captureLogger();
  const registry = new MetricsRegistry();
  const clock = new ManualClock();
  const monitor = new WalMonitor({ logger, registry, backlogWarnFrames: 1500, nowMs: () => clock.nowMs() });
  const reports: Array<WalReport["wal"]> = [];
  store.listen({
    wal: (r) => {
      reports.push(r);
      monitor.report(r);
    },
  });
  const engine = new PostingEngine(store, clock, defaultLimits, undefined, "sqlite");
  const reader = new BetterSqlite3(db.sqlitePath!, { readonly: true });
  try {
    await engine.createAccounts(null, [account("bank", "debit"), account("shop", "credit")]);
    let n = 0;
    const batch = () =>
      Array.from({ length: 100 }, (): TransferInput => ({
        id: `snap-${n++}`, debitAccountId: "bank", creditAccountId: "shop", amount: 1n, currency: "CNY", code: 0, pending: false, timeoutSeconds: 0, linked: false,
      }));
    // A read transaction's snapshot: frames written after it cannot be copied while it is open.
    reader.exec("begin");
    const seen = reader.prepare("select count(*) as n from ledger_transfers").get() as { n: number };
    assert.equal(seen.n, 0);
    for (let i = 0; i < 400 && monitor.backlog < 2500; i++) {
      const outcomes = await engine.submitTransfers(null, batch());
      assert.ok(outcomes.every((o) => o.result === "created"));
    }
    assert.ok(monitor.backlog >= 2500, `the backlog reached ${monitor.backlog} frames`);
    const last = reports.at(-1)!;
    assert.equal(last.error, null);
    assert.ok(last.checkpointed < last.frames, `only ${last.checkpointed} of ${last.frames} frames copied`);
    assert.equal(metric(registry, "tally_ledger_sqlite_wal_backlog_frames"), last.frames - last.checkpointed);
    assert.equal(metric(registry, "tally_ledger_sqlite_wal_frames"), last.frames);
    // One warning while it lasts (the clock has not moved past the repeat interval).
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /cannot keep up/);
    assert.ok(warnings[0]!.walBacklogFrames! >= 1500);
    // The same snapshot still sees none of the new rows: nothing it reads has moved under it.
    assert.equal((reader.prepare("select count(*) as n from ledger_transfers").get() as { n: number }).n, 0);

    reader.exec("commit");
    for (let i = 0; i < 10 && monitor.backlog > 0; i++) await engine.submitTransfers(null, batch());
    assert.equal(monitor.backlog, 0);
    assert.equal(metric(registry, "tally_ledger_sqlite_wal_backlog_frames"), 0);
    assert.ok(lines.some((l) => l.level === 30 && /caught up/.test(l.msg)), "the recovery is logged");
    assert.equal(metric(registry, "tally_ledger_sqlite_checkpoint_failures_total"), 0);
    assert.equal((reader.prepare("select count(*) as n from ledger_transfers").get() as { n: number }).n, n);
  } finally {
    reader.close();
    await engine.close();
    await db.close();
    await database.dispose();
  }
});

test("checkpoints failing on a disk that refuses the database file's writes: reported and logged, commits go on, nothing is lost", async () => {
  const database = await createTestDatabase("sqlite", "walfault");
  const path = fileURLToPath(new URL(database.url.replace(/^sqlite:/, "file://")));
  try {
    // The database file may not grow past 8 MB (nor may the WAL): checkpoints fail first, while
    // commits still go into the WAL, until it reaches the limit too.
    const output = execFileSync(
      "prlimit",
      ["--fsize=8000000", process.execPath, "--import", "tsx", fileURLToPath(new URL("../support/wal-fault-child.ts", import.meta.url)), path],
      { encoding: "utf8", timeout: 120_000 },
    );
    type Event = ({ kind: "wal" } & WalReport["wal"]) | { kind: "commit"; ok: boolean; error?: string };
    const events = JSON.parse(output.trim()) as Event[];
    const commits = events.filter((e): e is Extract<Event, { kind: "commit" }> => e.kind === "commit");
    const reports = events.filter((e): e is Extract<Event, { kind: "wal" }> => e.kind === "wal");
    const firstFailure = events.findIndex((e) => e.kind === "wal" && e.error !== null);
    assert.ok(firstFailure > 0, "a checkpoint failed");
    assert.ok(reports.some((r) => r.error === null), "checkpoints succeeded before the file reached the limit");
    const failed = reports.filter((r) => r.error !== null);
    for (const r of failed) assert.match(r.error!, /SQLITE_(IOERR|FULL)/);
    // Commits went on after the first failed checkpoint, and the WAL grew past the mark meanwhile.
    assert.ok(events.slice(firstFailure).some((e) => e.kind === "commit" && e.ok), "commits succeed while checkpoints fail");
    assert.ok(failed.at(-1)!.frames > failed[0]!.frames + 100, `the WAL grew from ${failed[0]!.frames} to ${failed.at(-1)!.frames} frames`);
    // Then the WAL reached the limit too: that commit failed, and said so.
    assert.deepEqual(commits.slice(0, -1).filter((c) => !c.ok), []);
    assert.equal(commits.at(-1)!.ok, false);

    // Every acknowledged transfer is in the database, read back without the limit.
    const check = new BetterSqlite3(path, { readonly: true });
    try {
      const stored = (check.prepare("select count(*) as n from ledger_transfers").get() as { n: number }).n;
      assert.equal(stored, 100 * (commits.length - 1));
    } finally {
      check.close();
    }

    // The monitor makes the reports loud: one error line per failing spell, a counter per failure.
    const { logger, lines } = captureLogger();
    const registry = new MetricsRegistry();
    const monitor = new WalMonitor({ logger, registry, backlogWarnFrames: defaultLimits.sqliteWalBacklogWarnFrames, nowMs: () => 0 });
    for (const r of reports) monitor.report(r);
    const errors = lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.msg, /checkpoint failed/);
    assert.match(errors[0]!.error!, /SQLITE_(IOERR|FULL)/);
    assert.equal(metric(registry, "tally_ledger_sqlite_checkpoint_failures_total"), failed.length);
    assert.equal(metric(registry, "tally_ledger_sqlite_wal_backlog_frames"), failed.at(-1)!.frames - failed.at(-1)!.checkpointed);
  } finally {
    await database.dispose();
  }
});

test("while a condition lasts it is logged again once a minute, not per report; its end is logged once", () => {
  const { logger, lines } = captureLogger();
  const registry = new MetricsRegistry();
  let now = 0;
  const monitor = new WalMonitor({ logger, registry, backlogWarnFrames: 5000, nowMs: () => now });
  const failing = { frames: 3000, checkpointed: 1000, error: "SQLITE_IOERR_WRITE: disk I/O error" };
  for (let i = 0; i < 50; i++, now += 1000) monitor.report(failing); // 50 s of failing checkpoints
  assert.equal(lines.filter((l) => l.level === 50).length, 1);
  for (let i = 0; i < 20; i++, now += 1000) monitor.report(failing); // past the minute
  assert.equal(lines.filter((l) => l.level === 50).length, 2);
  // Logged at the first failure (t = 0 s) and again at the 61st (t = 60 s), which it counts.
  assert.deepEqual(lines.filter((l) => l.level === 50).map((l) => l.checkpointFailures), [1, 61]);
  assert.equal(metric(registry, "tally_ledger_sqlite_checkpoint_failures_total"), 70);
  // Succeeding again, with a backlog past the mark: the recovery, then one warning.
  for (let i = 0; i < 30; i++, now += 1000) monitor.report({ frames: 9000, checkpointed: 1000 + i, error: null });
  assert.equal(lines.filter((l) => l.level === 30 && /succeed again/.test(l.msg)).length, 1);
  assert.equal(lines.filter((l) => l.level === 40).length, 1);
  assert.equal(monitor.backlog, 9000 - 1029);
  monitor.report({ frames: 9000, checkpointed: 9000, error: null });
  assert.equal(lines.filter((l) => l.level === 30 && /caught up/.test(l.msg)).length, 1);
  assert.equal(metric(registry, "tally_ledger_sqlite_wal_backlog_frames"), 0);
  // A failing NOOP (no figures) leaves the last figures as they were.
  monitor.report({ frames: -1, checkpointed: -1, error: "SQLITE_IOERR_READ: disk I/O error" });
  assert.equal(metric(registry, "tally_ledger_sqlite_wal_frames"), 9000);
});
