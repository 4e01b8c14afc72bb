// The ledger store on PostgreSQL. Several Tally processes may share one database, so each batch
// first takes the ledger's row lock (ledger_state, FOR UPDATE): one writer at a time per ledger,
// in commit order, which makes timestamps strictly increasing across processes and rules out
// lost updates and deadlocks (nobody holds an account lock while waiting for another). Reads and
// writes are set-based (= ANY / unnest) so a batch costs a handful of round trips, not one per
// transfer. docs/ledger-engine.md explains the choice against ordered row locking.
//
// The row lock alone makes processes alternate batch by batch, and each turn starts with a cold
// cache (the other process changed the accounts) prepared under the lock, one batch at a time.
// So writers also take turns at a lease: a lock on the ledger_lease table, held by an open
// transaction, that a process keeps for a while (as long as 24 of its recent batches take to write,
// or longer while nobody waits) and releases when another waits or when it goes idle. While it
// holds the lease it writes alone, pipelined, on a warm cache. The lease is only about speed: the
// row lock and the version check stay the whole of correctness, and a process that cannot get the
// lease within LEASE_WAIT_MS writes without it.
//
// Batches prepared without the lock commit on a writer thread (pg-writer-worker.ts) with its own
// connection, so that the commit's round trips do not wait for an event loop busy preparing the
// next batches. Batches prepared under the lock commit in their own transaction, here.
import { MessageChannel, type MessagePort, type Worker } from "node:worker_threads";
import type pg from "pg";
import type { Database } from "../db/database.ts";
import { assert } from "../kernel/assert.ts";
import { startTypeScriptWorker } from "../kernel/worker.ts";
import type { Account, Transfer } from "./model.ts";
import { ACCOUNT_COLUMNS, TRANSFER_COLUMNS, accountFromRow, accountValues, transferFromRow } from "./rows.ts";
import { CopyBinaryWriter, writeSteps, type WriteStep as Step } from "../db/pg-copy.ts";
import type { WriterJob, WriterMessage, WriterReply } from "./pg-writer-worker.ts";
import { DuplicateIdError, VersionConflictError, type BatchSession, type BatchWrites, type LedgerStore } from "./store.ts";

const ACCOUNT_TYPES = [
  "text", "text", "text", "integer", "text", "integer", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint",
  "bigint", "bigint",
];

function unnestInsert(table: string, columns: readonly string[], types: readonly string[]): string {
  const args = types.map((t, i) => `$${i + 1}::${t}[]`).join(", ");
  return `insert into ${table} (${columns.join(", ")}) select * from unnest(${args})`;
}

const INSERT_ACCOUNTS = unnestInsert("ledger_accounts", ACCOUNT_COLUMNS, ACCOUNT_TYPES);

/** Column-major arrays for unnest: one array per column. */
function columns(rows: unknown[][], width: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: width }, () => new Array(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < width; c++) {
      const v = row[c];
      out[c]![r] = typeof v === "bigint" ? v.toString() : v;
    }
  }
  return out;
}

/**
 * How long a process keeps the ledger lease before handing it to a process that waits: as long as
 * LEASE_BATCHES of its recent batches take to write, so that a hand-over (the pipeline drains,
 * and the next holder starts on a cold cache: about two batches' time) costs under a tenth, within
 * these bounds (small batches hand over often, for latency; large ones seldom, for throughput).
 * Measured with two processes: 24 batches gave about a tenth more than 8.
 */
const LEASE_BATCHES = 24;
const LEASE_MS_MIN = 100;
const LEASE_MS_MAX = 2000;
/** A process with no batch for this long gives the lease up. */
const LEASE_IDLE_MS = 5;
/** Longest wait for the lease; past it the process writes without (the row lock still orders writers). */
const LEASE_WAIT_MS = 10_000;
/**
 * The lease is a table lock (migration 0010), not an advisory lock: LOCK TABLE holds no snapshot
 * while it waits, where `select pg_advisory_lock(...)` holds one for as long as the statement
 * runs. A process waiting its turn for seconds kept every account row version the holder left
 * meanwhile from being pruned: with two processes, 48 % of balance updates were HOT instead of
 * 97 %, the accounts table grew 23-fold, and each batch's balance UPDATE took 2-3 times as long.
 * EXCLUSIVE mode conflicts with itself and with writers of the table, which has none.
 */
