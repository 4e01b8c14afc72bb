// The posting engine: one writer per process. Requests queue their transfers; the writer takes
// everything that queued while the previous batch was committing, applies it in one database
// transaction (group commit) and answers each request only after that transaction committed.
// A hot account touched by every transfer in a batch is written once per batch. Where the store
// allows it (SQLite: commits on a writer thread), the next batch is prepared while the previous
// one is written and fsynced; its requests are still answered only after their own commit.
import { setImmediate as nextTick } from "node:timers/promises";
import { assert } from "../kernel/assert.ts";
import type { Clock } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { UnavailableError } from "../kernel/errors.ts";
import type { Kysely } from "kysely";
import { ulid } from "../kernel/ids.ts";
import { StatementRecorder } from "../db/recorder.ts";
import type { Tables } from "../db/schema.ts";
import {
  applyTransfers,
  expireHold,
  newEffects,
  sameAccountFields,
  type Account,
  type AccountInput,
  type AccountResult,
  type BatchEffects,
  type Transfer,
  type TransferInput,
  type TransferOutcome,
  type WorkingSet,
} from "./model.ts";
import { DuplicateIdError, VersionConflictError, type BatchSession, type BatchWrites, type LedgerStore } from "./store.ts";

export interface AccountOutcome {
  readonly result: AccountResult;
  readonly account: Account;
}

/**
 * Work that must commit in the same transaction as the op's ledger changes. `tx` records writes
 * (it cannot read): they run inside the batch's transaction, after the ledger rows.
 */
export type BatchHook<R> = (tx: Kysely<Tables>, outcome: R) => Promise<void>;

type OpBody =
  | { kind: "transfers"; merchantId: string | null; inputs: readonly TransferInput[]; hook?: BatchHook<TransferOutcome[]>; done: Settle<TransferOutcome[]> }
  | { kind: "accounts"; merchantId: string | null; inputs: readonly AccountInput[]; hook?: BatchHook<AccountOutcome[]>; done: Settle<AccountOutcome[]> }
  | { kind: "tick"; done: Settle<number> };

/** An op with its place in line (retries keep it) and whether it must run in a batch of its own. */
type Op = OpBody & { seq: number; alone: boolean; verify: boolean };

interface Settle<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

export interface EngineObserver {
  batchCommitted(info: { ops: number; transfers: number; created: number; expired: number; durationMs: number }): void;
}

/** Holds expired per batch at most, so one batch never grows without bound. */
const EXPIRIES_PER_BATCH_MAX = 1024;
/** Accounts kept in memory between batches; past this the cache starts over. */
const ACCOUNT_CACHE_MAX = 1_000_000;
/**
 * Batches written but not yet committed at once (pipelined stores only). The SQLite writer
 * commits all that wait in one transaction, so a deeper pipeline means fewer fsyncs.
 */
const COMMITS_IN_FLIGHT_MAX = 16;
/**
 * While commits are in flight, fewer transfers than this wait for one to land before they are
 * prepared as the next batch (pipelined stores only; see `schedule`).
 */
const COALESCE_TRANSFERS_MIN = 256;

export class PostingEngine {
  private queue: Op[] = [];
  /** Ops of failed pipelined batches, waiting to be redone before anything newer. */
  private retries: Op[] = [];
  private queuedTransfers = 0;
  private opSeq = 0;
  private draining = false;
  private scheduled = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private lastTs = 0n;
  /** The last timestamp of the newest committed batch. */
  private committedLastTs = 0n;
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | null = null;
  private readonly recorder: StatementRecorder;
  /**
   * Accounts as the last prepared batch left them. Valid only while the ledger's version is the
   * one this engine wrote last: another process (PostgreSQL) bumps it, and the cache starts over.
   * The database stays the source of truth; after a restart the cache starts empty.
   */
  private readonly accountCache = new Map<string, Account>();
  private cacheVersion = -1n;
  /**
   * Counts the times the cache started over. A commit that fails forgets the cache while the next
   * batch may be half prepared on it (awaiting a read): that batch is then redone, never answered
   * from accounts that vanished under it.
   */
  private cacheResets = 0;

  constructor(
    private readonly store: LedgerStore,
    private readonly clock: Clock,
    private readonly limits: Limits,
    private readonly observer?: EngineObserver,
    dialect: "sqlite" | "postgres" = "sqlite",
  ) {
    this.recorder = new StatementRecorder(dialect);
    assert(limits.balanceMax < 2n ** 63n, "balances are 64-bit integers in both databases");
  }

