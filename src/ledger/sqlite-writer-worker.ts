// The SQLite writer thread. It owns the connection that commits engine batches, so the fsync of
// every commit (synchronous=FULL) happens here and never blocks the event loop that serves HTTP.
// Batches arrive in order. Every batch waiting when the thread turns to the queue is written in
// one transaction (one fsync for all of them: group commit at the disk): check each batch's ledger
// version, insert its rows, run the unit of work's recorded statements. When a batch fails, the
// transaction is rolled back and written again with each batch inside its own savepoint, so the
// failing batch rolls back alone; the ones after it then fail their version check, as they were
// prepared on top of it. Account balances are written last, once per account for the whole
// transaction, as the batches that succeeded left them: an account touched by every batch (the
// platform's fee account) costs one UPDATE per commit, not per batch.
import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";
import { ACCOUNT_COLUMNS, SQLITE_TRANSFER_COLUMNS } from "./rows.ts";
import { TransferRowReader, forEachBalanceId, readBalance, type BalanceColumns, type TransferColumns } from "./sqlite-rows-codec.ts";

export interface WriterBatch {
  readonly seq: number;
  readonly expectVersion: bigint;
  readonly version: bigint;
  readonly lastTs: bigint;
  readonly accounts: unknown[][];
  readonly transfers: TransferColumns;
  readonly holds: Array<[string, string, bigint | null]>;
  readonly balances: BalanceColumns;
  readonly checkpoints: Array<[string, bigint]>;
  readonly statements: Array<{ sql: string; parameters: unknown[] }>;
  readonly events: ReadonlyArray<readonly [string, string, bigint, string]>;
}

export type WriterReply =
  | { seq: number; ok: true }
  | { seq: number; ok: false; conflict: boolean; message: string; code?: string };

/** Asks the writer to close its connection and end; it is the last message on the port. */
export interface WriterClose {
  readonly close: true;
}

/**
 * What a WAL checkpoint left, posted after each one the writer runs (about once per 1000 frames
 * written while checkpoints keep up; after every commit while they do not): the WAL's frames, how
 * many of them are copied into the database file, and the error when the checkpoint failed.
 * Frames not copied stay in the WAL, which grows until a checkpoint gets through: a reader holding
 * an old snapshot, or a disk that refuses the database file's writes, shows here long before the
 * disk fills.
 */
export interface WalReport {
  readonly wal: { readonly frames: number; readonly checkpointed: number; readonly error: string | null };
}

const { path, port } = workerData as { path: string; port: MessagePort };
/** Batches written in one transaction at most. */
const BATCHES_PER_COMMIT_MAX = 64;
const db = new BetterSqlite3(path);
db.defaultSafeIntegers(true);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.pragma("busy_timeout = 5000");
// As large a page cache as the main connections': every batch rewrites thousands of account
// rows, and with the default 2 MB the appended transfer pages evicted them between batches.
db.pragma("cache_size = -65536");
/**
 * WAL checkpoints run after a transaction's replies are posted, not inside its COMMIT. SQLite's
 * automatic checkpoint (once the WAL holds 1000 frames) runs within the commit statement that
 * passes the mark, so every ~46th small commit took ~1.3 ms instead of ~0.2 ms and its requests
 * waited for pages being copied to the database file (docs/benchmarks.md, session 15). The
 * writer now asks the WAL's size (a NOOP checkpoint, SQLite 3.51 and later) after each reply and
 * checkpoints past the same mark; an older SQLite keeps the automatic checkpoint.
 */
const WAL_CHECKPOINT_FRAMES = 1000n;
const [major, minor] = (db.prepare("select sqlite_version() as v").get() as { v: string }).v.split(".").map(Number) as [number, number];
const walSize = major > 3 || (major === 3 && minor >= 51) ? db.prepare("pragma wal_checkpoint(NOOP)") : null;
const walCheckpoint = db.prepare("pragma wal_checkpoint(PASSIVE)");
if (walSize) db.pragma("wal_autocheckpoint = 0");

/**
 * Copies the WAL into the database file when it holds the mark's frames and some are not copied
 * yet (as SQLite's own automatic checkpoint decides), and reports what it left (WalReport).
 * PASSIVE: never waits for readers; frames a reader still needs are copied by a later call. A
 * failed checkpoint loses nothing (the frames stay in the WAL) and the next commit tries again, so
 * it is not a failure of the commit; it is reported, and the main thread makes it loud.
 */