const LEASE_LOCK = "lock table ledger_lease in exclusive mode";

export interface PostgresStoreOptions {
  /** Take turns at the ledger lease (default true). Off, writers alternate at the row lock alone. */
  readonly lease?: boolean;
  /** Longest wait for the lease before writing without it (default LEASE_WAIT_MS). */
  readonly leaseWaitMs?: number;
  /** Commit batches prepared without the lock on a writer thread (default true). Off, on the main thread. */
  readonly writerThread?: boolean;
}

async function query(client: pg.Pool | pg.PoolClient, text: string, params: unknown[] = []): Promise<any[]> {
  return (await client.query(text, params)).rows;
}

/** A session's hold on the ledger lock, for batches prepared under it (when another process writes). */
interface Locked {
  readonly client: pg.PoolClient;
  open: boolean;
}

export class PostgresLedgerStore implements LedgerStore {
  readonly pipelined = true;
  private readonly pool: pg.Pool;
  /** The commit of the newest batch handed over: each commit starts once the one before it ended. */
  private tail: Promise<unknown> = Promise.resolve();
  private seq = 0;
  /** Batches handed over and not yet committed or refused. */
  private inFlight = 0;
  /** Transfers written by batches not yet committed, with the seq of the batch that last wrote each. */
  private readonly overlay = new Map<string, { transfer: Transfer; seq: number }>();
  /** The version the newest live batch in flight will leave; null when none is live. */
  private pendingVersion: bigint | null = null;
  private pendingLastTs = 0n;
  /**
   * Bumped by every failure reported. Batches of an earlier epoch were prepared on state that
   * never reached the database: they are refused without touching it (a version number alone
   * could match by chance once another process has written).
   */
  private epoch = 0;
  /** A failure was reported: the next session tells the engine its cache is void. */
  private cacheVoid = false;
  /** The version this process's last commit left (null: none yet). */
  private writtenVersion: bigint | null = null;
  /** Another process wrote lately: prepare under the lock, one batch at a time, as conflicts would waste the work. */
  private contended = true;
  private readonly leaseEnabled: boolean;
  private readonly leaseWaitMs: number;
  /** The connection holding the ledger lease, while this process holds it. */
  private lease: pg.PoolClient | null = null;
  private leaseAcquiring: Promise<void> | null = null;
  /** When this process last looked for others waiting for the lease (or took it). */
  private leaseCheckedAt = 0;
  private leaseIdleTimer: NodeJS.Timeout | null = null;
  /** Sessions begun and not yet ended (committed, refused or aborted). */
  private sessionsOpen = 0;
  private closed = false;
  /** Moving average of the time a batch takes to write and commit, in milliseconds. */
  private writeMsAverage = 0;
  private readonly url: string;
  private readonly useWriterThread: boolean;
  private writer: WriterThread | null = null;
  /**
   * Settles once every batch handed over so far has been posted to the writer thread or, written
   * here, has committed or failed: the writer thread receives batches in the order handed over,
   * and never while a batch written here is in flight.
   */
  private handOff: Promise<unknown> = Promise.resolve();

  constructor(db: Database, options: PostgresStoreOptions = {}) {
    assert(db.pool, "PostgreSQL store needs the pool");
    this.pool = db.pool;
    this.leaseEnabled = options.lease ?? true;
    this.leaseWaitMs = Math.max(1, Math.floor(options.leaseWaitMs ?? LEASE_WAIT_MS));
    this.useWriterThread = options.writerThread ?? true;
    this.url = db.url;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    await this.writer?.close();
    this.writer = null;
    await this.leaseAcquiring;
    if (this.leaseIdleTimer) clearTimeout(this.leaseIdleTimer);
    await this.releaseLease();
  }