  /** Transfers waiting for a batch. */
  get queueDepth(): number {
    return this.queuedTransfers;
  }

  /** Why the ledger refuses writes right now (its store's writer is down), or null. */
  problem(): string | null {
    return this.store.problem?.() ?? null;
  }

  submitTransfers(merchantId: string | null, inputs: readonly TransferInput[], hook?: BatchHook<TransferOutcome[]>): Promise<TransferOutcome[]> {
    assert(inputs.length > 0 && inputs.length <= this.limits.batchTransfersMax, "batch size is validated by the schema");
    this.admit(inputs.length);
    return new Promise((resolve, reject) => this.enqueue({ kind: "transfers", merchantId, inputs, hook, done: { resolve, reject } }));
  }

  /**
   * A unit of work with no ledger transfers: `hook` writes a module's rows (a state change, its
   * outbox event, an idempotency record) through the same door and the same commit as transfers.
   */
  submitWrites(hook: BatchHook<TransferOutcome[]>): Promise<void> {
    this.admit(0);
    return new Promise<TransferOutcome[]>((resolve, reject) =>
      this.enqueue({ kind: "transfers", merchantId: null, inputs: [], hook, done: { resolve, reject } }),
    ).then(() => undefined);
  }

  createAccounts(merchantId: string | null, inputs: readonly AccountInput[], hook?: BatchHook<AccountOutcome[]>): Promise<AccountOutcome[]> {
    this.admit(inputs.length);
    return new Promise((resolve, reject) => this.enqueue({ kind: "accounts", merchantId, inputs, hook, done: { resolve, reject } }));
  }

