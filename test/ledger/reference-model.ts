// A small reference model of the ledger, written from LEDGER.md alone (it shares no code with
// src/ledger), for the property tests to compare Tally against: accounts, transfers, holds,
// linked chains, result codes in order of precedence, and balances at any past moment.
// It trades speed for obviousness: a chain is rolled back by restoring a copy of the whole state.

export type NormalBalance = "credit" | "debit";

export interface Balances {
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

export interface ModelAccount {
  readonly id: string;
  readonly currency: string;
  readonly normalBalance: NormalBalance;
  readonly debitsMustNotExceedCredits: boolean;
  readonly creditsMustNotExceedDebits: boolean;
  balances: Balances;
}

/** A transfer request after parsing: what LEDGER.md compares replays on. */
export interface TransferRequest {
  readonly id: string;
  readonly debitAccountId?: string;
  readonly creditAccountId?: string;
  readonly amount?: bigint;
  readonly currency?: string;
  readonly code?: number;
  readonly pending?: boolean;
  readonly timeoutSeconds?: number;
  readonly postPendingId?: string;
  readonly voidPendingId?: string;
  readonly linked?: boolean;
  readonly reference?: string;
  /** Canonical JSON (keys sorted); an empty object is the same as none. */
  readonly metadata?: string;
}

export type TransferKind = "plain" | "hold" | "post" | "void";
export type HoldState = "pending" | "posted" | "voided" | "expired";

export interface ModelTransfer {
  readonly id: string;
  readonly kind: TransferKind;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  /** For a post: the posted part. For a void: the amount released. */
  readonly amount: bigint;
  readonly currency: string;
  readonly code: number;
  readonly pendingId: string | null;
  /** For a post or void: the amount the hold held, which leaves `*_pending`. */
  readonly heldAmount: bigint;
  readonly timeoutSeconds: number;
  readonly linked: boolean;
  readonly reference: string | null;
  readonly metadata: string | null;
  /** Position in the order of application. */
  readonly seq: number;
  /** The ledger timestamp (µs), learnt from Tally after the request; null until then. */
  ts: bigint | null;
  /** For a hold only. */
  holdState: HoldState | null;
  /** For an expired hold: how many transfers had been applied when it expired. */
  expiredAfterSeq: number | null;
  /** The account balances right after this transfer. */
  readonly debitAfter: Balances;
  readonly creditAfter: Balances;
}

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

/** No balance figure may exceed 2^53 − 1 (CONVENTIONS.md: every JSON reader holds it exactly). */
export const BALANCE_MAX = 2n ** 53n - 1n;

export interface LedgerModel {
  accounts: Map<string, ModelAccount>;
  transfers: Map<string, ModelTransfer>;
  /** Created transfers in order of application. */
  order: ModelTransfer[];
}

export function emptyModel(): LedgerModel {
  return { accounts: new Map(), transfers: new Map(), order: [] };
}

export function zeroBalances(): Balances {
  return { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n };
}

function copyBalances(b: Balances): Balances {
  return { ...b };
}

export function addAccount(
  model: LedgerModel,
  account: Omit<ModelAccount, "balances">,
): void {
  model.accounts.set(account.id, { ...account, balances: zeroBalances() });
}

/** `balance` and `available` per LEDGER.md, for the account's normal balance. */
export function derived(normal: NormalBalance, b: Balances): { balance: bigint; available: bigint } {
  if (normal === "credit") {
    const balance = b.creditsPosted - b.debitsPosted;
    return { balance, available: balance - b.debitsPending };
  }
  const balance = b.debitsPosted - b.creditsPosted;
  return { balance, available: balance - b.creditsPending };
}

export function deadlineUs(t: ModelTransfer): bigint | null {
  if (t.kind !== "hold" || t.timeoutSeconds === 0 || t.ts === null) return null;
  return t.ts + BigInt(t.timeoutSeconds) * 1_000_000n;
}

function isDue(hold: ModelTransfer, nowUs: bigint): boolean {
  const deadline = deadlineUs(hold);
  return deadline !== null && deadline <= nowUs;
}

/** Expires every pending hold whose deadline is ≤ now; returns them. */
export function expireDue(model: LedgerModel, nowUs: bigint): ModelTransfer[] {
  const expired: ModelTransfer[] = [];
  for (const t of model.order) {
    if (t.kind !== "hold" || t.holdState !== "pending" || !isDue(t, nowUs)) continue;
    const debit = model.accounts.get(t.debitAccountId)!;
    const credit = model.accounts.get(t.creditAccountId)!;
    debit.balances.debitsPending -= t.amount;
    credit.balances.creditsPending -= t.amount;
    t.holdState = "expired";
    t.expiredAfterSeq = model.order.length;
    expired.push(t);
  }
  return expired;
}

function kindOf(r: TransferRequest): TransferKind {
  if (r.postPendingId !== undefined) return "post";
  if (r.voidPendingId !== undefined) return "void";
  return r.pending ? "hold" : "plain";
}

/** The request with every omitted field filled in, as it would be stored. */
function resolved(model: LedgerModel, r: TransferRequest) {
  const kind = kindOf(r);
  const pendingId = r.postPendingId ?? r.voidPendingId ?? null;
  const hold = pendingId === null ? undefined : model.transfers.get(pendingId);
  return {
    kind,
    pendingId,
    debitAccountId: r.debitAccountId ?? hold?.debitAccountId,
    creditAccountId: r.creditAccountId ?? hold?.creditAccountId,
    currency: r.currency ?? hold?.currency,
    amount: r.amount ?? hold?.amount,
    code: r.code ?? hold?.code ?? 0,
    timeoutSeconds: r.timeoutSeconds ?? 0,
    linked: r.linked ?? false,
    reference: r.reference ?? null,
    metadata: r.metadata ?? null,
  };
}

/** Replays compare after parsing, with omitted optional fields at their defaults. */
function sameFields(model: LedgerModel, stored: ModelTransfer, r: TransferRequest): boolean {
  const x = resolved(model, r);
  return (
    x.kind === stored.kind &&
    x.pendingId === stored.pendingId &&
    x.debitAccountId === stored.debitAccountId &&
    x.creditAccountId === stored.creditAccountId &&
    x.currency === stored.currency &&
    x.amount === (stored.kind === "void" ? stored.heldAmount : stored.amount) &&
    x.code === stored.code &&
    x.timeoutSeconds === stored.timeoutSeconds &&
    x.linked === stored.linked &&
    x.reference === stored.reference &&
    x.metadata === stored.metadata
  );
}

function applyOne(model: LedgerModel, r: TransferRequest, nowUs: bigint, isOpenChainEnd: boolean): TransferResult {
  const stored = model.transfers.get(r.id);
  if (stored) return sameFields(model, stored, r) ? "exists" : "exists_with_different_fields";
  if (isOpenChainEnd) return "linked_event_chain_open";

  const kind = kindOf(r);
  const pendingId = r.postPendingId ?? r.voidPendingId;
  const hold = pendingId === undefined ? undefined : model.transfers.get(pendingId);
  if (pendingId !== undefined && !hold) return "pending_transfer_not_found";
  const debitId = r.debitAccountId ?? hold?.debitAccountId;
  const creditId = r.creditAccountId ?? hold?.creditAccountId;
  const currency = r.currency ?? hold?.currency;
  if (debitId === creditId) return "accounts_must_be_different";
  const debit = debitId === undefined ? undefined : model.accounts.get(debitId);
  if (!debit) return "debit_account_not_found";
  const credit = creditId === undefined ? undefined : model.accounts.get(creditId);
  if (!credit) return "credit_account_not_found";
  if (debit.currency !== currency || credit.currency !== currency) return "currency_mismatch";

  let amount: bigint;
  let heldAmount = 0n;
  if (hold) {
    if (hold.kind !== "hold") return "pending_transfer_not_pending";
    const differs =
      debit.id !== hold.debitAccountId ||
      credit.id !== hold.creditAccountId ||
      currency !== hold.currency ||
      (r.code !== undefined && r.code !== hold.code) ||
      (kind === "void" && r.amount !== undefined && r.amount !== hold.amount);
    if (differs) return "pending_transfer_has_different_fields";
    if (hold.holdState === "posted") return "pending_transfer_already_posted";
    if (hold.holdState === "voided") return "pending_transfer_already_voided";
    if (hold.holdState === "expired" || isDue(hold, nowUs)) return "pending_transfer_expired";
    amount = kind === "post" ? (r.amount ?? hold.amount) : hold.amount;
    if (amount > hold.amount) return "exceeds_pending_transfer_amount";
    heldAmount = hold.amount;
  } else {
    amount = r.amount!;
  }

  const d = copyBalances(debit.balances);
  const c = copyBalances(credit.balances);
  if (kind === "plain") {
    d.debitsPosted += amount;
    c.creditsPosted += amount;
  } else if (kind === "hold") {
    d.debitsPending += amount;
    c.creditsPending += amount;
  } else {
    d.debitsPending -= heldAmount;
    c.creditsPending -= heldAmount;
    if (kind === "post") {
      d.debitsPosted += amount;
      c.creditsPosted += amount;
    }
  }
  // Posting or voiding a hold only lowers pending + posted, so it never fails a limit check.
  if (kind === "plain" || kind === "hold") {
    if (debit.debitsMustNotExceedCredits && d.debitsPending + d.debitsPosted > d.creditsPosted) return "exceeds_credits";
    if (credit.creditsMustNotExceedDebits && c.creditsPending + c.creditsPosted > c.debitsPosted) return "exceeds_debits";
  }
  if (d.debitsPending + d.debitsPosted > BALANCE_MAX || c.creditsPending + c.creditsPosted > BALANCE_MAX) return "overflow";

  debit.balances = d;
  credit.balances = c;
  if (hold) hold.holdState = kind === "post" ? "posted" : "voided";
  const transfer: ModelTransfer = {
    id: r.id,
    kind,
    debitAccountId: debit.id,
    creditAccountId: credit.id,
    amount,
    currency: debit.currency,
    code: r.code ?? hold?.code ?? 0,
    pendingId: pendingId ?? null,
    heldAmount,
    timeoutSeconds: r.timeoutSeconds ?? 0,
    linked: r.linked ?? false,
    reference: r.reference ?? null,
    metadata: r.metadata ?? null,
    seq: model.order.length,
    ts: null,
    holdState: kind === "hold" ? "pending" : null,
    expiredAfterSeq: null,
    debitAfter: copyBalances(d),
    creditAfter: copyBalances(c),
  };
  model.transfers.set(transfer.id, transfer);
  model.order.push(transfer);
  return "created";
}

function copyModel(model: LedgerModel): LedgerModel {
  const accounts = new Map([...model.accounts].map(([id, a]) => [id, { ...a, balances: copyBalances(a.balances) }]));
  const order = model.order.map((t) => ({ ...t }));
  return { accounts, transfers: new Map(order.map((t) => [t.id, t])), order };
}

/**
 * Applies one request's transfers in order at clock time `nowUs`: due holds expire first, then
 * each linked chain (a run of `linked` transfers and the one that closes it) all or nothing.
 */
export function applyBatch(model: LedgerModel, requests: readonly TransferRequest[], nowUs: bigint): TransferResult[] {
  expireDue(model, nowUs);
  const results: TransferResult[] = [];
  let start = 0;
  while (start < requests.length) {
    let end = start;
    while (end < requests.length - 1 && requests[end]!.linked) end++;
    const chainOpen = requests[end]!.linked === true;
    const before = copyModel(model);
    let failedAt = -1;
    for (let i = start; i <= end; i++) {
      const result = applyOne(model, requests[i]!, nowUs, chainOpen && i === end);
      results[i] = result;
      if (result !== "created" && result !== "exists") {
        failedAt = i;
        break;
      }
    }
    if (failedAt >= 0) {
      Object.assign(model, before);
      // The chain changed nothing. Its other members either name a transfer that exists apart
      // from the chain (a replay) or failed with the chain.
      for (let i = start; i <= end; i++) {
        if (i === failedAt) continue;
        const stored = model.transfers.get(requests[i]!.id);
        if (stored) results[i] = sameFields(model, stored, requests[i]!) ? "exists" : "exists_with_different_fields";
        else results[i] = "linked_event_failed";
      }
    }
    start = end + 1;
  }
  return results;
}

/** The transfers touching an account, in order of application. */
export function transfersOf(model: LedgerModel, accountId: string): ModelTransfer[] {
  return model.order.filter((t) => t.debitAccountId === accountId || t.creditAccountId === accountId);
}

/**
 * An account's balances at `atUs`, summed afresh from its transfers with timestamp ≤ atUs, less
 * the holds that expired by then (deadline ≤ atUs). Every transfer must have its timestamp.
 */
export function balancesAt(model: LedgerModel, accountId: string, atUs: bigint): Balances {
  const b = zeroBalances();
  for (const t of transfersOf(model, accountId)) {
    if (t.ts === null) throw new Error(`the model lacks the timestamp of ${t.id}`);
    if (t.ts > atUs) continue;
    const pendingDelta = t.kind === "hold" ? t.amount : t.kind === "plain" ? 0n : -t.heldAmount;
    const postedDelta = t.kind === "plain" || t.kind === "post" ? t.amount : 0n;
    if (t.debitAccountId === accountId) {
      b.debitsPending += pendingDelta;
      b.debitsPosted += postedDelta;
    } else {
      b.creditsPending += pendingDelta;
      b.creditsPosted += postedDelta;
    }
    const deadline = deadlineUs(t);
    if (t.holdState === "expired" && deadline !== null && deadline <= atUs) {
      if (t.debitAccountId === accountId) b.debitsPending -= t.amount;
      else b.creditsPending -= t.amount;
    }
  }
  return b;
}
