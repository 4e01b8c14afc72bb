// The ledger store on SQLite. Reads run on the main thread through a read-only connection;
// commits run on the writer thread (sqlite-writer-worker.ts), so the engine prepares the next
// batch while the previous one is being written and fsynced. Transfers created or resolved by
// batches still on their way to disk are kept in an overlay, so reads see them. The writer
// checks the ledger version of every batch: if one fails, every batch prepared on top of it fails
// with a VersionConflictError and is redone by the engine.
import { MessageChannel, type MessagePort, type Worker } from "node:worker_threads";
import type BetterSqlite3 from "better-sqlite3";
import type { Database } from "../db/database.ts";
import { assert } from "../kernel/assert.ts";
import { startTypeScriptWorker } from "../kernel/worker.ts";
import type { Account, Transfer } from "./model.ts";
import { accountFromRow, accountValues, transferFromRow } from "./rows.ts";
import { encodeRows } from "./sqlite-rows-codec.ts";
import type { WalReport, WriterBatch, WriterClose, WriterReply } from "./sqlite-writer-worker.ts";
import { DuplicateIdError, VersionConflictError, type BatchSession, type BatchWrites, type LedgerStore } from "./store.ts";

/** How long the writer thread may take to close its connection before it is terminated. */
const WRITER_CLOSE_TIMEOUT_MS = 10_000;
/** The delay before a writer thread that ended is replaced, doubling while they keep ending. */
const WRITER_RESTART_DELAY_MIN_MS = 100;
const WRITER_RESTART_DELAY_MAX_MS = 30_000;

/** What the writer thread reports besides commits. */
export interface SqliteStoreEvents {
  /** What a WAL checkpoint left (WalReport). */
  wal?(report: WalReport["wal"]): void;
  /** The writer thread ended without being asked; a new one starts in `restartInMs`. */
  writerDown?(error: Error, restartInMs: number): void;
  /** A new writer thread has started after one ended. */
  writerRestarted?(): void;
}

/** Row buffers from this size on are moved to the writer thread rather than copied. */
const MOVE_BUFFER_BYTES_MIN = 64 * 1024;