  async begin(): Promise<BatchSession> {
    if (this.leaseEnabled && !this.closed) await this.holdLease();
    this.sessionsOpen++;
    try {
      return await this.beginSession();
    } catch (error) {
      this.sessionEnded();
      throw error;
    }
  }

  /** Holds the lease when this returns, unless it could not be had within LEASE_WAIT_MS. */
  private async holdLease(): Promise<void> {
    if (this.leaseIdleTimer) {
      clearTimeout(this.leaseIdleTimer);
      this.leaseIdleTimer = null;
    }
    if (this.lease) {
      const now = performance.now();
      const span = Math.min(LEASE_MS_MAX, Math.max(LEASE_MS_MIN, LEASE_BATCHES * this.writeMsAverage));
      if (now - this.leaseCheckedAt < span) return;
      this.leaseCheckedAt = now;
      if (!(await this.othersWaitForLease())) return;
      // Hand over: this process's batches land first, then the lease goes to the process that
      // waits (PostgreSQL queues lock requests: asking again puts this one behind it).
      await this.tail.catch(() => {});
      await this.releaseLease();
    }
    this.leaseAcquiring ??= this.acquireLease().finally(() => (this.leaseAcquiring = null));
    await this.leaseAcquiring;
  }

  private async acquireLease(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch {
      return; // The batch itself will meet (and report) the database's trouble.
    }
    try {
      // The transaction holds the lock until the lease is released; it takes no snapshot and
      // writes nothing, so it holds nothing back.
      await client.query(`begin; set local lock_timeout = ${this.leaseWaitMs}; ${LEASE_LOCK}`);
    } catch (error) {
      // Not had in time (55P03) or the connection failed: write without the lease this time.
      const timedOut = (error as { code?: string }).code === "55P03";
      if (timedOut) await client.query("rollback").catch(() => {});
      client.release(timedOut ? undefined : (error as Error));
      return;
    }
    this.lease = client;
    this.leaseCheckedAt = performance.now();
  }

  private async othersWaitForLease(): Promise<boolean> {
    try {
      const [row] = await query(
        this.lease!,
        `select exists (select 1 from pg_locks where locktype = 'relation' and not granted
           and relation = 'ledger_lease'::regclass
           and database = (select oid from pg_database where datname = current_database())) as waiting`,
      );
      return row.waiting === true;
    } catch {
      return true; // The lease's connection failed: give it up (its session's end released the lock).
    }
  }

  private async releaseLease(): Promise<void> {
    const client = this.lease;
    if (!client) return;
    this.lease = null;
    try {
      await client.query("commit");
      client.release();
    } catch (error) {
      // A connection that could not unlock may still hold the lease: ending its session frees it.
      client.release(error as Error);
    }
  }

  private sessionEnded(): void {
    this.sessionsOpen--;
    if (!this.lease || this.sessionsOpen > 0 || this.inFlight > 0 || this.leaseIdleTimer) return;
    this.leaseIdleTimer = setTimeout(() => {
      this.leaseIdleTimer = null;
      if (this.sessionsOpen === 0 && this.inFlight === 0 && !this.leaseAcquiring) void this.releaseLease();
    }, LEASE_IDLE_MS);
    this.leaseIdleTimer.unref();
  }

