// Payouts (出金): the amount is held on the source account at once (whatever the account's
// flags: a payout never spends money that is not there), posted when the bank pays, voided when
// it fails, and a bank return after payment credits the source back with a new transfer.
// Destination details are personal data: encrypted by the vault, searchable by a blind index of
// the account number, shown masked.
import type { PayoutResult } from "../channels/channel.ts";
import { failure } from "../channels/failures.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import { bankAccount, personName, type Revealer, type Vault } from "../vault/index.ts";
import { clearingAccountId, payoutHold, settlePayout, type Attempt, type Payout, type PayoutDestination } from "./model.ts";
import { attemptRow, payoutRow } from "./rows.ts";
import { requestHash, withTimeout, type PaymentService } from "./service.ts";
import { allApplied, appendEvent, commitUnit, firstRefusal, type Extra } from "./unit-of-work.ts";
import { payoutJson } from "./view.ts";

export interface PayoutCreateInput {
  readonly id?: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly sourceAccountId: string;
  readonly destination: PayoutDestination;
  readonly channel?: string;
  readonly options?: Readonly<Record<string, unknown>>;
  readonly metadata?: string;
}

const DESTINATION_PURPOSE = "payout.destination";
const ACCOUNT_NUMBER_INDEX = "bank_account_number";
/** An open payout is asked about again after this long. */
const PAYOUT_POLL_AFTER_US = 30_000_000n;

const attemptIdOf = (p: Payout) => `patt_${p.ledgerKey}`;

export class PayoutService {
  constructor(private readonly payments: PaymentService, private readonly vault: Vault) {}

  async get(id: string, merchantId: string | null): Promise<Payout> {
    const payout = await this.payments.reads.payout(id, merchantId);
    if (!payout) throw new ApiError("not_found", `no payout ${id}`, "id");
    return payout;
  }

  /** Payouts to an account number, found through its blind index (never by decrypting rows). */
  async findByAccountNumber(accountNumber: string, merchantId: string | null): Promise<Payout[]> {
    const index = this.vault.blindIndex(ACCOUNT_NUMBER_INDEX, accountNumber.replace(/\s+/g, ""));
    const rows = await this.payments.ctx.db.read.selectFrom("payouts").select("id").where("account_number_index", "=", index).execute();
    const out: Payout[] = [];
    for (const r of rows) {
      const p = await this.payments.reads.payout(r.id, merchantId);
      if (p) out.push(p);
    }
    return out;
  }

  /** The clear destination, for the channel call and audited reveals only. */
  async destinationOf(payout: Payout): Promise<PayoutDestination> {
    const text = await this.payments.reads.payoutDestination(payout.id);
    return JSON.parse(await this.vault.decryptFresh(DESTINATION_PURPOSE, text!)) as PayoutDestination;
  }

  /** `GET /v1/payouts/{id}/destination?reason=`: the clear destination (the vault's routes audit it). */
  destinationRevealer(): Revealer {
    return {
      path: "/v1/payouts/:id/destination",
      objectType: "payout",
      field: "destination",
      tag: "payouts",
      summary: "Reveal a payout's clear destination (scope pii:reveal, audited)",
      read: async (id, merchantId) => {
        const payout = await this.payments.reads.payout(id, merchantId);
        if (!payout) return null;
        const d = await this.destinationOf(payout);
        return { bank_account_number: d.bankAccountNumber, account_name: d.accountName, ...(d.bankCode ? { bank_code: d.bankCode } : {}) };
      },
    };
  }

