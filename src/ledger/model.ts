// The ledger's domain: accounts, transfers and holds, and the pure rules that decide what a
// transfer does. `applyTransfers` is the whole of LEDGER.md's semantics over an in-memory working
// set; the engine loads that set, runs this, and writes the result in one transaction.
import { assert } from "../kernel/assert.ts";

export type NormalBalance = "credit" | "debit";

export interface Balances {
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

export interface AccountFlags {
  readonly debitsMustNotExceedCredits: boolean;
  readonly creditsMustNotExceedDebits: boolean;
}

export interface Account extends Balances {
  readonly id: string;
  readonly merchantId: string | null;
  readonly currency: string;
  readonly code: number;
  readonly normalBalance: NormalBalance;
  readonly flags: AccountFlags;
  readonly owner: string | null;
  /** Canonical JSON text (keys sorted), or null. */
  readonly metadata: string | null;
  readonly createdAt: bigint;
  /** Timestamp of the latest transfer touching the account: the head of its history chain. */
  lastTs: bigint | null;
  /**
   * Transfers in the account's history. A number, not a bigint: it counts (2^53 transfers is out
   * of reach), and each transfer adds one to two accounts, where a bigint would be two new heap
   * objects per transfer that live until the batch commits (docs/benchmarks.md, session 8).
   * Stored as a 64-bit integer; converted at the database boundary.
   */
  transferCount: number;
  /**
   * The batch that last changed the account (its BatchEffects.mark), so a batch lists each
   * account it changed once without a map keyed by id. Bookkeeping of the engine: 0 when read.
   */
  touchedBy: number;
}

/** Every this many transfers of an account, one is indexed as a checkpoint (see queries.ts). */
export const CHECKPOINT_INTERVAL = 32;

export const FLAG_PENDING = 1;
export const FLAG_LINKED = 2;
export const FLAG_POST = 4;
export const FLAG_VOID = 8;

export const ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS = 1;
export const ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS = 2;

export type TransferStatus = "posted" | "pending" | "voided" | "expired";

export interface Transfer {
  /** Ledger timestamp in microseconds: unique, strictly increasing in order of application. */
  readonly ts: bigint;
  readonly id: string;
  readonly merchantId: string | null;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly code: number;
  /** FLAG_* bits. */
  readonly flags: number;
  /** The hold this transfer posts or voids. */
  readonly pendingId: string | null;
  readonly timeoutSeconds: number;
  readonly expiresAt: bigint | null;
  status: TransferStatus;
  /** For a hold: the ledger timestamp at which it was posted, voided or expired. */
  resolvedAt: bigint | null;
  readonly reference: string | null;
  readonly metadata: string | null;
  /**
   * Balances of the debit account (dr*) and of the credit account (cr*) right after this
   * transfer, as fields of the transfer rather than two objects of their own: every transfer
   * lives until its batch commits, and the garbage collector copied the two extra objects of
   * every transfer while it waited (docs/benchmarks.md, session 8). `debitAfter(t)` and
   * `creditAfter(t)` give them as Balances.
   */
  readonly drDebitsPending: bigint;
  readonly drDebitsPosted: bigint;
  readonly drCreditsPending: bigint;
  readonly drCreditsPosted: bigint;
  readonly crDebitsPending: bigint;
  readonly crDebitsPosted: bigint;
  readonly crCreditsPending: bigint;
  readonly crCreditsPosted: bigint;
  /** The previous transfer of the debit (credit) account: the history chain. */
  readonly debitPrevTs: bigint | null;
  readonly creditPrevTs: bigint | null;
}

/** A transfer as a client asked for it, after schema validation and parsing. */
export interface TransferInput {
  readonly id: string;
  readonly debitAccountId?: string;
  readonly creditAccountId?: string;
  readonly amount?: bigint;
  readonly currency?: string;
  readonly code?: number;
  readonly pending: boolean;
  readonly timeoutSeconds: number;
  readonly postPendingId?: string;
  readonly voidPendingId?: string;
  readonly linked: boolean;
  readonly reference?: string;
  readonly metadata?: string;
}

/** LEDGER.md result codes, in order of precedence. */
export const TRANSFER_RESULTS = [
  "created",
  "exists",
  "exists_with_different_fields",
  "linked_event_failed",
  "linked_event_chain_open",
  "accounts_must_be_different",
  "debit_account_not_found",
  "credit_account_not_found",
  "currency_mismatch",
  "pending_transfer_not_found",
  "pending_transfer_not_pending",
  "pending_transfer_has_different_fields",
  "pending_transfer_already_posted",
  "pending_transfer_already_voided",
  "pending_transfer_expired",
  "exceeds_pending_transfer_amount",
  "exceeds_credits",
  "exceeds_debits",
  "overflow",
] as const;
export type TransferResult = (typeof TRANSFER_RESULTS)[number];
export type TransferFailure = Exclude<TransferResult, "created" | "exists">;

export interface TransferOutcome {
  readonly result: TransferResult;
  /** The created transfer, or the stored one for `exists`. */
  readonly transfer?: Transfer;
}

export const ZERO_BALANCES: Readonly<Balances> = Object.freeze({
  debitsPending: 0n,
  debitsPosted: 0n,
  creditsPending: 0n,
  creditsPosted: 0n,
});

export function copyBalances(b: Balances): Balances {
  return {
    debitsPending: b.debitsPending,
    debitsPosted: b.debitsPosted,
    creditsPending: b.creditsPending,
    creditsPosted: b.creditsPosted,
  };
}

/** The debit account's balances right after transfer `t`. */
export function debitAfter(t: Transfer): Balances {
  return { debitsPending: t.drDebitsPending, debitsPosted: t.drDebitsPosted, creditsPending: t.drCreditsPending, creditsPosted: t.drCreditsPosted };
}

/** The credit account's balances right after transfer `t`. */
export function creditAfter(t: Transfer): Balances {
  return { debitsPending: t.crDebitsPending, debitsPosted: t.crDebitsPosted, creditsPending: t.crCreditsPending, creditsPosted: t.crCreditsPosted };
}

/** A transfer's balance-after fields from the two accounts' balances (rows, tests). */
export function afterFields(
  d: Balances,
  c: Balances,
): Pick<Transfer, "drDebitsPending" | "drDebitsPosted" | "drCreditsPending" | "drCreditsPosted" | "crDebitsPending" | "crDebitsPosted" | "crCreditsPending" | "crCreditsPosted"> {
  return {
    drDebitsPending: d.debitsPending,
    drDebitsPosted: d.debitsPosted,
    drCreditsPending: d.creditsPending,
    drCreditsPosted: d.creditsPosted,
    crDebitsPending: c.debitsPending,
    crDebitsPosted: c.debitsPosted,
    crCreditsPending: c.creditsPending,
    crCreditsPosted: c.creditsPosted,
  };
}

/** `balance` and `available` as LEDGER.md defines them for the account's normal balance. */
export function derivedBalance(normal: NormalBalance, b: Balances): { balance: bigint; available: bigint } {
  if (normal === "credit") {
    const balance = b.creditsPosted - b.debitsPosted;
    return { balance, available: balance - b.debitsPending };
  }
  const balance = b.debitsPosted - b.creditsPosted;
  return { balance, available: balance - b.creditsPending };
}

export function accountFlagBits(flags: AccountFlags): number {
  return (
    (flags.debitsMustNotExceedCredits ? ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS : 0) |
    (flags.creditsMustNotExceedDebits ? ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS : 0)
  );
}

export function accountFlagsFromBits(bits: number): AccountFlags {
  return {
    debitsMustNotExceedCredits: (bits & ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS) !== 0,
    creditsMustNotExceedDebits: (bits & ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS) !== 0,
  };
}

/** A hold's status as a reader should see it: past its deadline it is expired, swept or not. */
export function effectiveStatus(t: Transfer, nowUs: bigint): TransferStatus {
  if (t.status === "pending" && t.expiresAt !== null && t.expiresAt <= nowUs) return "expired";
  return t.status;
}

/** Nesting deeper than this in client JSON (metadata) is refused. */
export const JSON_DEPTH_MAX = 32;

export class JsonTooDeepError extends Error {
  override name = "JsonTooDeepError";
}

/**
 * Canonical JSON: object keys sorted, so equal documents compare equal as text. Written by hand
 * so that every key survives (a "__proto__" key is data here, never a prototype) and so that
 * nesting is bounded instead of exhausting the stack.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > JSON_DEPTH_MAX) throw new JsonTooDeepError(`JSON nested deeper than ${JSON_DEPTH_MAX} levels`);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    const parts = keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], depth + 1)}`);
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

// ---------------------------------------------------------------------------------------------
// Accounts

export interface AccountInput {
  readonly id: string;
  readonly currency: string;
  readonly code: number;
  readonly normalBalance: NormalBalance;
  readonly flags: AccountFlags;
  readonly owner: string | null;
  readonly metadata: string | null;
}

export type AccountResult = "created" | "exists" | "exists_with_different_fields";

export function sameAccountFields(a: Account, input: AccountInput, merchantId: string | null): boolean {
  return (
    a.merchantId === merchantId &&
    a.currency === input.currency &&
    a.code === input.code &&
    a.normalBalance === input.normalBalance &&
    a.flags.debitsMustNotExceedCredits === input.flags.debitsMustNotExceedCredits &&
    a.flags.creditsMustNotExceedDebits === input.flags.creditsMustNotExceedDebits &&
    a.owner === input.owner &&
    a.metadata === input.metadata
  );
}

// ---------------------------------------------------------------------------------------------
// Transfers

/** What the apply step reads: accounts and transfers as they stand, including this batch's work. */
export interface WorkingSet {
  account(id: string): Account | undefined;
  transfer(id: string): Transfer | undefined;
}

export interface ApplyContext {
  /** The next ledger timestamp; strictly greater than every one handed out before. */
  nextTimestamp(): bigint;
  readonly balanceMax: bigint;
}

/** What a batch changed: the engine writes exactly this. */
export interface BatchEffects {
  readonly created: Transfer[];
  /** Holds whose status changed (posted, voided or expired). */
  readonly resolvedHolds: Map<string, Transfer>;
  /**
   * Accounts whose balances changed, each once, in the order first changed; their final state.
   * An array marked through `Account.touchedBy`, not a map by id: two map writes per transfer and
   * the map's growth to thousands of entries showed in profiles of large batches.
   */
  readonly touchedAccounts: Account[];
  /** (account, transfer timestamp) pairs to index as history checkpoints. */
  readonly checkpoints: Array<{ accountId: string; ts: bigint }>;
  /** This batch's mark, unique in the process. */
  readonly mark: number;
}

let lastMark = 0;

export function newEffects(): BatchEffects {
  return { created: [], resolvedHolds: new Map(), touchedAccounts: [], checkpoints: [], mark: ++lastMark };
}

function touch(account: Account, effects: BatchEffects): void {
  if (account.touchedBy === effects.mark) return;
  account.touchedBy = effects.mark;
  effects.touchedAccounts.push(account);
}

interface AccountSnapshot extends Balances {
  lastTs: bigint | null;
  transferCount: number;
}

function snapshotAccount(a: Account): AccountSnapshot {
  return { ...copyBalances(a), lastTs: a.lastTs, transferCount: a.transferCount };
}

interface Undo {
  readonly accounts: Map<Account, AccountSnapshot>;
  readonly holds: Array<{ hold: Transfer; status: TransferStatus; resolvedAt: bigint | null; wasResolved: boolean }>;
  readonly createdLength: number;
  readonly checkpointsLength: number;
  readonly createdIds: string[];
}

/**
 * Applies one client request's transfers in order, atomically per linked chain.
 * `created` maps the ids created in this batch, so later transfers see earlier ones.
 */
export function applyTransfers(
  set: WorkingSet,
  created: Map<string, Transfer>,
  inputs: readonly TransferInput[],
  merchantId: string | null,
  ctx: ApplyContext,
  effects: BatchEffects,
): TransferOutcome[] {
  const outcomes: TransferOutcome[] = new Array(inputs.length);
  let start = 0;
  while (start < inputs.length) {
    let end = start;
    while (end < inputs.length - 1 && inputs[end]!.linked) end++;
    const chainOpen = inputs[end]!.linked; // the last transfer of the request is still linked
    const isChain = end > start || chainOpen;
    const undo: Undo | null = isChain
      ? { accounts: new Map(), holds: [], createdLength: effects.created.length, checkpointsLength: effects.checkpoints.length, createdIds: [] }
      : null;
    let failedAt = -1;
    for (let i = start; i <= end; i++) {
      const outcome = applyOne(set, created, inputs[i]!, merchantId, ctx, effects, undo, chainOpen && i === end);
      outcomes[i] = outcome;
      if (outcome.result !== "created" && outcome.result !== "exists") {
        failedAt = i;
        break;
      }
    }
    if (failedAt >= 0 && undo) {
      rollBack(undo, created, effects);
      for (let i = start; i <= end; i++) {
        if (i === failedAt) continue;
        // Asked again after the rollback: an earlier "exists" may have matched a transfer this
        // very chain created, which no longer exists.
        const existing = existsOutcome(set, created, inputs[i]!, merchantId);
        outcomes[i] =
          existing && (existing.result === "exists" || existing.result === "exists_with_different_fields")
            ? existing
            : { result: "linked_event_failed" };
      }
    }
    start = end + 1;
  }
  return outcomes;
}

function rollBack(undo: Undo, created: Map<string, Transfer>, effects: BatchEffects): void {
  for (const [account, before] of undo.accounts) Object.assign(account, before);
  for (let i = undo.holds.length - 1; i >= 0; i--) {
    const h = undo.holds[i]!;
    h.hold.status = h.status;
    h.hold.resolvedAt = h.resolvedAt;
    if (!h.wasResolved) effects.resolvedHolds.delete(h.hold.id);
  }
  effects.created.length = undo.createdLength;
  effects.checkpoints.length = undo.checkpointsLength;
  for (const id of undo.createdIds) created.delete(id);
}

function existsOutcome(
  set: WorkingSet,
  created: Map<string, Transfer>,
  input: TransferInput,
  merchantId: string | null,
): TransferOutcome | null {
  const existing = created.get(input.id) ?? set.transfer(input.id);
  if (!existing) return null;
  return sameTransferFields(existing, input, merchantId, set, created)
    ? { result: "exists", transfer: existing }
    : { result: "exists_with_different_fields", transfer: existing };
}

/** Replays compare after parsing; an omitted optional field equals its default. */
export function sameTransferFields(
  t: Transfer,
  input: TransferInput,
  merchantId: string | null,
  set: WorkingSet,
  created: Map<string, Transfer>,
): boolean {
  if (t.merchantId !== merchantId) return false;
  const kindFlags = t.flags & (FLAG_POST | FLAG_VOID);
  const inputKind = input.postPendingId !== undefined ? FLAG_POST : input.voidPendingId !== undefined ? FLAG_VOID : 0;
  if (kindFlags !== inputKind) return false;
  if ((input.postPendingId ?? input.voidPendingId ?? null) !== t.pendingId) return false;
  if (((t.flags & FLAG_PENDING) !== 0) !== input.pending) return false;
  if (((t.flags & FLAG_LINKED) !== 0) !== input.linked) return false;
  if (t.timeoutSeconds !== input.timeoutSeconds) return false;
  if (inputKind === 0 && (input.code ?? 0) !== t.code) return false;
  if ((input.reference ?? null) !== t.reference) return false;
  if ((input.metadata ?? null) !== t.metadata) return false;
  if (inputKind === 0) {
    return (
      input.debitAccountId === t.debitAccountId &&
      input.creditAccountId === t.creditAccountId &&
      input.amount === t.amount &&
      input.currency === t.currency
    );
  }
  // Post/void: omitted accounts, currency and amount default to the hold's.
  if (input.debitAccountId !== undefined && input.debitAccountId !== t.debitAccountId) return false;
  if (input.creditAccountId !== undefined && input.creditAccountId !== t.creditAccountId) return false;
  if (input.currency !== undefined && input.currency !== t.currency) return false;
  if (input.amount !== undefined && input.amount !== t.amount) return false;
  // An omitted code takes the hold's, as an omitted amount takes the full held amount.
  if (input.code !== undefined && input.code !== t.code) return false;
  const hold = created.get(t.pendingId!) ?? set.transfer(t.pendingId!);
  if (input.amount === undefined && hold && hold.amount !== t.amount) return false;
  if (input.code === undefined && hold && hold.code !== t.code) return false;
  return true;
}

function visibleAccount(set: WorkingSet, id: string | undefined, merchantId: string | null): Account | undefined {
  if (id === undefined) return undefined;
  const account = set.account(id);
  if (!account) return undefined;
  // A merchant's key sees only that merchant's accounts; the admin (null) sees all.
  if (merchantId !== null && account.merchantId !== merchantId) return undefined;
  return account;
}

function applyOne(
  set: WorkingSet,
  created: Map<string, Transfer>,
  input: TransferInput,
  merchantId: string | null,
  ctx: ApplyContext,
  effects: BatchEffects,
  undo: Undo | null,
  isOpenChainEnd: boolean,
): TransferOutcome {
  const existing = existsOutcome(set, created, input, merchantId);
  if (existing) return existing;
  if (isOpenChainEnd) return { result: "linked_event_chain_open" };

  const pendingId = input.postPendingId ?? input.voidPendingId;
  let hold: Transfer | undefined;
  if (pendingId !== undefined) {
    hold = created.get(pendingId) ?? set.transfer(pendingId);
    if (hold && merchantId !== null && hold.merchantId !== merchantId) hold = undefined;
    if (!hold) return { result: "pending_transfer_not_found" };
  }
  const debitId = input.debitAccountId ?? hold?.debitAccountId;
  const creditId = input.creditAccountId ?? hold?.creditAccountId;
  const currency = input.currency ?? hold?.currency;
  if (debitId === creditId) return { result: "accounts_must_be_different" };
  const debit = visibleAccount(set, debitId, merchantId);
  if (!debit) return { result: "debit_account_not_found" };
  const credit = visibleAccount(set, creditId, merchantId);
  if (!credit) return { result: "credit_account_not_found" };
  if (debit.currency !== currency || credit.currency !== currency) return { result: "currency_mismatch" };

  const ts = ctx.nextTimestamp();
  let amount: bigint;
  let releasedPending = 0n;
  if (hold) {
    if ((hold.flags & FLAG_PENDING) === 0) return { result: "pending_transfer_not_pending" };
    if (
      hold.debitAccountId !== debitId ||
      hold.creditAccountId !== creditId ||
      hold.currency !== currency ||
      (input.code !== undefined && input.code !== hold.code) ||
      (input.voidPendingId !== undefined && input.amount !== undefined && input.amount !== hold.amount)
    ) {
      return { result: "pending_transfer_has_different_fields" };
    }
    if (hold.status === "posted") return { result: "pending_transfer_already_posted" };
    if (hold.status === "voided") return { result: "pending_transfer_already_voided" };
    if (hold.status === "expired" || (hold.expiresAt !== null && hold.expiresAt <= ts)) {
      return { result: "pending_transfer_expired" };
    }
    assert(hold.status === "pending", "a hold is pending, posted, voided or expired");
    amount = input.postPendingId !== undefined ? (input.amount ?? hold.amount) : hold.amount;
    if (amount > hold.amount) return { result: "exceeds_pending_transfer_amount" };
    releasedPending = hold.amount;
  } else {
    assert(input.amount !== undefined && input.amount > 0n, "schema guarantees a positive amount");
    amount = input.amount;
  }

  // The balances this transfer would leave. Posting or voiding never raises debits_pending +
  // debits_posted (or the credit mirror), so a hold's completion never fails a limit check.
  const isPost = input.postPendingId !== undefined;
  const isVoid = input.voidPendingId !== undefined;
  // Every bigint result is a new heap object: adding a zero is skipped, and the overflow sums are
  // formed only when a side could reach the bound (allocation showed in profiles of big batches).
  const posted = isVoid ? 0n : input.pending ? 0n : amount;
  const pendingDelta = input.pending ? amount : releasedPending === 0n ? 0n : -releasedPending;
  const dPending = pendingDelta === 0n ? debit.debitsPending : debit.debitsPending + pendingDelta;
  const dPosted = posted === 0n ? debit.debitsPosted : debit.debitsPosted + posted;
  const cPending = pendingDelta === 0n ? credit.creditsPending : credit.creditsPending + pendingDelta;
  const cPosted = posted === 0n ? credit.creditsPosted : credit.creditsPosted + posted;
  if (debit.flags.debitsMustNotExceedCredits && dPending + dPosted > debit.creditsPosted) {
    return { result: "exceeds_credits" };
  }
  if (credit.flags.creditsMustNotExceedDebits && cPending + cPosted > credit.debitsPosted) {
    return { result: "exceeds_debits" };
  }
  const max = ctx.balanceMax;
  const half = halfOf(max);
  if (
    ((dPending > half || dPosted > half) && dPending + dPosted > max) ||
    ((cPending > half || cPosted > half) && cPending + cPosted > max)
  ) {
    return { result: "overflow" };
  }

  if (undo) {
    if (!undo.accounts.has(debit)) undo.accounts.set(debit, snapshotAccount(debit));
    if (!undo.accounts.has(credit)) undo.accounts.set(credit, snapshotAccount(credit));
  }
  debit.debitsPending = dPending;
  debit.debitsPosted = dPosted;
  credit.creditsPending = cPending;
  credit.creditsPosted = cPosted;
  const debitPrevTs = debit.lastTs;
  const creditPrevTs = credit.lastTs;
  linkHistory(debit, ts, effects);
  linkHistory(credit, ts, effects);
  touch(debit, effects);
  touch(credit, effects);

  if (hold) {
    if (undo) {
      undo.holds.push({
        hold,
        status: hold.status,
        resolvedAt: hold.resolvedAt,
        wasResolved: effects.resolvedHolds.has(hold.id),
      });
    }
    hold.status = isPost ? "posted" : "voided";
    hold.resolvedAt = ts;
    effects.resolvedHolds.set(hold.id, hold);
  }

  const flags =
    (input.pending ? FLAG_PENDING : 0) |
    (input.linked ? FLAG_LINKED : 0) |
    (isPost ? FLAG_POST : 0) |
    (isVoid ? FLAG_VOID : 0);
  const transfer: Transfer = {
    ts,
    id: input.id,
    merchantId,
    debitAccountId: debit.id,
    creditAccountId: credit.id,
    amount,
    currency: debit.currency,
    code: input.code ?? hold?.code ?? 0,
    flags,
    pendingId: pendingId ?? null,
    timeoutSeconds: input.timeoutSeconds,
    expiresAt: input.pending && input.timeoutSeconds > 0 ? ts + BigInt(input.timeoutSeconds) * 1_000_000n : null,
    status: input.pending ? "pending" : isVoid ? "voided" : "posted",
    resolvedAt: null,
    reference: input.reference ?? null,
    metadata: input.metadata ?? null,
    drDebitsPending: debit.debitsPending,
    drDebitsPosted: debit.debitsPosted,
    drCreditsPending: debit.creditsPending,
    drCreditsPosted: debit.creditsPosted,
    crDebitsPending: credit.debitsPending,
    crDebitsPosted: credit.debitsPosted,
    crCreditsPending: credit.creditsPending,
    crCreditsPosted: credit.creditsPosted,
    debitPrevTs,
    creditPrevTs,
  };
  created.set(transfer.id, transfer);
  effects.created.push(transfer);
  undo?.createdIds.push(transfer.id);
  return { result: "created", transfer };
}

let halfOfMax = -1n;
let halfOfResult = 0n;
/** max / 2, rounded down: two balances at most this large cannot sum past max. Remembered for the last max. */
function halfOf(max: bigint): bigint {
  if (max !== halfOfMax) {
    halfOfMax = max;
    halfOfResult = max / 2n;
  }
  return halfOfResult;
}

/** Makes the transfer at `ts` the head of the account's history chain. */
function linkHistory(account: Account, ts: bigint, effects: BatchEffects): void {
  assert(account.lastTs === null || account.lastTs < ts, "history is strictly increasing in time");
  account.lastTs = ts;
  account.transferCount += 1;
  if (account.transferCount % CHECKPOINT_INTERVAL === 0) effects.checkpoints.push({ accountId: account.id, ts });
}

/** Releases an expired hold: its pending amounts leave both accounts. */
export function expireHold(hold: Transfer, debit: Account, credit: Account, ts: bigint, effects: BatchEffects): void {
  assert(hold.status === "pending" && (hold.flags & FLAG_PENDING) !== 0, "only a pending hold expires");
  assert(debit.id === hold.debitAccountId && credit.id === hold.creditAccountId, "hold accounts");
  debit.debitsPending -= hold.amount;
  credit.creditsPending -= hold.amount;
  assert(debit.debitsPending >= 0n && credit.creditsPending >= 0n, "pending balances never go negative");
  hold.status = "expired";
  hold.resolvedAt = ts;
  effects.resolvedHolds.set(hold.id, hold);
  touch(debit, effects);
  touch(credit, effects);
}