export class SqliteLedgerStore implements LedgerStore {
  readonly pipelined = true;
  private readonly reader: BetterSqlite3.Database;
  private readonly getTransfer: BetterSqlite3.Statement;
  private readonly getAccount: BetterSqlite3.Statement;
  private readonly selectDueHolds: BetterSqlite3.Statement;
  private readonly selectState: BetterSqlite3.Statement;
  private worker: Worker;
  private port: MessagePort;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void; wrote: { lastTs: bigint; version: bigint } | null }>();
  /**
   * The ledger state on disk as this process last read or wrote it (null: read it). The writer
   * thread is the file's only ledger writer, so its own commits keep this exact and a batch
   * starts without reading it back; any failed batch forgets it. Were another process to write
   * the file after all, the writer's version check would refuse the batch prepared on the old
   * state, and the redo reads the state afresh.
   */
  private disk: { lastTs: bigint; version: bigint } | null = null;
  /**
   * The overlay: batches not yet committed, oldest first, each with the transfers it wrote (new
   * ones by the engine's own map of the batch, and resolved holds). A read looks from the newest
   * batch back; a batch that commits leaves as a whole, with no work per transfer.
   */
  private readonly overlay: Array<{ seq: number; created: ReadonlyMap<string, Transfer>; holds: ReadonlyMap<string, Transfer> | null }> = [];
  /** The version the newest in-flight batch will leave, while any is in flight. */
  private pendingVersion: bigint | null = null;
  private pendingLastTs = 0n;
  private workerError: Error | null = null;
  /** Every batch up to this seq was in flight when a failure was reported: their failures are stale. */
  private invalidatedThrough = 0;
  /**
   * The earliest deadline of a pending hold on disk (null = none, undefined = not known) and of
   * holds still in flight, so that batches skip the due-holds query while nothing can be due.
   * This process is the only writer of the file: every new hold passes through commit().
   */
  private diskDeadlineUs: bigint | null | undefined = undefined;
  private inFlightDeadlineUs: bigint | null = null;
  private readonly path: string;
  private events: SqliteStoreEvents = {};
  private restartDelayMs = WRITER_RESTART_DELAY_MIN_MS;
  private restartTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly selectNextDeadline: BetterSqlite3.Statement;

  constructor(db: Database) {
    assert(db.sqliteReader && db.sqlitePath, "SQLite store needs the database file");
    assert(db.sqlitePath !== ":memory:", "the ledger engine needs a database file, not :memory:");
    this.reader = db.sqliteReader;
    this.getTransfer = this.reader.prepare("select * from ledger_transfers where id = ?");
    this.getAccount = this.reader.prepare("select * from ledger_accounts where id = ?");
    this.selectDueHolds = this.reader.prepare(
      "select * from ledger_transfers where status = 'pending' and expires_at <= ? order by expires_at limit ?",
    );
    this.selectState = this.reader.prepare("select last_ts, version from ledger_state where id = 1");
    this.selectNextDeadline = this.reader.prepare(
      "select min(expires_at) as deadline from ledger_transfers where status = 'pending'",
    );
    this.path = db.sqlitePath;
    [this.worker, this.port] = this.startWriter();
  }

  /** Listens to what the writer thread reports besides commits (SqliteStoreEvents). */
  listen(events: SqliteStoreEvents): void {
    this.events = events;
  }

  /** Why writes are refused right now (the writer thread is down), or null. */
  problem(): string | null {
    return this.workerError?.message ?? null;
  }

  private startWriter(): [Worker, MessagePort] {
    const channel = new MessageChannel();
    const port = channel.port1;
    const worker = startTypeScriptWorker(new URL("./sqlite-writer-worker.ts", import.meta.url), { path: this.path, port: channel.port2 }, [channel.port2]);
    port.on("message", (message: WriterReply[] | WalReport) => {
      if (!Array.isArray(message)) return this.events.wal?.(message.wal);
      for (const reply of message) this.settle(reply);
    });
    port.unref();
    worker.on("error", (error) => this.writerEnded(worker, error));
    worker.on("exit", (code) => this.writerEnded(worker, new Error(`the SQLite writer thread exited (${code})`)));
    worker.unref();
    return [worker, port];
  }

  /**
   * The writer thread ended without being asked (an uncaught error, a resource limit). Every batch
   * in flight fails (its requests are answered 503; each either committed whole or not at all, and
   * a retry with the same transfer id finds out which), writes are refused while it is down, and a
   * new thread starts after a delay that doubles while threads keep ending, up to 30 s.
   */
  private writerEnded(worker: Worker, error: Error): void {
    if (worker !== this.worker || this.closing || this.workerError) return;
    const down = Object.assign(new Error(`the ledger writer thread ended (${error.message}); writes resume when it restarts`), {
      code: "ERR_LEDGER_WRITER_DOWN",
      cause: error,
    });
    this.failAll(down);
    this.port.close();
    const delayMs = this.restartDelayMs;
    this.restartDelayMs = Math.min(delayMs * 2, WRITER_RESTART_DELAY_MAX_MS);
    this.events.writerDown?.(error, delayMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      [this.worker, this.port] = this.startWriter();
      this.workerError = null;
      this.events.writerRestarted?.();
    }, delayMs);
    this.restartTimer.unref();
  }

  async begin(): Promise<BatchSession> {
    if (this.workerError) throw this.workerError;
    let disk = this.disk;
    if (disk === null) {
      const state = this.selectState.get() as { last_ts: bigint; version: bigint };
      disk = this.disk = { lastTs: state.last_ts, version: state.version };
    }
    const lastTimestamp = this.pendingVersion !== null && this.pendingLastTs > disk.lastTs ? this.pendingLastTs : disk.lastTs;
    const version = this.pendingVersion ?? disk.version;
    return {
      lastTimestamp,
      version,
      loadTransfers: async (ids) => {
        const out = new Map<string, Transfer>();
        for (const id of ids) {
          const pending = this.inFlight(id);
          if (pending) {
            out.set(id, pending);
            continue;
          }
          const r = this.getTransfer.get(id) as any;
          if (r) out.set(id, transferFromRow(r));
        }
        return out;
      },
      findExisting: async (ids, verify) => {
        // Optimistic by default: a new id is looked for among batches in flight only; the
        // writer's unique index refuses one that is already on disk (DuplicateIdError).
        const out = new Map<string, Transfer>();
        // Indexed loops over a batch's transfers: these functions run once per batch, often
        // before the compiler has optimized them, and a for-of loop then allocated an iterator
        // result per element (docs/benchmarks.md, session 8).
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!;
          const pending = this.inFlight(id);
          if (pending) out.set(id, pending);
          else if (verify) {
            const r = this.getTransfer.get(id) as any;
            if (r) out.set(id, transferFromRow(r));
          }
        }
        return out;
      },
      loadAccounts: async (ids) => {
        const out = new Map<string, Account>();
        for (const id of ids) {
          const r = this.getAccount.get(id) as any;
          if (r) out.set(id, accountFromRow(r));
        }
        return out;
      },
      dueHolds: async (nowUs, limit) => {
        if (this.diskDeadlineUs !== undefined && earlier(this.diskDeadlineUs, this.inFlightDeadlineUs) > nowUs) return [];
        // The earliest deadline of any pending hold, due or not: holds this batch leaves pending
        // (past the per-batch limit, or because the batch fails) keep the next batch looking.
        this.diskDeadlineUs = (this.selectNextDeadline.get() as { deadline: bigint | null }).deadline;
        const rows = (this.selectDueHolds.all(nowUs, limit) as any[]).map(transferFromRow);
        // A hold resolved by a batch still in flight is not due any more.
        return rows
          .map((t) => this.inFlight(t.id) ?? t)
          .filter((t) => t.status === "pending");
      },
      commit: (writes) => this.commit(writes),
      abort: async () => {},
    };
  }

  private commit(w: BatchWrites): Promise<void> {
    if (this.workerError) return Promise.reject(this.workerError);
    const seq = ++this.seq;
    const rows = encodeRows(w.transfers, w.balances);
    const batch: WriterBatch = {
      seq,
      expectVersion: w.expectVersion,
      version: w.version,
      lastTs: w.lastTs,
      accounts: w.newAccounts.map(accountValues),
      transfers: rows.transfers,
      holds: w.resolvedHolds.map((h) => [h.id, h.status, h.resolvedAt]),
      balances: rows.balances,
      checkpoints: w.checkpoints.map((c) => [c.accountId, c.ts]),
      statements: w.statements.map((s) => ({ sql: s.sql, parameters: [...s.parameters] })),
      events: w.events,
    };
    let holds: Map<string, Transfer> | null = null;
    for (const h of w.resolvedHolds) (holds ??= new Map()).set(h.id, h);
    this.overlay.push({ seq, created: w.createdById, holds });
    for (let i = 0; i < w.transfers.length; i++) {
      const t = w.transfers[i]!;
      if (t.expiresAt !== null && t.status === "pending") this.inFlightDeadlineUs = earlierOrNull(this.inFlightDeadlineUs, t.expiresAt);
    }
    this.pendingVersion = w.version;
    if (w.lastTs > this.pendingLastTs) this.pendingLastTs = w.lastTs;
    return new Promise<void>((resolve, reject) => {
      // A commit in flight keeps the process alive; an idle writer thread does not.
      if (this.waiting.size === 0) {
        this.worker.ref();
        this.port.ref();
      }
      // The writer updates the state row only when the version moves (see applyBatch).
      this.waiting.set(seq, { resolve, reject, wrote: w.version !== w.expectVersion ? { lastTs: w.lastTs, version: w.version } : null });
      // A large buffer moves to the writer thread; a small one is cheaper to copy.
      this.port.postMessage(batch, rows.buffer.byteLength > MOVE_BUFFER_BYTES_MIN ? [rows.buffer] : undefined);
    });
  }

  /** A transfer as the newest batch in flight that wrote it left it. */
  private inFlight(id: string): Transfer | undefined {
    for (let i = this.overlay.length - 1; i >= 0; i--) {
      const b = this.overlay[i]!;
      const t = (b.holds !== null ? b.holds.get(id) : undefined) ?? b.created.get(id);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  private settle(reply: WriterReply): void {
    const waiter = this.waiting.get(reply.seq);
    if (!waiter) return;
    this.waiting.delete(reply.seq);
    if (this.waiting.size === 0) {
      this.worker.unref();
      this.port.unref();
    }
    if (reply.ok) {
      this.restartDelayMs = WRITER_RESTART_DELAY_MIN_MS;
      // Now on disk: reads find these rows in the database. Replies come in the order of the
      // batches, so this is the oldest batch of the overlay.
      const at = this.overlay.findIndex((b) => b.seq === reply.seq);
      if (at >= 0) this.overlay.splice(at, 1);
      if (waiter.wrote !== null) this.disk = waiter.wrote;
      if (this.waiting.size === 0) {
        this.pendingVersion = null;
        // Every hold in flight is on disk now.
        if (this.diskDeadlineUs !== undefined && this.inFlightDeadlineUs !== null) {
          this.diskDeadlineUs = earlierOrNull(this.diskDeadlineUs, this.inFlightDeadlineUs);
        }
        this.inFlightDeadlineUs = null;
      }
      waiter.resolve();
      return;
    }
    if (reply.seq <= this.invalidatedThrough) {
      // Doomed by a failure already reported: the state was reset then, and batches prepared
      // since (perhaps in flight now) must keep theirs.
      waiter.reject(new VersionConflictError(reply.message, true));
      return;
    }
    // Nothing of this batch, nor of any batch prepared on top of it, reached the database.
    this.invalidatedThrough = this.seq;
    this.disk = null;
    this.overlay.length = 0;
    this.diskDeadlineUs = undefined;
    this.inFlightDeadlineUs = null;
    this.pendingVersion = null;
    const error = reply.conflict
      ? new VersionConflictError(reply.message)
      : /UNIQUE constraint failed: ledger_transfers\.id/.test(reply.message)
        ? new DuplicateIdError(reply.message)
        : Object.assign(new Error(`SQLite commit failed: ${reply.message}`), { code: reply.code });
    waiter.reject(error);
  }

  private failAll(error: Error): void {
    this.workerError ??= error;
    this.disk = null;
    this.overlay.length = 0;
    this.diskDeadlineUs = undefined;
    this.inFlightDeadlineUs = null;
    this.pendingVersion = null;
    for (const [, w] of this.waiting) w.reject(error);
    this.waiting.clear();
  }

  /**
   * Asks the writer thread to close its connection and end, and waits for it (terminating it only
   * if it does not end in time). A thread terminated outright leaves its connection to
   * better-sqlite3's teardown, and a close that fails there (its checkpoint, on a disk that
   * refuses writes) aborted the whole process: the error was raised in a thread being torn down
   * (three times in three with the child process of test/ledger/wal-monitor.test.ts).
   */
  async close(): Promise<void> {
    assert(this.waiting.size === 0, "close the engine before its store");
    this.closing = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    const worker = this.worker;
    worker.removeAllListeners("exit");
    if (worker.threadId === -1) return; // ended already (and its port is closed)
    const ended = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.ref();
    this.port.postMessage({ close: true } satisfies WriterClose);
    const timer = setTimeout(() => void worker.terminate(), WRITER_CLOSE_TIMEOUT_MS);
    try {
      await ended;
    } finally {
      clearTimeout(timer);
      this.port.close();
    }
  }

}

/** The earlier of two deadlines, where null means "none" (never due). */
function earlier(a: bigint | null, b: bigint | null): bigint {
  const never = 2n ** 63n;
  const x = a ?? never;
  const y = b ?? never;
  return x < y ? x : y;
}

function earlierOrNull(a: bigint | null, b: bigint): bigint {
  return a === null || b < a ? b : a;
}