  private async beginSession(): Promise<BatchSession> {
    if (this.pendingVersion !== null && (!this.contended || this.lease)) {
      // On top of this process's batches in flight: prepared without the lock, version-checked
      // when it commits. This is the pipeline: the database writes one batch while the next is
      // prepared.
      return this.session(this.epoch, null, this.pendingVersion, this.pendingLastTs, false);
    }
    // Let the engine see every failure reported so far (it forgets its cache in a reaction to the
    // commit's promise) before a session starts on what the database holds.
    await new Promise((resolve) => setImmediate(resolve));
    // Nothing of this process is in flight (or another process writes too): prepare under the
    // lock once the batches before have landed, as the batch would otherwise wait for nothing.
    await this.tail;
    if (this.lease) {
      // Holding the lease, this process writes alone: prepare on what the database holds without
      // the row lock (the commit still checks the version under it).
      const [state] = await query(this.pool, "select last_ts, version from ledger_state where id = 1");
      return this.session(this.epoch, null, BigInt(state.version), BigInt(state.last_ts), this.takeCacheVoid());
    }
    return this.lockedSession();
  }

  private async lockedSession(): Promise<BatchSession> {
    const client = await this.pool.connect();
    let state: any;
    try {
      await client.query("begin");
      [state] = await query(client, "select last_ts, version from ledger_state where id = 1 for update");
    } catch (error) {
      await client.query("rollback").catch(() => {});
      client.release(error as Error);
      throw error;
    }
    const version = BigInt(state.version);
    // While another process writes between this one's batches, batches prepared without the lock
    // would mostly fail their version check: prepare each under the lock until the ledger is found
    // as this process left it.
    this.contended = this.writtenVersion === null || version !== this.writtenVersion;
    return this.session(this.epoch, { client, open: true }, version, BigInt(state.last_ts), this.takeCacheVoid());
  }

  private takeCacheVoid(): boolean {
    const fresh = this.cacheVoid;
    this.cacheVoid = false;
    return fresh;
  }

