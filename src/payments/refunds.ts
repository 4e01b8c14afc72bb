// Refunds: the amount is held on the merchant account when the refund is created (so it cannot
// be paid out meanwhile), posted when the channel confirms, voided when it fails. The sum of
// pending and succeeded refunds never exceeds what was captured: creations run one at a time per
// payment (its lock) against the payment's running `amount_refunded`.
import type { RefundResult } from "../channels/channel.ts";
import { failure } from "../channels/failures.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import { clearingAccountId, refundHold, settleRefund, type Payment, type Refund } from "./model.ts";
import { paymentRow, refundRow } from "./rows.ts";
import { requestHash, withTimeout, type PaymentService } from "./service.ts";
import { allApplied, appendEvent, commitUnit, firstRefusal, type Extra } from "./unit-of-work.ts";
import { refundJson } from "./view.ts";

export interface RefundCreateInput {
  readonly id?: string;
  readonly amount: bigint;
  readonly reason?: string;
}

/** A pending refund is asked again after this long (refund requests are idempotent by id). */
const REFUND_RETRY_AFTER_US = 30_000_000n;

export class RefundService {
  constructor(private readonly payments: PaymentService) {}

  async get(id: string, merchantId: string | null): Promise<Refund> {
    const refund = await this.payments.reads.refund(id, merchantId);
    if (!refund) throw new ApiError("not_found", `no refund ${id}`, "id");
    return refund;
  }

  async create(paymentId: string, merchantId: string | null, input: RefundCreateInput, extra?: Extra<Refund>): Promise<{ refund: Refund; created: boolean }> {
    const { ctx } = this.payments;
    const hash = requestHash({ paymentId, amount: input.amount, reason: input.reason ?? null });
    const created = await this.payments.lock.run(paymentId, async () => {
      const payment = await this.payments.getPayment(paymentId, merchantId);
      if (input.id !== undefined) {
        const existing = await this.payments.reads.refund(input.id, null);
        if (existing) {
          if (existing.requestHash === hash && existing.merchantId === merchantId) return { kind: "existing" as const, refund: existing };
          throw new ApiError("exists_with_different_fields", `a refund ${input.id} exists with different fields`, "id");
        }
      }
      if (payment.amountRefunded + input.amount > payment.amountCaptured) {
        const left = payment.amountCaptured - payment.amountRefunded;
        throw new ApiError("refund_exceeds_captured", `at most ${left > 0n ? left : 0n} of this payment can still be refunded`, "amount");
      }
      const attempt = payment.latestAttemptId ? await this.payments.reads.attempt(payment.latestAttemptId) : null;
      if (!attempt || attempt.status !== "succeeded") throw new ApiError("invalid_state_transition", "this payment has no successful attempt to refund");
      const now = ctx.clock.nowUs();
      const refund: Refund = {
        id: input.id ?? `re_${ulid()}`,
        ledgerKey: ulid(),
        paymentId,
        merchantId: payment.merchantId,
        amount: input.amount,
        currency: payment.currency,
        reason: input.reason ?? null,
        status: "pending",
        channel: attempt.channel,
        channelRef: attempt.channelRef,
        failure: null,
        requestHash: hash,
        createdAt: now,
        updatedAt: now,
      };
      const next: Payment = { ...payment, amountRefunded: payment.amountRefunded + input.amount, updatedAt: now, version: payment.version + 1n };
      await this.payments.ensurePlatformAccount(clearingAccountId(attempt.channel, payment.currency), payment.currency, "debit");
      const stored = await commitUnit(ctx.engine, [refundHold(payment, refund, attempt.channel)], (outcomes) => {
        if (!allApplied(outcomes)) {
          const code = firstRefusal(outcomes);
          return new ApiError("exceeds_credits", `the merchant account cannot cover the refund (${code})`, "amount");
        }
        return {
          value: refund,
          write: async (tx) => {
            await tx.insertInto("refunds").values(refundRow(refund)).execute();
            await tx.updateTable("payments").set(paymentRow(next)).where("id", "=", next.id).execute();
          },
        };
      });
      return { kind: "created" as const, refund: stored, attemptId: attempt.id, payment: next };
    });
    if (created.kind === "existing") return { refund: created.refund, created: false };
    const result = await this.callChannel(created.refund, created.payment, created.attemptId);
    const settled = await this.settle(created.refund.id, result, extra);
    return { refund: settled, created: true };
  }