  /** Runs a batch with no requests: expires due holds. Resolves to the number expired. */
  tick(): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    return new Promise((resolve, reject) => this.enqueue({ kind: "tick", done: { resolve, reject } }));
  }

  /** Stops taking work and waits until every queued op has been committed or rejected. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.draining || this.scheduled || this.queue.length > 0 || this.retries.length > 0) await this.idle;
    await this.store.close();
  }

  private admit(count: number): void {
    if (this.closed) throw new UnavailableError("the ledger is shutting down");
    // Back-pressure: past the queue limit a caller is told to come back instead of waiting in
    // an ever longer line (memory and latency stay bounded).
    if (this.queuedTransfers > 0 && this.queuedTransfers + count > this.limits.engineQueueTransfersMax) {
      throw new UnavailableError("the ledger engine is at capacity; retry shortly", 1);
    }
  }

  private enqueue(body: OpBody): void {
    // The caller's fresh object becomes the op (a copy by spread showed in profiles of small requests).
    const op = body as Op;
    op.seq = ++this.opSeq;
    op.alone = false;
    op.verify = false;
    this.queue.push(op);
    this.queuedTransfers += sizeOf(op);
    this.schedule();
  }

  private schedule(): void {
    if (this.wake) {
      // Commits are in flight. A small batch prepared now would only wait behind them at the
      // writer: let requests gather until a commit lands, so they share one batch (a batch per
      // request cost more than the request's own transfer). Enough waiting work to be worth
      // preparing while the writer is busy, or a batch to redo, goes now.
      if (this.queuedTransfers < COALESCE_TRANSFERS_MIN && this.retries.length === 0) return;
      const wake = this.wake;
      this.wake = null;
      setImmediate(wake);
      return;
    }
    if (this.draining || this.scheduled) return;
    this.scheduled = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    // Start on the next turn of the event loop so requests that arrived together share a batch.
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    this.draining = true;
    try {
      for (;;) {
        while (this.queue.length > 0 || this.retries.length > 0) {
          await this.runBatch(this.takeBatch());
          // Let the event loop read more requests; they form the next batch.
          await nextTick();
        }
        if (this.inFlight.size === 0) break;
        // Commits are still landing: wake up for whichever comes first, a commit or a new op.
        await Promise.race([...this.inFlight, new Promise<void>((resolve) => (this.wake = resolve))]);
        this.wake = null;
      }
    } finally {
      this.draining = false;
      this.markIdle();
    }
  }

  private takeBatch(): Op[] {
    if (this.retries.length > 0) {
      // In line order: fail() sorts when it adds, so a long run of ops redone alone is not
      // sorted again per op.
      const first = this.retries[0]!;
      if (first.alone) return [this.retries.shift()!];
      const batch: Op[] = [];
      let size = 0;
      while (this.retries.length > 0 && !this.retries[0]!.alone) {
        const n = sizeOf(this.retries[0]!);
        if (batch.length > 0 && size + n > this.limits.engineBatchTransfersMax) break;
        size += n;
        batch.push(this.retries.shift()!);
      }
      return batch;
    }
    // One splice per batch, not a shift per op: past some length an array's shift moves every
    // element left, and 32 760 single-transfer requests waiting made batching quadratic (requests
    // of one transfer ran at half the rate with twice as many waiting).
    let take = 0;
    let size = 0;
    while (take < this.queue.length) {
      const n = sizeOf(this.queue[take]!);
      if (take > 0 && size + n > this.limits.engineBatchTransfersMax) break;
      size += n;
      take++;
    }
    this.queuedTransfers -= size;
    return this.queue.splice(0, take);
  }

  /**
   * A batch reads the account cache across awaits; a commit that fails meanwhile forgets it, and
   * the batch, half prepared on accounts that vanished, is redone rather than answered.
   */
  private cacheUnchangedSince(resets: number): void {
    if (this.cacheResets !== resets) throw new VersionConflictError("the account cache started over while the batch was prepared", true);
  }

  private forgetCache(): void {
    this.accountCache.clear();
    this.cacheVersion = -1n;
    this.cacheResets++;
  }

  private async runBatch(batch: Op[]): Promise<void> {
    const started = performance.now();
    let session: BatchSession | null = null;
    let prepared: Awaited<ReturnType<PostingEngine["prepare"]>>;
    try {
      session = await this.store.begin();
      prepared = await this.prepare(session, batch);
    } catch (error) {
      await session?.abort().catch(() => {});
      // The cache holds the state of batches still being committed: let them land (or fail)
      // before forgetting it, or the next batch would read balances from before them.
      await Promise.allSettled([...this.inFlight]);
      this.forgetCache();
      this.fail(batch, error);
      return;
    }
    const finish = () => {
      if (prepared.lastTs > this.committedLastTs) this.committedLastTs = prepared.lastTs;
      try {
        this.observer?.batchCommitted({ ...prepared.stats, ops: batch.length, durationMs: performance.now() - started });
      } catch {
        // Metrics must never keep a committed batch from being answered.
      }
      batch.forEach((op, i) => (op.done.resolve as (v: unknown) => void)(prepared.outcomes[i]));
    };
    if (prepared.writes === null) {
      await session.abort();
      finish();
      return;
    }
    const committed = session.commit(prepared.writes).then(finish, (error) => {
      if (!(error instanceof VersionConflictError && error.stale)) this.forgetCache();
      this.fail(batch, error);
    });
    if (!this.store.pipelined) return committed;
    const tracked = committed.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    if (this.inFlight.size >= COMMITS_IN_FLIGHT_MAX) await Promise.race(this.inFlight);
  }

  /** A batch that failed: redo conflicts, split multi-op batches, reject single ops. */
  private fail(batch: Op[], error: unknown): void {
    // Its timestamps (and those of any batch prepared on top of it) were never written: hand
    // them out again, so a redone batch reads as if the failure had not happened. Not for a
    // stale failure: batches prepared since the first one may already hold later timestamps.
    if (!(error instanceof VersionConflictError && error.stale)) this.lastTs = this.committedLastTs;
    if (error instanceof DuplicateIdError) {
      // An id of this batch was already on disk: redo each op alone, checking every id.
      for (const op of batch) this.retries.push({ ...op, alone: true, verify: true });
    } else if (error instanceof VersionConflictError) {
      // Prepared on top of a batch that failed: it had no effect. Redo it, in its place in line.
      this.retries.push(...batch);
    } else if (batch.length > 1) {
      // One op's failure (say, a hook that throws) must not fail the others: redo them one by one.
      for (const op of batch) this.retries.push({ ...op, alone: true });
    } else {
      const wrapped = isInfrastructure(error) ? new UnavailableError("the ledger database is unavailable", 1, { cause: error }) : error;
      batch[0]!.done.reject(wrapped);
      return;
    }
    this.retries.sort((a, b) => a.seq - b.seq);
    this.schedule();
  }

  private async prepare(session: BatchSession, batch: Op[]) {
    const nowUs = this.clock.nowUs();
    let last = session.lastTimestamp > this.lastTs ? session.lastTimestamp : this.lastTs;
    const nextTimestamp = () => {
      const next = last + 1n;
      return (last = next > nowUs ? next : nowUs);
    };

    // Never forget the cache while batches are in flight: it holds their balances, which the
    // disk does not have yet.
    if (session.fresh || session.version !== this.cacheVersion || (this.accountCache.size > ACCOUNT_CACHE_MAX && this.inFlight.size === 0)) {
      this.forgetCache();
    }
    const resets = this.cacheResets;
    const accounts = this.accountCache;
    // Load what the batch reads: due holds, referenced transfers, then the accounts involved that
    // the cache lacks. Ids are checked against the cache as they are met: a set of every account
    // id of the batch, built only to be checked, grew to thousands of entries per batch.
    const missing = new Set<string>();
    const transfers = new Map<string, Transfer>();
    const due = await session.dueHolds(nowUs, EXPIRIES_PER_BATCH_MAX);
    for (const hold of due) {
      transfers.set(hold.id, hold);
      if (!accounts.has(hold.debitAccountId)) missing.add(hold.debitAccountId);
      if (!accounts.has(hold.creditAccountId)) missing.add(hold.creditAccountId);
    }
    const transferIds = new Set<string>();
    const newIds: string[] = [];
    const verify = batch.some((op) => op.verify);
    for (const op of batch) {
      if (op.kind === "transfers") {
        // Indexed: see SqliteLedgerStore.findExisting.
        for (let i = 0; i < op.inputs.length; i++) {
          const t = op.inputs[i]!;
          // Most batches have no due holds: their transfers map stays empty, and is not asked.
          if (transfers.size === 0 || !transfers.has(t.id)) newIds.push(t.id);
          const pendingId = t.postPendingId ?? t.voidPendingId;
          if (pendingId !== undefined && !transfers.has(pendingId)) transferIds.add(pendingId);
          if (t.debitAccountId !== undefined && !accounts.has(t.debitAccountId)) missing.add(t.debitAccountId);
          if (t.creditAccountId !== undefined && !accounts.has(t.creditAccountId)) missing.add(t.creditAccountId);
        }
      } else if (op.kind === "accounts") {
        for (const a of op.inputs) if (!accounts.has(a.id)) missing.add(a.id);
      }
    }
    for (const [id, t] of await session.findExisting(newIds, verify)) {
      transfers.set(id, t);
      if (!accounts.has(t.debitAccountId)) missing.add(t.debitAccountId);
      if (!accounts.has(t.creditAccountId)) missing.add(t.creditAccountId);
    }
    for (const id of transfers.keys()) transferIds.delete(id);
    for (const [id, t] of await session.loadTransfers(transferIds)) {
      transfers.set(id, t);
      // Posting or voiding takes omitted accounts from the referenced transfer, hold or not.
      if (!accounts.has(t.debitAccountId)) missing.add(t.debitAccountId);
      if (!accounts.has(t.creditAccountId)) missing.add(t.creditAccountId);
    }
    this.cacheUnchangedSince(resets);
    if (missing.size > 0) for (const [id, a] of await session.loadAccounts(missing)) accounts.set(id, a);
    this.cacheUnchangedSince(resets);
    const set: WorkingSet = {
      account: (id) => accounts.get(id),
      // Complete by now: with nothing loaded, every transfer id of the batch is new.
      transfer: transfers.size === 0 ? () => undefined : (id) => transfers.get(id),
    };

    const effects: BatchEffects = newEffects();
    for (const hold of due) {
      expireHold(hold, accounts.get(hold.debitAccountId)!, accounts.get(hold.creditAccountId)!, nextTimestamp(), effects);
    }

    const created = new Map<string, Transfer>();
    const newAccounts = new Map<string, Account>();
    const outcomes: unknown[] = [];
    let transferCount = 0;
    for (const op of batch) {
      if (op.kind === "transfers") {
        transferCount += op.inputs.length;
        outcomes.push(applyTransfers(set, created, op.inputs, op.merchantId, { nextTimestamp, balanceMax: this.limits.balanceMax }, effects));
      } else if (op.kind === "accounts") {
        outcomes.push(op.inputs.map((input) => createAccount(accounts, newAccounts, input, op.merchantId, nowUs)));
      } else {
        outcomes.push(due.length);
      }
    }

    if (!verify) {
      // The optimistic exists check saw only transfers in flight. A transfer that was refused
      // might have been a replay of one on disk ("exists" outranks every failure): look those
      // few up, and if one exists, redo the batch with every id checked.
      const refused: string[] = [];
      batch.forEach((op, i) => {
        if (op.kind !== "transfers") return;
        (outcomes[i] as TransferOutcome[]).forEach((o, j) => {
          if (o.result !== "created" && o.result !== "exists") refused.push(op.inputs[j]!.id);
        });
      });
      if (refused.length > 0 && (await session.findExisting(refused, true)).size > 0) {
        throw new DuplicateIdError("a refused transfer's id exists: checking every id");
      }
    }
    const changed = effects.created.length > 0 || due.length > 0 || newAccounts.size > 0;
    const version = changed ? session.version + 1n : session.version;
    const tx = this.recorder.kysely;
    this.recorder.take();
    // One outbox event per batch: consumers read the transfers by timestamp range.
    const events: Array<readonly [string, string, bigint, string]> = [];
    if (changed) {
      const data = {
        transfers_created: effects.created.length,
        holds_resolved: effects.resolvedHolds.size,
        accounts_created: [...newAccounts.keys()],
        first_timestamp: effects.created[0]?.ts.toString() ?? null,
        last_timestamp: effects.created.at(-1)?.ts.toString() ?? null,
      };
      events.push([`evt_${ulid()}`, "ledger.batch_committed", nowUs, JSON.stringify(data)]);
    }
    for (let i = 0; i < batch.length; i++) {
      const op = batch[i]!;
      if (op.kind !== "tick" && op.hook) await (op.hook as BatchHook<unknown>)(tx, outcomes[i]);
    }
    const statements = this.recorder.take();
    this.cacheUnchangedSince(resets);
    this.lastTs = last;
    this.cacheVersion = version;
    const stats = { created: effects.created.length, expired: due.length, transfers: transferCount };
    // A batch with nothing to write is answered at once, unless batches it read from are still
    // in flight: then it goes to the writer empty, to be answered only once they committed (its
    // version check fails, and it is redone, if one of them did not).
    const waitsForOthers = this.store.pipelined && this.inFlight.size > 0;
    if (!changed && statements.length === 0 && !waitsForOthers) return { outcomes, stats, writes: null, lastTs: last };
    const writes: BatchWrites = {
      newAccounts: [...newAccounts.values()],
      transfers: effects.created,
      createdById: created,
      resolvedHolds: [...effects.resolvedHolds.values()].filter((h) => !created.has(h.id)),
      balances: effects.touchedAccounts.filter((a) => !newAccounts.has(a.id)),
      checkpoints: effects.checkpoints,
      lastTs: last,
      expectVersion: session.version,
      version,
      statements,
      events,
    };
    return { outcomes, stats, writes, lastTs: last };
  }
}