  private session(epoch: number, locked: Locked | null, version: bigint, lastTimestamp: bigint, fresh: boolean): BatchSession {
    const reader: pg.Pool | pg.PoolClient = locked?.client ?? this.pool;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.sessionEnded();
    };
    const loadTransfers = async (ids: Iterable<string>, fromDisk = true) => {
      const out = new Map<string, Transfer>();
      const list: string[] = [];
      for (const id of new Set(ids)) {
        const pending = this.overlay.get(id);
        if (pending) out.set(id, pending.transfer);
        else list.push(id);
      }
      if (list.length === 0 || !fromDisk) return out;
      for (const r of await query(reader, "select * from ledger_transfers where id = any($1::text[])", [list])) {
        out.set(r.id, transferFromRow(r));
      }
      return out;
    };
    return {
      lastTimestamp: this.pendingVersion !== null && this.pendingLastTs > lastTimestamp ? this.pendingLastTs : lastTimestamp,
      version,
      fresh,
      // Optimistic unless asked to verify: batches in flight are looked at, and the unique index
      // refuses a duplicate of a stored transfer at commit (DuplicateIdError).
      findExisting: (ids, verify) => loadTransfers(ids, verify),
      loadTransfers: (ids) => loadTransfers(ids),
      loadAccounts: async (ids) => {
        const list = [...new Set(ids)];
        const out = new Map<string, Account>();
        if (list.length === 0) return out;
        for (const r of await query(reader, "select * from ledger_accounts where id = any($1::text[])", [list])) {
          out.set(r.id, accountFromRow(r));
        }
        return out;
      },
      dueHolds: async (nowUs, limit) => {
        const rows = await query(
          reader,
          "select * from ledger_transfers where status = 'pending' and expires_at <= $1 order by expires_at limit $2",
          [nowUs.toString(), limit],
        );
        // A hold resolved by a batch still in flight is not due any more.
        return rows.map((r) => this.overlay.get(r.id)?.transfer ?? transferFromRow(r)).filter((t) => t.status === "pending");
      },
      commit: (w) => this.commit(epoch, locked, w).finally(end),
      abort: async () => {
        try {
          if (!locked?.open) return;
          locked.open = false;
          await locked.client.query("rollback").catch(() => {});
          locked.client.release();
        } finally {
          end();
        }
      },
    };
  }

  private commit(epoch: number, locked: Locked | null, w: BatchWrites): Promise<void> {
    // Prepared while a failure was reported: its state may include the failed batch's effects.
    if (epoch !== this.epoch) return this.refuseStale(locked);
    let steps: Step[];
    try {
      steps = encodeWrites(w);
    } catch (error) {
      // A value the database could not hold: the batch fails before anything is in flight.
      return this.abandon(locked, error);
    }
    const seq = ++this.seq;
    for (const t of w.transfers) this.overlay.set(t.id, { transfer: t, seq });
    for (const h of w.resolvedHolds) this.overlay.set(h.id, { transfer: h, seq });
    this.pendingVersion = w.version;
    if (w.lastTs > this.pendingLastTs) this.pendingLastTs = w.lastTs;
    this.inFlight++;
    let run: Promise<void>;
    if (locked || !this.useWriterThread) {
      run = this.tail.then(() => this.write(seq, epoch, locked, w, steps));
      this.handOff = run.catch(() => {});
    } else {
      // Wrapped, so that the hand-over settles once the batch is posted, not once it is written.
      const posted = this.handOff.then(() => ({ reply: this.post(seq, epoch, w, steps) }));
      this.handOff = posted;
      run = posted.then(({ reply }) => reply).then((reply) => this.written(reply, w));
    }
    this.tail = run.catch(() => {});
    return run.finally(() => {
      this.inFlight--;
      for (const t of w.transfers) if (this.overlay.get(t.id)?.seq === seq) this.overlay.delete(t.id);
      for (const h of w.resolvedHolds) if (this.overlay.get(h.id)?.seq === seq) this.overlay.delete(h.id);
      if (this.inFlight === 0) this.pendingVersion = null;
    });
  }

  private refuseStale(locked: Locked | null): Promise<never> {
    return this.abandon(locked, new VersionConflictError("an earlier batch of this process failed", true));
  }

  private async abandon(locked: Locked | null, error: unknown): Promise<never> {
    if (locked?.open) {
      locked.open = false;
      await locked.client.query("rollback").catch(() => {});
      locked.client.release();
    }
    throw error;
  }

  /** Hands a batch to the writer thread (in hand-over order); resolves with its outcome. */
  private post(seq: number, epoch: number, w: BatchWrites, steps: readonly Step[]): Promise<WriterReply> {
    // Prepared on top of a batch that failed: nothing of it may reach the database.
    if (epoch !== this.epoch) return this.refuseStale(null);
    this.writer ??= new WriterThread(this.url, (dead) => {
      if (this.writer === dead) this.writer = null;
    });
    return this.writer.post({ seq, epoch, expectVersion: w.expectVersion.toString(), steps });
  }

  /** The writer thread's outcome of a batch, as the main thread's own write would have ended. */
  private written(reply: WriterReply, w: BatchWrites): void {
    if (reply.ok) {
      this.writeMsAverage = 0.8 * this.writeMsAverage + 0.2 * reply.writeMs;
      this.writtenVersion = w.version;
      return;
    }
    // Refused untouched: the failure before it was already reported (and counted).
    if (reply.stale) throw new VersionConflictError(reply.message, true);
    const error = reply.conflict
      ? new VersionConflictError(reply.message)
      : Object.assign(new Error(reply.message), { code: reply.code, constraint: reply.constraint });
    this.failed(error);
  }

  /** A batch failed: nothing of it reached the database, nor will any batch prepared on top of it. */
  private failed(error: unknown): never {
    this.epoch++;
    this.cacheVoid = true;
    this.overlay.clear();
    this.pendingVersion = null;
    if (error instanceof VersionConflictError) this.contended = true;
    const e = error as { code?: string; constraint?: string };
    if (e.code === "23505" && e.constraint === "ledger_transfers_id_key") throw new DuplicateIdError("a transfer id of the batch exists");
    throw error;
  }

  /** Runs after every batch handed over before this one has committed or failed. */
  private async write(seq: number, epoch: number, locked: Locked | null, w: BatchWrites, steps: readonly Step[]): Promise<void> {
    // Prepared on top of a batch that failed: nothing of it may reach the database.
    if (epoch !== this.epoch) return this.refuseStale(locked);
    let client: pg.PoolClient | null = locked?.client ?? null;
    try {
      if (!locked && steps.length === 0) {
        // Nothing to write, but answered from reads made without the lock: only if no other
        // process wrote since the batches it read from (which have now committed).
        const [state] = await query(this.pool, "select version from ledger_state where id = 1");
        if (BigInt(state.version) !== w.expectVersion) throw new VersionConflictError("another process wrote to the ledger meanwhile");
        return;
      }
      if (!locked) {
        client = await this.pool.connect();
        await client.query("begin");
        const [state] = await query(client, "select version from ledger_state where id = 1 for update");
        if (BigInt(state.version) !== w.expectVersion) throw new VersionConflictError("another process wrote to the ledger meanwhile");
      }
      const writing = performance.now();
      await writeSteps(client!, steps);
      await client!.query("commit");
      this.writeMsAverage = 0.8 * this.writeMsAverage + 0.2 * (performance.now() - writing);
      if (locked) locked.open = false;
      client!.release();
      this.writtenVersion = w.version;
    } catch (error) {
      if (locked) locked.open = false;
      if (client) {
        await client.query("rollback").catch(() => {});
        const e = error as { code?: string };
        // A connection that failed is not given back to the pool for reuse.
        client.release(error instanceof VersionConflictError || e.code === "23505" ? undefined : (error as Error));
      }
      this.failed(error);
    }
  }
}