  async create(merchantId: string | null, input: PayoutCreateInput, extra?: Extra<Payout>): Promise<{ payout: Payout; created: boolean }> {
    const { ctx } = this.payments;
    if (input.amount < 1n || input.amount > ctx.limits.paymentAmountMax) {
      throw new ApiError("validation_failed", `amount must be between 1 and ${ctx.limits.paymentAmountMax} minor units`, "amount");
    }
    const accountNumber = bankAccount.normalise(input.destination.bankAccountNumber, "destination.bank_account_number");
    const accountName = personName.normalise(input.destination.accountName, "destination.account_name");
    let channelId = input.channel;
    if (channelId === undefined) {
      channelId = ctx.router.candidates({ flow: "payout", method: "bank_transfer", currency: input.currency, amount: input.amount, merchantId })[0];
      if (channelId === undefined) throw new ApiError("no_available_channel", "no payout channel is available now; retry shortly", undefined, { "Retry-After": "5" });
    } else if (!ctx.channels.get(channelId)?.flows.has("payout")) {
      throw new ApiError("validation_failed", `channel ${channelId} does not pay out`, "channel");
    }
    // The request hash is stored: it covers the destination through a keyed MAC, since a plain
    // hash of an account number and a name could be reversed by trying likely values.
    const destinationMac = this.vault.blindIndex(ACCOUNT_NUMBER_INDEX, `payout-request:${JSON.stringify({ ...input.destination, bankAccountNumber: accountNumber, accountName })}`);
    const hash = requestHash({ ...input, destination: destinationMac, id: undefined, merchantId, channel: channelId });
    const started = await this.payments.lock.run(`account:${input.sourceAccountId}`, async () => {
      if (input.id !== undefined) {
        const existing = await this.payments.reads.payout(input.id, null);
        if (existing) {
          if (existing.requestHash === hash && existing.merchantId === merchantId) return { kind: "existing" as const, payout: existing };
          throw new ApiError("exists_with_different_fields", `a payout ${input.id} exists with different fields`, "id");
        }
      }
      const account = await ctx.db.read.selectFrom("ledger_accounts").selectAll().where("id", "=", input.sourceAccountId).executeTakeFirst();
      if (!account || (merchantId !== null && account.merchant_id !== merchantId)) {
        throw new ApiError("debit_account_not_found", `no account ${input.sourceAccountId}`, "source_account_id");
      }
      if (account.currency !== input.currency) throw new ApiError("currency_mismatch", `the account holds ${account.currency}`, "currency");
      if (account.normal_balance !== "credit") throw new ApiError("validation_failed", "source_account_id must be a credit-normal account", "source_account_id");
      // Commands on this account run one at a time here, and each waits for its commit, so the
      // balance read now includes every earlier payout's hold.
      const available = BigInt(account.credits_posted) - BigInt(account.debits_posted) - BigInt(account.debits_pending);
      if (available < input.amount) throw new ApiError("exceeds_credits", `the account has ${available > 0n ? available : 0n} available`, "amount");
      const now = ctx.clock.nowUs();
      const payout: Payout = {
        id: input.id ?? `po_${ulid()}`,
        ledgerKey: ulid(),
        merchantId,
        amount: input.amount,
        currency: input.currency,
        sourceAccountId: input.sourceAccountId,
        destinationMasked: {
          bank_account_number: bankAccount.mask(accountNumber),
          account_name: personName.mask(accountName),
          ...(input.destination.bankCode ? { bank_code: input.destination.bankCode } : {}),
        },
        channel: channelId,
        status: "pending",
        options: input.options ?? null,
        channelRef: null,
        failure: null,
        requestHash: hash,
        metadata: input.metadata ?? null,
        createdAt: now,
        updatedAt: now,
      };
      const attempt: Attempt = {
        id: attemptIdOf(payout),
        flow: "payout",
        parentId: payout.id,
        merchantId,
        channel: channelId,
        method: "bank_transfer",
        status: "pending",
        amount: payout.amount,
        currency: payout.currency,
        installments: null,
        options: null,
        nextAction: null,
        channelRef: null,
        failure: null,
        createdAt: now,
        updatedAt: now,
        settledAt: null,
        requeryCount: 0,
        nextRequeryAt: null,
      };
      const destination = this.vault.encrypt(DESTINATION_PURPOSE, JSON.stringify({ ...input.destination, bankAccountNumber: accountNumber, accountName }));
      const index = this.vault.blindIndex(ACCOUNT_NUMBER_INDEX, accountNumber);
      await this.payments.ensurePlatformAccount(clearingAccountId(channelId, input.currency), input.currency, "debit");
      const stored = await commitUnit(ctx.engine, [payoutHold(payout)], (outcomes) => {
        if (!allApplied(outcomes)) return new ApiError("exceeds_credits", `the source account cannot cover the payout (${firstRefusal(outcomes)})`, "amount");
        return {
          value: payout,
          write: async (tx) => {
            await tx.insertInto("payouts").values(payoutRow(payout, destination, index)).execute();
            await tx.insertInto("channel_attempts").values(attemptRow(attempt)).execute();
          },
        };
      });
      return { kind: "created" as const, payout: stored };
    });
    if (started.kind === "existing") return { payout: started.payout, created: false };
    const result = await this.callChannel(started.payout, input.destination);
    return { payout: await this.settle(started.payout.id, result, extra), created: true };
  }