  private async callChannel(refund: Refund, payment: Payment, attemptId: string): Promise<RefundResult> {
    const { ctx } = this.payments;
    const channel = ctx.channels.get(refund.channel);
    if (!channel?.refund) return { status: "failed", failure: failure("misconfigured", "NO_REFUND_FLOW", `channel ${refund.channel} cannot refund`) };
    try {
      return await withTimeout(
        channel.refund({
          refundId: refund.id,
          attemptId,
          ...(refund.channelRef ? { channelRef: refund.channelRef } : {}),
          amount: refund.amount,
          paymentAmount: payment.amount,
          currency: refund.currency,
          ...(refund.reason ? { reason: refund.reason } : {}),
          notifyUrl: `${ctx.baseUrl()}/v1/channels/${refund.channel}/notify`,
        }),
        ctx.limits.channelTimeoutMs,
      );
    } catch (error) {
      ctx.logger.warn({ err: error, refund: refund.id }, "refund call failed; it stays pending and is asked again");
      return { status: "unknown" };
    }
  }

  /** Records a channel's answer about a refund; an answer about a settled refund changes nothing. */
  async settle(refundId: string, result: RefundResult, extra?: Extra<Refund>): Promise<Refund> {
    const { ctx } = this.payments;
    const first = await this.get(refundId, null);
    return this.payments.lock.run(first.paymentId, async () => {
      const refund = await this.get(refundId, null);
      const payment = (await this.payments.reads.payment(refund.paymentId, null))!;
      const s = settleRefund(payment, refund, result, ctx.clock.nowUs());
      if (!s) {
        // Still pending: note when it was last asked, so the retry job waits before asking again.
        const touched = { ...refund, updatedAt: ctx.clock.nowUs() };
        return commitUnit(ctx.engine, [], () => ({ value: refund, write: (tx) => tx.updateTable("refunds").set({ updated_at: touched.updatedAt }).where("id", "=", refund.id).execute().then(() => undefined) }), extra);
      }
      const nextPayment = s.payment === payment ? payment : { ...s.payment, version: payment.version + 1n };
      return commitUnit(
        ctx.engine,
        s.transfers,
        (outcomes) => {
          if (!allApplied(outcomes)) throw new Error(`the ledger refused settling refund ${refund.id}: ${firstRefusal(outcomes)}`);
          return {
            value: s.refund,
            write: async (tx) => {
              await tx.updateTable("refunds").set(refundRow(s.refund)).where("id", "=", refund.id).execute();
              if (nextPayment !== payment) await tx.updateTable("payments").set(paymentRow(nextPayment)).where("id", "=", payment.id).execute();
              for (const type of s.events) await appendEvent(tx, refund.merchantId, type, s.refund.updatedAt, refundJson(s.refund));
            },
          };
        },
        extra,
      );
    });
  }

  /** Asks channels again about refunds still pending (a job). */
  async retryPending(): Promise<number> {
    const { ctx } = this.payments;
    const due = await this.payments.reads.pendingRefunds(ctx.clock.nowUs() - REFUND_RETRY_AFTER_US, ctx.limits.paymentJobBatchMax);
    for (const refund of due) {
      const payment = (await this.payments.reads.payment(refund.paymentId, null))!;
      const result = await this.callChannel(refund, payment, payment.latestAttemptId ?? "");
      await this.settle(refund.id, result);
    }
    return due.length;
  }
}