/** Transfers as COPY binary rows, in TRANSFER_COLUMNS order with their columns' types. */
export function copyRows(transfers: readonly Transfer[]): Buffer {
  const out = new CopyBinaryWriter(transfers.length * 400);
  for (const t of transfers) {
    out.row(TRANSFER_COLUMNS.length);
    out.int8(t.ts);
    out.text(t.id);
    out.text(t.merchantId);
    out.text(t.debitAccountId);
    out.text(t.creditAccountId);
    out.int8(t.amount);
    out.text(t.currency);
    out.int4(t.code);
    out.int4(t.flags);
    out.text(t.pendingId);
    out.int4(t.timeoutSeconds);
    out.int8(t.expiresAt);
    out.text(t.status);
    out.int8(t.resolvedAt);
    out.text(t.reference);
    out.text(t.metadata);
    out.int8(t.drDebitsPending);
    out.int8(t.drDebitsPosted);
    out.int8(t.drCreditsPending);
    out.int8(t.drCreditsPosted);
    out.int8(t.crDebitsPending);
    out.int8(t.crDebitsPosted);
    out.int8(t.crCreditsPending);
    out.int8(t.crCreditsPosted);
    out.int8(t.debitPrevTs);
    out.int8(t.creditPrevTs);
  }
  return out.finish();
}

/**
 * A batch's writes as statements, encoded when the batch is handed over: the engine goes on
 * changing the same objects (account balances, a hold posted by the next batch) while this one
 * waits for its turn to commit.
 */