function checkpointIfDue(): void {
  if (!walSize) return;
  let wal: { log: bigint; checkpointed: bigint };
  try {
    wal = walSize.get() as { log: bigint; checkpointed: bigint };
  } catch (error) {
    port.postMessage({ wal: { frames: -1, checkpointed: -1, error: messageOf(error) } } satisfies WalReport);
    return;
  }
  if (wal.log < WAL_CHECKPOINT_FRAMES || wal.checkpointed >= wal.log) return;
  let report: WalReport;
  try {
    const after = walCheckpoint.get() as { log: bigint; checkpointed: bigint };
    report = { wal: { frames: Number(after.log), checkpointed: Number(after.checkpointed), error: null } };
  } catch (error) {
    report = { wal: { frames: Number(wal.log), checkpointed: Number(wal.checkpointed), error: messageOf(error) } };
  }
  port.postMessage(report);
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as Error & { code?: string }).code;
  return code ? `${code}: ${error.message}` : error.message;
}

const placeholders = (n: number) => `(${new Array(n).fill("?").join(",")})`;
const tcols = SQLITE_TRANSFER_COLUMNS.join(",");
/**
 * A batch's transfer rows go in the fewest INSERTs: statements of 64, 32, 16, … 1 rows, each with
 * its own array of values. Rows one per statement cost ~0.8 µs more each than 32 per statement
 * (docs/benchmarks.md, session 9), and small batches (requests of one transfer, gathered) had
 * every row in a statement of its own.
 */
const transferInserts = [64, 32, 16, 8, 4, 2, 1].map((rows) => ({
  rows,
  statement: db.prepare(`insert into ledger_transfers (${tcols}) values ${new Array(rows).fill(placeholders(SQLITE_TRANSFER_COLUMNS.length)).join(",")}`),
  values: new Array<unknown>(rows * SQLITE_TRANSFER_COLUMNS.length),
}));
const ACCOUNT_FIELDS = 9; // ACCOUNT_COLUMNS up to created_at; the six after are its balances
const insertAccountRow = db.prepare(
  `insert into ledger_account_rows (${ACCOUNT_COLUMNS.slice(0, ACCOUNT_FIELDS).join(",")}) values ${placeholders(ACCOUNT_FIELDS)}`,
);
const insertBalanceRow = db.prepare(
  `insert into ledger_balances (seq, ${ACCOUNT_COLUMNS.slice(ACCOUNT_FIELDS).join(",")}) values ${placeholders(1 + ACCOUNT_COLUMNS.length - ACCOUNT_FIELDS)}`,
);
// Balances live in their own narrow table (migration 0008), written by the account's integer
// seq, found once per account and remembered: a lookup by the text key costs a quarter of each
// update. VACUUM keeps an INTEGER PRIMARY KEY, and this thread is the only one that inserts
// accounts, so a remembered seq is wrong only after a rollback here undid the insert that made
// it (and a later insert may take the same seq): every rollback forgets them all.
const updateBalanceAt = db.prepare(
  "update ledger_balances set debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?, last_ts = ?, transfer_count = ? where seq = ?",
);
const selectAccountSeq = db.prepare("select seq from ledger_account_rows where id = ?").pluck();
const accountSeqs = new Map<string, bigint>();
/** Accounts whose seq is remembered at most; past this the map starts over. */
const ACCOUNT_SEQS_MAX = 1_000_000;

function remember(id: string, seq: bigint): void {
  if (accountSeqs.size >= ACCOUNT_SEQS_MAX) accountSeqs.clear();
  accountSeqs.set(id, seq);
}

function insertAccount(a: unknown[]): void {
  const seq = BigInt(insertAccountRow.run(...a.slice(0, ACCOUNT_FIELDS)).lastInsertRowid);
  insertBalanceRow.run(seq, ...a.slice(ACCOUNT_FIELDS));
  remember(a[0] as string, seq);
}

function seqOf(id: string): bigint {
  let seq = accountSeqs.get(id);
  if (seq === undefined) {
    seq = selectAccountSeq.get(id) as bigint | undefined;
    if (seq === undefined) throw new Error(`ledger account ${id} is not in the database`);
    remember(id, seq);
  }
  return seq;
}
const updateHold = db.prepare("update ledger_transfers set status = ?, resolved_at = ? where id = ?");
const insertCheckpoint = db.prepare("insert into ledger_checkpoints (account_id, ts) values (?, ?)");
const selectVersion = db.prepare("select version from ledger_state where id = 1");
const updateState = db.prepare("update ledger_state set last_ts = ?, version = ? where id = 1");
const insertEvent = db.prepare("insert into outbox_events (id, type, created_at, data) values (?, ?, ?, ?)");
const statementCache = new Map<string, BetterSqlite3.Statement>();

