// Pay-in use cases: create a payment, attempt it through a routed channel, settle the attempt
// from the channel's answer (synchronous reply, notification or re-query), capture, cancel and
// expire. A channel is never called inside a database transaction: the attempt is recorded
// (intent), the channel called, and the answer recorded; a crash in between leaves an attempt
// the re-query job settles. One payment's commands run one at a time (a keyed lock).
import { createHash, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, type Channel, type PaymentMethod, type PayResult } from "../channels/channel.ts";
import { failure } from "../channels/failures.ts";
import type { Router } from "../channels/routing.ts";
import type { Clock } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import { canTransition, transition } from "../kernel/state-machine.ts";
import type { PostingEngine } from "../ledger/engine.ts";
import type { Database } from "../db/database.ts";
import { createNamedLock, type NamedLock } from "../db/named-lock.ts";
import {
  PAYMENT_TRANSITIONS,
  TERMINAL_PAYMENT_STATUSES,
  cancelPayment,
  capturePayment,
  clearingAccountId,
  requeryDelaySeconds,
  settleAttempt,
  suspenseAccountId,
  type Attempt,
  type Payment,
} from "./model.ts";
import { attemptRow, paymentRow } from "./rows.ts";
import { PaymentReads } from "./store.ts";
import { allApplied, appendEvent, commitUnit, firstRefusal, type Extra, type Tx } from "./unit-of-work.ts";
import { attemptJson, paymentJson } from "./view.ts";

export interface PaymentsContext {
  readonly db: Database;
  readonly engine: PostingEngine;
  readonly clock: Clock;
  readonly limits: Limits;
  readonly channels: ReadonlyMap<string, Channel>;
  readonly router: Router;
  readonly logger: Logger;
  /** The public base URL (checkout links, notify URLs). */
  baseUrl(): string;
}

export interface PaymentCreateInput {
  readonly id?: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly merchantAccountId: string;
  readonly description?: string;
  readonly capture: "automatic" | "manual";
  readonly expiresInSeconds: number;
  readonly returnUrl?: string;
  readonly methods?: readonly PaymentMethod[];
  readonly contractRef?: string;
  /** Canonical JSON text, or undefined. */
  readonly metadata?: string;
}

export interface AttemptInput {
  readonly method: PaymentMethod;
  readonly installments?: number;
  /** Channel-specific options (the simulator's outcome; a WeChat payer's openid). */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly payer?: { readonly clientIp?: string; readonly userAgent?: string };
}

/** Installment plans Alipay Huabei offers (periods). */
export const INSTALLMENT_PERIODS = [3, 6, 12] as const;

export function requestHash(fields: Record<string, unknown>): string {
  return createHash("sha256").update(JSON.stringify(fields, (_k, v) => (typeof v === "bigint" ? v.toString() : v))).digest("hex");
}

export class PaymentService {
  readonly reads: PaymentReads;
  /**
   * Serialises the commands of one payment (and of its refunds), and of one payout source
   * account, across every process that shares the database.
   */
  readonly lock: NamedLock;
  private readonly knownAccounts = new Set<string>();

  constructor(readonly ctx: PaymentsContext) {
    this.reads = new PaymentReads(ctx.db);
    this.lock = createNamedLock(ctx.db);
  }

  async close(): Promise<void> {
    await this.lock.close();
  }

  private nowUs(): bigint {
    return this.ctx.clock.nowUs();
  }