function encodeWrites(w: BatchWrites): Step[] {
  const steps: Step[] = [];
  if (w.newAccounts.length > 0) {
    steps.push({ text: INSERT_ACCOUNTS, params: columns(w.newAccounts.map(accountValues), ACCOUNT_COLUMNS.length) });
  }
  if (w.transfers.length > 0) steps.push({ copyInto: "ledger_transfers", columns: TRANSFER_COLUMNS, data: copyRows(w.transfers) });
  if (w.resolvedHolds.length > 0) {
    steps.push({
      text: `update ledger_transfers t set status = v.status, resolved_at = v.resolved_at
         from unnest($1::text[], $2::text[], $3::bigint[]) as v(id, status, resolved_at) where t.id = v.id`,
      params: columns(w.resolvedHolds.map((h) => [h.id, h.status, h.resolvedAt]), 3),
    });
  }
  if (w.balances.length > 0) {
    const rows = w.balances.map((a) => [a.id, a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted, a.lastTs, BigInt(a.transferCount)]);
    steps.push({
      text: `update ledger_accounts a set debits_pending = v.dp, debits_posted = v.dpo,
              credits_pending = v.cp, credits_posted = v.cpo, last_ts = v.last_ts, transfer_count = v.n
         from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
              as v(id, dp, dpo, cp, cpo, last_ts, n)
        where a.id = v.id`,
      params: columns(rows, 7),
    });
  }
  if (w.checkpoints.length > 0) {
    steps.push({
      text: "insert into ledger_checkpoints (account_id, ts) select * from unnest($1::text[], $2::bigint[])",
      params: columns(w.checkpoints.map((c) => [c.accountId, c.ts]), 2),
    });
  }
  if (w.version !== w.expectVersion) {
    steps.push({ text: "update ledger_state set last_ts = $1, version = $2 where id = 1", params: [w.lastTs.toString(), w.version.toString()] });
  }
  for (const [id, type, createdAt, data] of w.events) {
    steps.push({ text: "insert into outbox_events (id, type, created_at, data) values ($1, $2, $3, $4)", params: [id, type, createdAt.toString(), data] });
  }
  for (const s of w.statements) steps.push({ text: s.sql, params: s.parameters.map((p) => (typeof p === "bigint" ? p.toString() : p)) });
  return steps;
}

/**
 * The writer thread (pg-writer-worker.ts), from the main thread: posts batches, matches replies.
 * If the thread dies, the batches it held fail (the first as the failure, the rest as doomed by
 * it) and the store starts another for the next batch.
 */
class WriterThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly waiting = new Map<number, (reply: WriterReply) => void>();
  private dead = false;

  constructor(url: string, private readonly onDeath: (thread: WriterThread) => void) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.worker = startTypeScriptWorker(new URL("./pg-writer-worker.ts", import.meta.url), { url, port: channel.port2 }, [channel.port2]);
    this.port.on("message", (reply: WriterReply) => {
      const settle = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      this.idleUnlessWaiting();
      settle?.(reply);
    });
    this.worker.on("error", (error) => this.die(error));
    this.worker.on("exit", (code) => this.die(new Error(`the PostgreSQL writer thread exited (${code})`)));
    this.idleUnlessWaiting();
  }

  post(job: WriterJob): Promise<WriterReply> {
    if (this.dead) return Promise.resolve({ seq: job.seq, ok: false, stale: false, conflict: false, message: "the PostgreSQL writer thread stopped" });
    return new Promise((resolve) => {
      if (this.waiting.size === 0) {
        // A batch in flight keeps the process alive, as a query on a connection would.
        this.worker.ref();
        this.port.ref();
      }
      this.waiting.set(job.seq, resolve);
      this.port.postMessage({ job } satisfies WriterMessage);
    });
  }

  async close(): Promise<void> {
    if (this.dead) return;
    const exited = new Promise((resolve) => this.worker.once("exit", resolve));
    this.port.postMessage({ close: true } satisfies WriterMessage);
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private idleUnlessWaiting(): void {
    if (this.waiting.size > 0) return;
    this.worker.unref();
    this.port.unref();
  }

  private die(error: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.onDeath(this);
    const waiting = [...this.waiting].sort(([a], [b]) => a - b);
    this.waiting.clear();
    waiting.forEach(([seq, settle], i) =>
      settle({ seq, ok: false, stale: i > 0, conflict: false, message: i === 0 ? error.message : "an earlier batch of this process failed" }),
    );
    this.port.close();
  }
}