function sizeOf(op: OpBody): number {
  return op.kind === "tick" ? 0 : op.inputs.length;
}

function createAccount(
  accounts: Map<string, Account>,
  newAccounts: Map<string, Account>,
  input: AccountInput,
  merchantId: string | null,
  nowUs: bigint,
): AccountOutcome {
  const existing = accounts.get(input.id);
  if (existing) {
    // A copy: the cached account keeps changing with later batches.
    return { result: sameAccountFields(existing, input, merchantId) ? "exists" : "exists_with_different_fields", account: { ...existing } };
  }
  // Every field by name, in the order accountFromRow writes them, so that accounts made here and
  // accounts read back from the database share one object shape. With a spread of the caller's
  // input here, the rules took 9.7 µs per transfer in the server against 2.2 µs with this literal
  // (measured, batches of 2000 over 1000 accounts): property access on the spread's objects is slow.
  const account: Account = {
    id: input.id,
    merchantId,
    currency: input.currency,
    code: input.code,
    normalBalance: input.normalBalance,
    flags: input.flags,
    owner: input.owner,
    metadata: input.metadata,
    createdAt: nowUs,
    debitsPending: 0n,
    debitsPosted: 0n,
    creditsPending: 0n,
    creditsPosted: 0n,
    lastTs: null,
    transferCount: 0,
    touchedBy: 0,
  };
  accounts.set(account.id, account);
  newAccounts.set(account.id, account);
  return { result: "created", account: { ...account } };
}

/** Errors from the database or the network, as opposed to bugs: the request may be retried. */
function isInfrastructure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (/^(08|53|57|40)/.test(code) || code.startsWith("SQLITE_") || code.startsWith("E"))) return true;
  return /connect|terminat|timeout|closed/i.test(error.message);
}