  /** Creates the platform's clearing (debit-normal) or suspense (credit-normal) account once. */
  async ensurePlatformAccount(id: string, currency: string, normalBalance: "debit" | "credit"): Promise<void> {
    if (this.knownAccounts.has(id)) return;
    const [outcome] = await this.ctx.engine.createAccounts(null, [
      { id, currency, code: 0, normalBalance, flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false }, owner: null, metadata: null },
    ]);
    if (outcome!.result === "exists_with_different_fields") {
      throw new Error(`the platform account ${id} exists with other fields (currency or normal balance)`);
    }
    this.knownAccounts.add(id);
  }

  async paymentView(payment: Payment, replaced?: Attempt) {
    const attempts = (await this.reads.attempts(payment.id)).map((a) => (replaced && a.id === replaced.id ? replaced : a));
    if (replaced && !attempts.some((a) => a.id === replaced.id)) attempts.push(replaced);
    return paymentJson(payment, attempts, this.ctx.baseUrl());
  }

  async getPayment(id: string, merchantId: string | null): Promise<Payment> {
    const payment = await this.reads.payment(id, merchantId);
    if (!payment) throw new ApiError("not_found", `no payment ${id}`, "id");
    return payment;
  }

  async createPayment(merchantId: string | null, input: PaymentCreateInput, extra?: Extra<Payment>): Promise<{ payment: Payment; created: boolean }> {
    const { limits } = this.ctx;
    if (input.amount < 1n || input.amount > limits.paymentAmountMax) {
      throw new ApiError("validation_failed", `amount must be between 1 and ${limits.paymentAmountMax} minor units`, "amount");
    }
    const methods = input.methods ?? this.defaultMethods();
    const hash = requestHash({ ...input, id: undefined, methods, merchantId });
    const id = input.id ?? `pay_${ulid()}`;
    return this.lock.run(id, async () => {
      const existing = await this.reads.payment(id, null);
      if (existing) {
        if (existing.merchantId === merchantId && existing.requestHash === hash) return { payment: existing, created: false };
        throw new ApiError("exists_with_different_fields", `a payment ${id} exists with different fields`, "id");
      }
      const account = await this.ctx.db.read.selectFrom("ledger_accounts").selectAll().where("id", "=", input.merchantAccountId).executeTakeFirst();
      if (!account || (merchantId !== null && account.merchant_id !== merchantId)) {
        throw new ApiError("credit_account_not_found", `no account ${input.merchantAccountId}`, "merchant_account_id");
      }
      if (account.normal_balance !== "credit") {
        throw new ApiError("credit_account_not_found", "merchant_account_id must be a credit-normal account", "merchant_account_id");
      }
      if (account.currency !== input.currency) {
        throw new ApiError("currency_mismatch", `the account holds ${account.currency}, the payment is in ${input.currency}`, "currency");
      }
      const now = this.nowUs();
      const payment: Payment = {
        id,
        merchantId,
        ledgerKey: ulid(),
        amount: input.amount,
        currency: input.currency,
        merchantAccountId: input.merchantAccountId,
        description: input.description ?? null,
        capture: input.capture,
        status: "requires_payment_method",
        amountCaptured: 0n,
        amountRefunded: 0n,
        amountHeld: 0n,
        methods,
        returnUrl: input.returnUrl ?? null,
        contractRef: input.contractRef ?? null,
        metadata: input.metadata ?? null,
        clientSecret: `cs_${randomBytes(24).toString("base64url")}`,
        requestHash: hash,
        latestAttemptId: null,
        failure: null,
        expiresAt: now + BigInt(input.expiresInSeconds) * 1_000_000n,
        createdAt: now,
        updatedAt: now,
        version: 0n,
      };
      const created = await commitUnit(
        this.ctx.engine,
        [],
        () => ({ value: payment, write: (tx) => tx.insertInto("payments").values(paymentRow(payment)).execute().then(() => undefined) }),
        extra,
      );
      return { payment: created, created: true };
    });
  }

  /** Methods some configured channel serves. */
  defaultMethods(): PaymentMethod[] {
    const methods = new Set<PaymentMethod>();
    for (const channel of this.ctx.channels.values()) if (channel.flows.has("pay")) for (const m of channel.methods) methods.add(m);
    return [...methods];
  }

  /** Writes a payment's new state (and attempt), with an event per name, in one unit. */
  private async writeState(tx: Tx, payment: Payment, attempt: Attempt | null, events: readonly string[], insertAttempt = false): Promise<void> {
    if (attempt) {
      if (insertAttempt) await tx.insertInto("channel_attempts").values(attemptRow(attempt)).execute();
      else await tx.updateTable("channel_attempts").set(attemptRow(attempt)).where("id", "=", attempt.id).execute();
    }
    await tx.updateTable("payments").set(paymentRow(payment)).where("id", "=", payment.id).execute();
    if (events.length > 0) {
      const view = await this.paymentViewFor(payment, attempt);
      for (const type of events) await appendEvent(tx, payment.merchantId, type, payment.updatedAt, view);
    }
  }

  // Events carry the payment as it is after the change; the attempts are read before the unit
  // runs (a hook cannot read), with the changed attempt put in.
  private pendingViews = new Map<string, unknown>();
  private async paymentViewFor(payment: Payment, attempt: Attempt | null): Promise<unknown> {
    return this.pendingViews.get(payment.id) ?? paymentJson(payment, attempt ? [attempt] : [], this.ctx.baseUrl());
  }

  private async commitState<T>(payment: Payment, attempt: Attempt | null, transfers: Parameters<typeof commitUnit>[1], events: readonly string[], value: T, extra?: Extra<T>, insertAttempt = false): Promise<T> {
    if (events.length > 0) this.pendingViews.set(payment.id, await this.paymentView(payment, attempt ?? undefined));
    try {
      return await commitUnit(
        this.ctx.engine,
        transfers,
        (outcomes) => {
          if (!allApplied(outcomes)) {
            const code = firstRefusal(outcomes)!;
            return new ApiError(code in ERROR_LIKE ? (code as "exceeds_credits") : "invalid_state_transition", `the ledger refused the transfer: ${code}`);
          }
          return { value, write: (tx) => this.writeState(tx, payment, attempt, events, insertAttempt) };
        },
        extra,
      );
    } finally {
      this.pendingViews.delete(payment.id);
    }
  }

  async startAttempt(paymentId: string, merchantId: string | null, input: AttemptInput, extra?: Extra<Attempt>): Promise<Attempt> {
    const { router, channels } = this.ctx;
    const started = await this.lock.run(paymentId, async () => {
      let payment = await this.getPayment(paymentId, merchantId);
      const now = this.nowUs();
      if (payment.status === "processing") throw new ApiError("attempt_in_progress", "an attempt of this payment is still in flight; wait for its outcome");
      if (now >= payment.expiresAt && canTransition(PAYMENT_TRANSITIONS, payment.status, "expire")) {
        payment = await this.expireNow(payment, null);
      }
      if (!canTransition(PAYMENT_TRANSITIONS, payment.status, "attempt_started")) {
        throw new ApiError("invalid_state_transition", `a payment that is ${payment.status} cannot be paid`);
      }
      if (!payment.methods.includes(input.method)) throw new ApiError("method_not_allowed", `this payment does not offer ${input.method}`, "method");
      if (input.installments !== undefined && !(INSTALLMENT_PERIODS as readonly number[]).includes(input.installments)) {
        throw new ApiError("validation_failed", `installments must be one of ${INSTALLMENT_PERIODS.join(", ")}`, "installments");
      }
      const candidates = router.candidates({ flow: "pay_in", method: input.method, currency: payment.currency, amount: payment.amount, merchantId: payment.merchantId });
      if (candidates.length === 0) {
        throw new ApiError("no_available_channel", `no channel can take ${input.method} now; retry shortly`, undefined, { "Retry-After": "5" });
      }
      await this.ensurePlatformAccount(clearingAccountId(candidates[0]!, payment.currency), payment.currency, "debit");
      const attempt: Attempt = {
        id: `att_${ulid()}`,
        flow: "pay_in",
        parentId: payment.id,
        merchantId: payment.merchantId,
        channel: candidates[0]!,
        method: input.method,
        status: "pending",
        amount: payment.amount,
        currency: payment.currency,
        installments: input.installments ?? null,
        options: input.options ?? null,
        nextAction: null,
        channelRef: null,
        failure: null,
        createdAt: now,
        updatedAt: now,
        settledAt: null,
        requeryCount: 0,
        // Recorded before the call: if the process dies during it, the re-query job finds it.
        nextRequeryAt: now + BigInt(this.ctx.limits.channelTimeoutMs) * 1000n,
      };
      const processing: Payment = {
        ...payment,
        status: transition("payment", PAYMENT_TRANSITIONS, payment.status, "attempt_started"),
        latestAttemptId: attempt.id,
        failure: null,
        updatedAt: now,
        version: payment.version + 1n,
      };
      await this.commitState(processing, attempt, [], [], null, undefined, true);
      return { payment: processing, attempt, candidates };
    });

    let { attempt } = started;
    let result: PayResult | null = null;
    for (let i = 0; result === null; i++) {
      const channel = channels.get(attempt.channel)!;
      const breaker = router.breaker(attempt.channel);
      try {
        result = await withTimeout(
          channel.pay!({
            attemptId: attempt.id,
            paymentId: started.payment.id,
            amount: attempt.amount,
            currency: attempt.currency,
            description: started.payment.description ?? started.payment.id,
            method: input.method,
            ...(input.installments !== undefined ? { installments: input.installments } : {}),
            ...(started.payment.returnUrl ? { returnUrl: started.payment.returnUrl } : {}),
            notifyUrl: `${this.ctx.baseUrl()}/v1/channels/${attempt.channel}/notify`,
            expiresAtUs: started.payment.expiresAt,
            ...(input.options ? { options: input.options } : {}),
            ...(input.payer ? { payer: input.payer } : {}),
          }),
          this.ctx.limits.channelTimeoutMs,
        );
        if (result.status === "failed" && !result.failure?.userCaused) breaker.recordSystemFailure();
        else breaker.recordSuccess();
      } catch (error) {
        breaker.recordSystemFailure();
        if (error instanceof ChannelUnavailableError) {
          // Nothing reached the channel: no money can have moved, so the next channel may try.
          const next = started.candidates[i + 1];
          if (next !== undefined) {
            this.ctx.logger.warn({ channel: attempt.channel, next, attempt: attempt.id, err: error }, "channel unreachable; failing over");
            await this.ensurePlatformAccount(clearingAccountId(next, attempt.currency), attempt.currency, "debit");
            attempt = await this.lock.run(paymentId, async () => {
              const moved: Attempt = { ...attempt, channel: next, updatedAt: this.nowUs() };
              await commitUnit(this.ctx.engine, [], () => ({ value: moved, write: (tx) => tx.updateTable("channel_attempts").set(attemptRow(moved)).where("id", "=", moved.id).execute().then(() => undefined) }));
              return moved;
            });
            continue;
          }
          result = { status: "failed", failure: failure("channel_error", "UNREACHABLE", "no channel could be reached") };
        } else {
          if (!(error instanceof ChannelOutcomeUnknownError)) this.ctx.logger.error({ err: error, attempt: attempt.id }, "channel call failed unexpectedly");
          // Money may have moved: the outcome is unknown until the channel is queried.
          result = { status: "unknown" };
        }
      }
    }
    const settled = await this.applyAttemptResult(attempt.id, result, { extra });
    return settled ?? attempt;
  }

  /**
   * Records a channel's answer about an attempt (its reply, a notification, a query). Idempotent:
   * an answer about a settled attempt changes nothing. Returns the attempt as it is now.
   */
  async applyAttemptResult(attemptId: string, result: PayResult, options: { queried?: boolean; extra?: Extra<Attempt> } = {}): Promise<Attempt | null> {
    const first = await this.reads.attempt(attemptId);
    if (!first || first.flow !== "pay_in") return null;
    return this.lock.run(first.parentId, async () => {
      const attempt = (await this.reads.attempt(attemptId))!;
      const payment = (await this.reads.payment(attempt.parentId, null))!;
      const now = this.nowUs();
      const queries = attempt.requeryCount + (options.queried ? 1 : 0);
      const nextRequeryAt = now + BigInt(requeryDelaySeconds(queries)) * 1_000_000n;
      const settlement = settleAttempt(payment, { ...attempt, requeryCount: queries }, result, now, nextRequeryAt);
      if (!settlement) {
        if (options.extra) await commitUnit(this.ctx.engine, [], () => ({ value: attempt, write: async () => {} }), options.extra);
        return attempt;
      }
      if (settlement.late) {
        this.ctx.logger.warn({ payment: payment.id, attempt: attempt.id, channel: attempt.channel }, "a channel reported money for a closed payment; parked in suspense");
        await this.ensurePlatformAccount(suspenseAccountId(attempt.channel, attempt.currency), attempt.currency, "credit");
      }
      const changed = settlement.payment === payment ? payment : { ...settlement.payment, version: payment.version + 1n };
      return this.commitState(changed, settlement.attempt, settlement.transfers, settlement.events, settlement.attempt, options.extra);
    });
  }

  /**
   * A channel reports money for an attempt Tally itself closed when its payment expired: the one
   * case where a failed attempt turns out to have succeeded. The money is real, so it is booked,
   * to the channel's suspense account (the payment stays expired), and an event tells operators
   * to refund or reconcile it by hand.
   */
  async applyLateSuccess(attemptId: string, channelRef: string | undefined): Promise<Attempt | null> {
    const first = await this.reads.attempt(attemptId);
    if (!first || first.flow !== "pay_in") return null;
    return this.lock.run(first.parentId, async () => {
      const attempt = (await this.reads.attempt(attemptId))!;
      if (attempt.status !== "failed" || attempt.failure?.channelCode !== EXPIRED_BY_TALLY) return attempt;
      const payment = (await this.reads.payment(attempt.parentId, null))!;
      const now = this.nowUs();
      const reopened: Attempt = { ...attempt, status: "pending", failure: null };
      const settlement = settleAttempt(payment, reopened, { status: "succeeded", ...(channelRef ? { channelRef } : {}) }, now, null)!;
      this.ctx.logger.warn({ payment: payment.id, attempt: attempt.id }, "a channel reported money for an expired payment; parked in suspense");
      await this.ensurePlatformAccount(suspenseAccountId(attempt.channel, attempt.currency), attempt.currency, "credit");
      return this.commitState(payment, settlement.attempt, settlement.transfers, settlement.events, settlement.attempt);
    });
  }

  async capture(paymentId: string, merchantId: string | null, amount: bigint | undefined, extra?: Extra<Payment>): Promise<Payment> {
    return this.lock.run(paymentId, async () => {
      const payment = await this.getPayment(paymentId, merchantId);
      if (payment.status !== "requires_capture") throw new ApiError("invalid_state_transition", `a payment that is ${payment.status} cannot be captured`);
      if (amount !== undefined && amount > payment.amountHeld) {
        throw new ApiError("exceeds_pending_transfer_amount", `at most ${payment.amountHeld} is held`, "amount");
      }
      const { payment: captured, transfers } = capturePayment(payment, amount, this.nowUs());
      return this.commitState({ ...captured, version: payment.version + 1n }, null, transfers, ["payment.succeeded"], { ...captured, version: payment.version + 1n }, extra);
    });
  }

  async cancel(paymentId: string, merchantId: string | null, extra?: Extra<Payment>): Promise<Payment> {
    return this.lock.run(paymentId, async () => {
      const payment = await this.getPayment(paymentId, merchantId);
      if (payment.status === "processing") throw new ApiError("attempt_in_progress", "an attempt of this payment is in flight; it cannot be canceled now");
      if (!canTransition(PAYMENT_TRANSITIONS, payment.status, "cancel")) {
        throw new ApiError("invalid_state_transition", `a payment that is ${payment.status} cannot be canceled`);
      }
      const { payment: canceled, transfers } = cancelPayment(payment, this.nowUs());
      const next = { ...canceled, version: payment.version + 1n };
      return this.commitState(next, null, transfers, ["payment.canceled"], next, extra);
    });
  }

  /** Expires a payment that has no attempt in flight (the caller holds the payment's lock). */
  private async expireNow(payment: Payment, attempt: Attempt | null): Promise<Payment> {
    const now = this.nowUs();
    const expired: Payment = { ...payment, status: transition("payment", PAYMENT_TRANSITIONS, payment.status, "expire"), updatedAt: now, version: payment.version + 1n };
    return this.commitState(expired, attempt, [], ["payment.expired"], expired);
  }

  /**
   * Settles attempts whose outcome is not known yet by asking their channel; returns how many
   * were queried. Runs as a job; an attempt stays due (with backoff) until it settles.
   */
  async requeryDue(): Promise<number> {
    const due = await this.reads.dueAttempts(this.nowUs(), this.ctx.limits.paymentJobBatchMax);
    let queried = 0;
    for (const attempt of due) {
      if (attempt.flow !== "pay_in") continue;
      const channel = this.ctx.channels.get(attempt.channel);
      let result: PayResult = { status: "unknown" };
      if (channel?.query) {
        try {
          result = await withTimeout(
            channel.query({
              attemptId: attempt.id,
              paymentId: attempt.parentId,
              ...(attempt.channelRef ? { channelRef: attempt.channelRef } : {}),
              amount: attempt.amount,
              currency: attempt.currency,
              ...(attempt.options ? { options: attempt.options } : {}),
              createdAtUs: attempt.createdAt,
              queriesBefore: attempt.requeryCount,
            }),
            this.ctx.limits.channelTimeoutMs,
          );
        } catch (error) {
          this.ctx.logger.warn({ err: error, attempt: attempt.id, channel: attempt.channel }, "re-query failed; will retry");
        }
      }
      // A query that finds nothing settled keeps the attempt's status (pending stays pending).
      if (result.status === "unknown" && attempt.status === "pending") result = { status: "pending" };
      await this.applyAttemptResult(attempt.id, result, { queried: true });
      queried++;
    }
    return queried;
  }

  /**
   * Expires payments past `expires_at`. A payment with an attempt whose outcome is unknown is
   * left alone (money may have moved; the re-query job settles it first); a pending attempt is
   * asked once more, then closed as expired.
   */
  async expireDue(): Promise<number> {
    const due = await this.reads.expiredPayments(this.nowUs(), this.ctx.limits.paymentJobBatchMax);
    let expired = 0;
    for (const candidate of due) {
      let latest = candidate.latestAttemptId ? await this.reads.attempt(candidate.latestAttemptId) : null;
      if (candidate.status === "processing" && latest?.status === "pending") {
        const channel = this.ctx.channels.get(latest.channel);
        if (channel?.query) {
          const answer = await withTimeout(
            channel.query({ attemptId: latest.id, paymentId: latest.parentId, amount: latest.amount, currency: latest.currency, ...(latest.options ? { options: latest.options } : {}), createdAtUs: latest.createdAt, queriesBefore: latest.requeryCount }),
            this.ctx.limits.channelTimeoutMs,
          ).catch(() => null);
          if (answer && (answer.status === "succeeded" || answer.status === "failed")) {
            await this.applyAttemptResult(latest.id, answer, { queried: true });
            continue;
          }
        }
      }
      const done = await this.lock.run(candidate.id, async () => {
        const payment = (await this.reads.payment(candidate.id, null))!;
        if (TERMINAL_PAYMENT_STATUSES.has(payment.status) || payment.expiresAt > this.nowUs()) return false;
        latest = payment.latestAttemptId ? await this.reads.attempt(payment.latestAttemptId) : null;
        if (payment.status === "processing") {
          if (latest?.status !== "pending") return false;
          const now = this.nowUs();
          const closed: Attempt = { ...latest, status: "failed", failure: failure("expired", EXPIRED_BY_TALLY, "the payment expired before the payer finished"), updatedAt: now, settledAt: now, nextRequeryAt: null };
          await this.expireNow(payment, closed);
          return true;
        }
        await this.expireNow(payment, null);
        return true;
      });
      if (done) expired++;
    }
    return expired;
  }

  attemptView(attempt: Attempt) {
    return attemptJson(attempt);
  }
}

/** The channel code of an attempt Tally closed because its payment expired. */
export const EXPIRED_BY_TALLY = "TALLY_EXPIRED";

/** Ledger results that read as business errors of the payments API. */
const ERROR_LIKE: Record<string, true> = { exceeds_credits: true, exceeds_debits: true, exceeds_pending_transfer_amount: true, credit_account_not_found: true, debit_account_not_found: true, currency_mismatch: true };

/** A channel call that takes longer than `ms` has an unknown outcome. */
export async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChannelOutcomeUnknownError(`the channel did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