class Conflict extends Error {}

function applyBatch(b: WriterBatch): void {
  const current = (selectVersion.get() as { version: bigint }).version;
  if (current !== b.expectVersion) throw new Conflict(`ledger version ${current}, batch expected ${b.expectVersion}`);
  for (const a of b.accounts) insertAccount(a);
  const rows = new TransferRowReader(b.transfers);
  const width = SQLITE_TRANSFER_COLUMNS.length;
  const count = b.transfers.count;
  let i = 0;
  for (let k = 0; k < transferInserts.length; k++) {
    const insert = transferInserts[k]!;
    for (; i + insert.rows <= count; i += insert.rows) {
      for (let j = 0; j < insert.rows; j++) rows.read(i + j, insert.values, j * width);
      // The values as arguments, not as one array: better-sqlite3 reads an array's elements one
      // generic property lookup at a time, ~15 % of a row's insert (docs/benchmarks.md, session 8).
      insert.statement.run(...insert.values);
    }
  }
  for (const [id, status, resolvedAt] of b.holds) updateHold.run(status, resolvedAt, id);
  for (const [accountId, ts] of b.checkpoints) insertCheckpoint.run(accountId, ts);
  if (b.version !== b.expectVersion) updateState.run(b.lastTs, b.version);
  for (const e of b.events) insertEvent.run(...e);
  for (const s of b.statements) {
    let stmt = statementCache.get(s.sql);
    if (!stmt) {
      stmt = db.prepare(s.sql);
      if (statementCache.size < 256) statementCache.set(s.sql, stmt);
    }
    stmt.run(...s.parameters);
  }
}

const beginImmediate = db.prepare("begin immediate");
const commit = db.prepare("commit");
const savepoint = db.prepare("savepoint batch");
const release = db.prepare("release batch");
const rollbackTo = db.prepare("rollback to batch");

function failure(seq: number, error: unknown): WriterReply {
  const e = error as Error & { code?: string };
  return { seq, ok: false, conflict: error instanceof Conflict, message: e.message, code: e.code };
}

/**
 * Balances the transaction's batches left, written once per account when they are all in: each
 * batch that succeeds adds its rows (a later batch's row for an account replaces an earlier one's)
 * and a batch that fails adds none. Per account, the batch index * ROW_SPAN + row number.
 *
 * The slots outlive the transaction. A Map cleared after every commit was grown again from empty
 * by the next one, and a commit of the bench's batches touches ~16 000 accounts: its hash tables
 * of that size are large objects, which V8 places on pages fresh from the kernel, and they were
 * about an eighth of the engine process's page faults (docs/benchmarks.md, session 16).
 */
class FinalBalances {
  private readonly slots = new Map<string, { commit: number; code: number }>();
  /** This transaction's accounts in order of first touch, and their slots; `count` of them. */
  private readonly ids: string[] = [];
  private readonly touched: Array<{ commit: number; code: number }> = [];
  private count = 0;
  private commit = 0;

  begin(): void {
    this.commit++;
    this.count = 0;
    if (this.slots.size >= ACCOUNT_SEQS_MAX) this.slots.clear();
  }

  set(id: string, code: number): void {
    let slot = this.slots.get(id);
    if (slot === undefined) this.slots.set(id, (slot = { commit: 0, code: 0 }));
    if (slot.commit !== this.commit) {
      slot.commit = this.commit;
      this.ids[this.count] = id;
      this.touched[this.count++] = slot;
    }
    slot.code = code;
  }

  forEach(each: (id: string, code: number) => void): void {
    for (let i = 0; i < this.count; i++) each(this.ids[i]!, this.touched[i]!.code);
  }

  /** Forgets this transaction's balances (its slots stay, for the next one to reuse). */
  end(): void {
    this.commit++;
    this.count = 0;
  }
}

const finalBalances = new FinalBalances();
const ROW_SPAN = 2 ** 20;
/** Bind values of one balance UPDATE: the six balances, then the account's seq. */
const balanceValues: unknown[] = new Array(7);

function writeBalance(batches: WriterBatch[], id: string, code: number): void {
  readBalance(batches[Math.floor(code / ROW_SPAN)]!.balances, code % ROW_SPAN, id, balanceValues);
  balanceValues[6] = seqOf(id);
  if (updateBalanceAt.run(...balanceValues).changes !== 1) throw new Error(`ledger account ${id} has no balance row`);
}