  private async callChannel(payout: Payout, destination: PayoutDestination): Promise<PayoutResult> {
    const { ctx } = this.payments;
    const channel = ctx.channels.get(payout.channel);
    if (!channel?.payout) return { status: "failed", failure: failure("misconfigured", "NO_PAYOUT_FLOW", `channel ${payout.channel} cannot pay out`) };
    try {
      return await withTimeout(
        channel.payout({
          payoutId: payout.id,
          amount: payout.amount,
          currency: payout.currency,
          destination: { ...destination, bankAccountNumber: destination.bankAccountNumber.replace(/\s+/g, "") },
          ...(payout.options ? { options: payout.options } : {}),
          notifyUrl: `${ctx.baseUrl()}/v1/channels/${payout.channel}/notify`,
        }),
        ctx.limits.channelTimeoutMs,
      );
    } catch (error) {
      ctx.logger.warn({ err: error, payout: payout.id }, "payout call failed; the payout stays pending and is asked about again");
      return { status: "unknown" };
    }
  }

  /** Records a channel's answer about a payout; answers that do not move it change nothing. */
  async settle(payoutId: string, result: PayoutResult, extra?: Extra<Payout>): Promise<Payout> {
    const { ctx } = this.payments;
    return this.payments.lock.run(`payout:${payoutId}`, async () => {
      const payout = await this.get(payoutId, null);
      const now = ctx.clock.nowUs();
      const s = settlePayout(payout, result, now);
      if (!s) {
        return commitUnit(ctx.engine, [], () => ({ value: payout, write: (tx) => tx.updateTable("payouts").set({ updated_at: now }).where("id", "=", payout.id).execute().then(() => undefined) }), extra);
      }
      const attemptStatus = s.payout.status === "paid" || s.payout.status === "returned" ? "succeeded" : s.payout.status === "failed" ? "failed" : "pending";
      const f = s.payout.failure;
      return commitUnit(
        ctx.engine,
        s.transfers,
        (outcomes) => {
          if (!allApplied(outcomes)) throw new Error(`the ledger refused settling payout ${payout.id}: ${firstRefusal(outcomes)}`);
          return {
            value: s.payout,
            write: async (tx) => {
              await tx.updateTable("payouts").set({ status: s.payout.status, channel_ref: s.payout.channelRef, failure: f ? JSON.stringify(f) : null, updated_at: now }).where("id", "=", payout.id).execute();
              if (payout.status === "pending" || payout.status === "in_transit") {
                await tx
                  .updateTable("channel_attempts")
                  .set({
                    status: attemptStatus,
                    channel_ref: s.payout.channelRef,
                    failure_code: f?.code ?? null,
                    failure_channel_code: f?.channelCode ?? null,
                    failure_user_caused: f ? (f.userCaused ? 1 : 0) : null,
                    updated_at: now,
                    settled_at: attemptStatus === "pending" ? null : now,
                  })
                  .where("id", "=", attemptIdOf(payout))
                  .execute();
              }
              for (const type of s.events) await appendEvent(tx, payout.merchantId, type, now, payoutJson(s.payout));
            },
          };
        },
        extra,
      );
    });
  }

  /** Asks channels about payouts still pending or in transit (a job). */
  async pollOpen(): Promise<number> {
    const { ctx } = this.payments;
    const open = await this.payments.reads.openPayouts(ctx.clock.nowUs() - PAYOUT_POLL_AFTER_US, ctx.limits.paymentJobBatchMax);
    for (const payout of open) {
      const channel = ctx.channels.get(payout.channel);
      let result: PayoutResult = { status: "unknown" };
      if (channel?.queryPayout) {
        try {
          result = await withTimeout(channel.queryPayout({ payoutId: payout.id, ...(payout.channelRef ? { channelRef: payout.channelRef } : {}), ...(payout.options ? { options: payout.options } : {}), queriesBefore: 0 }), ctx.limits.channelTimeoutMs);
        } catch (error) {
          ctx.logger.warn({ err: error, payout: payout.id }, "payout query failed; will retry");
        }
      }
      await this.settle(payout.id, result);
    }
    return open.length;
  }
}