function writeBalances(batches: WriterBatch[]): void {
  finalBalances.forEach((id, code) => writeBalance(batches, id, code));
}

function checkSize(b: WriterBatch): void {
  if (b.balances.count >= ROW_SPAN) throw new Error(`a batch of ${b.balances.count} balance rows is past the writer's ${ROW_SPAN}`);
}

/**
 * Every batch, with no savepoints; throws at the first that fails, and the caller rolls back. A
 * savepoint makes SQLite copy every page the batch changes into a statement journal (in memory up
 * to 64 KB, then a temporary file, created and deleted each time), which only a failing batch
 * needs. Under requests of one transfer the writer commits one batch of ~30 at a time, and the
 * journal was ~17 pages per commit, every tenth one spilling to a file (docs/benchmarks.md,
 * session 17). A single batch's balance rows are written as they are (the engine lists each
 * account once per batch); batches together go through FinalBalances.
 */
function applyAll(batches: WriterBatch[]): WriterReply[] {
  if (batches.length === 1) {
    const b = batches[0]!;
    checkSize(b);
    applyBatch(b);
    forEachBalanceId(b.balances, (id, row) => writeBalance(batches, id, row));
    return [{ seq: b.seq, ok: true }];
  }
  batches.forEach((b, index) => {
    checkSize(b);
    applyBatch(b);
    forEachBalanceId(b.balances, (id, row) => finalBalances.set(id, index * ROW_SPAN + row));
  });
  writeBalances(batches);
  return batches.map((b) => ({ seq: b.seq, ok: true }));
}

/** Each batch in a savepoint of its own: one that fails rolls back alone. */
function applyEach(batches: WriterBatch[]): WriterReply[] {
  const replies: WriterReply[] = [];
  batches.forEach((b, index) => {
    savepoint.run();
    try {
      checkSize(b);
      applyBatch(b);
      release.run();
      replies.push({ seq: b.seq, ok: true });
      forEachBalanceId(b.balances, (id, row) => finalBalances.set(id, index * ROW_SPAN + row));
    } catch (error) {
      rollbackTo.run();
      release.run();
      accountSeqs.clear();
      replies.push(failure(b.seq, error));
    }
  });
  writeBalances(batches);
  return replies;
}

/** Rolls back the open transaction, if any; a remembered seq may come from an insert it undid. */
function rollback(): void {
  if (db.inTransaction) db.exec("rollback");
  accountSeqs.clear();
}

/**
 * One transaction for `batches`: all of them without savepoints first (applyAll); when one fails,
 * the transaction is rolled back and written again with a savepoint per batch (applyEach), so the
 * failure costs its own batch (and those prepared on top of it) and the others commit.
 */
function writeAll(batches: WriterBatch[]): WriterReply[] {
  let replies = begin(batches);
  if (replies !== null) return replies;
  finalBalances.begin();
  try {
    replies = applyAll(batches);
  } catch {
    rollback();
    finalBalances.begin(); // forgets what the failed attempt set
    const failed = begin(batches);
    if (failed !== null) return failed;
  }
  try {
    replies ??= applyEach(batches);
    // If the balances or the commit fail, nothing of the transaction was written.
    commit.run();
  } catch (error) {
    rollback();
    return batches.map((b) => failure(b.seq, error));
  } finally {
    finalBalances.end();
  }
  return replies;
}

/** Opens the transaction: null, or every batch's failure when that cannot be done. */
function begin(batches: WriterBatch[]): WriterReply[] | null {
  try {
    // "immediate": take the write lock at BEGIN, so the commit never fails on lock upgrade.
    beginImmediate.run();
    return null;
  } catch (error) {
    return batches.map((b) => failure(b.seq, error));
  }
}

port.on("message", (first: WriterBatch | WriterClose) => {
  if ("close" in first) return closeWriter();
  const batches = [first];
  let closing = false;
  while (batches.length < BATCHES_PER_COMMIT_MAX) {
    const next = receiveMessageOnPort(port);
    if (!next) break;
    if ("close" in next.message) {
      closing = true;
      break;
    }
    batches.push(next.message as WriterBatch);
  }
  port.postMessage(writeAll(batches));
  if (closing) return closeWriter();
  checkpointIfDue();
});

/**
 * Closes the connection (SQLite checkpoints on close when it can) and the port: with nothing left
 * to wait for, the thread ends. A failing close loses nothing either: the WAL keeps what the
 * database file lacks, and the next connection to open the file reads it.
 */
function closeWriter(): void {
  try {
    db.close();
  } catch {
    // See above.
  }
  port.close();
}
