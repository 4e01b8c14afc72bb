// Agreements: creation (personal data through the vault, the escrow account in the ledger, the
// custody sub-account opened at the bank — retried while the bank is down), releases and refunds
// (held on the escrow at once, posted when the bank confirms), deposit-to-commission (定转佣,
// idempotent by event id) and expiry. One agreement's commands run one at a time across
// processes (a named lock), and the ledger's flag on the escrow account refuses any debit beyond
// what it holds, so concurrent requests can never take out more than came in.
import type { Logger } from "pino";
import type { Database } from "../db/database.ts";
import type { NamedLock } from "../db/named-lock.ts";
import type { AgreementsTable } from "../db/schema.ts";
import type { Clock } from "../kernel/clock.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import type { PostingEngine } from "../ledger/engine.ts";
import type { TransferInput } from "../ledger/model.ts";
import { allApplied, commitUnit, firstRefusal, type Extra, type Tx } from "../payments/unit-of-work.ts";
import { requestHash } from "../payments/service.ts";
import { stringifyJson } from "../http/json.ts";
import type { Vault } from "../vault/vault.ts";
import { CustodyUnavailableError, type CustodyBank, type CustodyPayoutResult } from "./custody-bank.ts";
import { available, escrowAccounts, releasable, withStatus, type Agreement, type AgreementStatus, type PayeeDetails, type PayerDetails } from "./model.ts";
import { maskPayee, maskPayer, normaliseName } from "./pii.ts";
import { agreementFromRow, agreementRow, agreementJson, custodyPayoutJson } from "./view.ts";

export interface EscrowContext {
  readonly db: Database;
  readonly engine: PostingEngine;
  readonly clock: Clock;
  readonly limits: Limits;
  readonly logger: Logger;
  readonly vault: Vault;
  readonly banks: { get(code: string): CustodyBank | undefined };
  readonly lock: NamedLock;
}

export interface AgreementCreateInput {
  readonly id?: string;
  readonly contractRef?: string;
  readonly amountDue: bigint;
  readonly currency: string;
  readonly custodyBank: string;
  readonly payer: PayerDetails;
  readonly payee: PayeeDetails;
  readonly agentAccountId?: string;
  readonly expiresAt?: bigint;
  readonly metadata?: string;
}

export const PAYER_PURPOSE = "agreement.payer";
export const PAYEE_PURPOSE = "agreement.payee";
export const PERSON_NAME_INDEX = "person_name";
/** Bank retries: 1 s, 2 s, 4 s … capped here. */
const BANK_RETRY_DELAY_MS_MAX = 300_000;
/** After this many failed attempts an agreement.bank_pending event tells operators. */
const BANK_ATTEMPTS_ALERT = 5;

export function lockName(agreementId: string): string {
  return `agreement:${agreementId}`;
}

/** One bank's documents, and every change to its agreements, run one at a time. */
export function bankLock(bank: string): string {
  return `custody:${bank}`;
}

export class AgreementService {
  private readonly knownAccounts = new Set<string>();

  constructor(readonly ctx: EscrowContext) {}

  private nowUs(): bigint {
    return this.ctx.clock.nowUs();
  }

  async find(id: string, merchantId: string | null): Promise<Agreement | null> {
    const row = await this.ctx.db.read.selectFrom("agreements").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row || (merchantId !== null && row.merchant_id !== merchantId)) return null;
    return agreementFromRow(row);
  }

  async get(id: string, merchantId: string | null): Promise<Agreement> {
    const a = await this.find(id, merchantId);
    if (!a) throw new ApiError("not_found", `no agreement ${id}`, "id");
    return a;
  }

  async byVirtualAccount(bank: string, accountNumber: string): Promise<Agreement | null> {
    const row = await this.ctx.db.read.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where("virtual_account_number", "=", accountNumber).executeTakeFirst();
    return row ? agreementFromRow(row) : null;
  }

  /**
   * Runs `work` holding the agreement's bank lock and its own: arrivals are applied under the bank
   * lock in batches that write many agreements, so every other change of an agreement takes it too.
   */
  async locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const row = await this.ctx.db.read.selectFrom("agreements").select("custody_bank").where("id", "=", id).executeTakeFirst();
    if (!row) throw new ApiError("not_found", `no agreement ${id}`, "id");
    return this.ctx.lock.run(bankLock(row.custody_bank), () => this.ctx.lock.run(lockName(id), work));
  }

  bank(code: string): CustodyBank {
    const bank = this.ctx.banks.get(code);
    if (!bank) throw new ApiError("validation_failed", `no custody bank ${code}`, "custody_bank");
    return bank;
  }

  /** Creates a platform account once per process (clearing: debit-normal; suspense: credit-normal). */
  async ensureAccount(id: string, currency: string, normalBalance: "debit" | "credit", merchantId: string | null, noOverdraft = false): Promise<void> {
    if (this.knownAccounts.has(id)) return;
    const [o] = await this.ctx.engine.createAccounts(merchantId, [
      { id, currency, code: 0, normalBalance, flags: { debitsMustNotExceedCredits: noOverdraft, creditsMustNotExceedDebits: false }, owner: null, metadata: null },
    ]);
    if (o!.result === "exists_with_different_fields") throw new Error(`the account ${id} exists with other fields`);
    this.knownAccounts.add(id);
  }

  /** Writes the agreement and an `agreement.<status>` event when its status changed. */
  async writeAgreement(tx: Tx, next: Agreement, previous: Agreement | null, insert = false): Promise<void> {
    if (insert) await tx.insertInto("agreements").values(agreementRow(next, this.sealed.get(next.id)!)).execute();
    else {
      const { payer: _p, payer_masked: _pm, payer_name_index: _pi, payee: _e, payee_masked: _em, request_hash: _h, ...changes } = agreementRow(next, { payer: "", payerNameIndex: "", payee: "" });
      await tx.updateTable("agreements").set(changes).where("id", "=", next.id).execute();
    }
    if (!previous || previous.status !== next.status) await this.event(tx, next, `agreement.${next.status}`, previous?.status ?? null);
  }

  async event(tx: Tx, a: Agreement, type: string, previousStatus: AgreementStatus | null): Promise<void> {
    await tx
      .insertInto("outbox_events")
      .values({ id: `evt_${ulid()}`, merchant_id: a.merchantId, type, created_at: a.updatedAt, data: stringifyJson({ object: agreementJson(a), previous_status: previousStatus }) } as never)
      .execute();
  }

  private readonly sealed = new Map<string, { payer: string; payerNameIndex: string; payee: string }>();

  async create(merchantId: string | null, input: AgreementCreateInput, extra?: Extra<Agreement>): Promise<{ agreement: Agreement; created: boolean }> {
    const bank = this.bank(input.custodyBank);
    if (input.amountDue < 1n || input.amountDue > this.ctx.limits.paymentAmountMax) {
      throw new ApiError("validation_failed", `amount_due must be between 1 and ${this.ctx.limits.paymentAmountMax} minor units`, "amount_due");
    }
    const payeeAccount = input.payee.bank_account_number.replace(/\s+/g, "");
    if (!/^\d{8,30}$/.test(payeeAccount)) throw new ApiError("validation_failed", "payee.bank_account_number must be 8 to 30 digits", "payee.bank_account_number");
    const hash = requestHash({ ...input, id: undefined, merchantId });
    const id = input.id ?? `ag_${ulid()}`;
    const created = await this.ctx.lock.run(lockName(id), async () => {
      const existing = await this.find(id, null);
      if (existing) {
        if (existing.merchantId === merchantId && existing.requestHash === hash) return { agreement: existing, created: false };
        throw new ApiError("exists_with_different_fields", `an agreement ${id} exists with different fields`, "id");
      }
      if (input.agentAccountId !== undefined) {
        const agent = await this.ctx.db.read.selectFrom("ledger_accounts").select(["merchant_id", "currency", "normal_balance"]).where("id", "=", input.agentAccountId).executeTakeFirst();
        if (!agent || (merchantId !== null && agent.merchant_id !== merchantId)) throw new ApiError("credit_account_not_found", `no account ${input.agentAccountId}`, "agent_account_id");
        if (agent.currency !== input.currency) throw new ApiError("currency_mismatch", `the agent account holds ${agent.currency}`, "agent_account_id");
      }
      const now = this.nowUs();
      const ledgerKey = ulid();
      const agreement: Agreement = {
        id,
        merchantId,
        ledgerKey,
        contractRef: input.contractRef ?? null,
        amountDue: input.amountDue,
        currency: input.currency,
        custodyBank: bank.code,
        status: "pending_bank",
        amountReceived: 0n,
        amountReleased: 0n,
        amountRefunded: 0n,
        amountConverted: 0n,
        amountPendingOut: 0n,
        virtualAccountNumber: null,
        virtualAccountName: null,
        escrowAccountId: escrowAccounts.escrow(ledgerKey),
        payerMasked: maskPayer(input.payer),
        payeeMasked: maskPayee({ ...input.payee, bank_account_number: payeeAccount }),
        agentAccountId: input.agentAccountId ?? null,
        expiresAt: input.expiresAt ?? null,
        metadata: input.metadata ?? null,
        bankAttempts: 0,
        nextBankAttemptAt: now,
        bankReason: null,
        requestHash: hash,
        createdAt: now,
        updatedAt: now,
        version: 0n,
      };
      this.sealed.set(id, {
        payer: this.ctx.vault.encrypt(PAYER_PURPOSE, JSON.stringify(input.payer)),
        payerNameIndex: this.ctx.vault.blindIndex(PERSON_NAME_INDEX, normaliseName(input.payer.name)),
        payee: this.ctx.vault.encrypt(PAYEE_PURPOSE, JSON.stringify({ ...input.payee, bank_account_number: payeeAccount })),
      });
      await this.ensureAccount(escrowAccounts.clearing(bank.code, input.currency), input.currency, "debit", null);
      await this.ensureAccount(escrowAccounts.suspense(bank.code, input.currency), input.currency, "credit", null);
      // Never more out of the escrow than came in: the ledger refuses it, also under concurrency.
      await this.ensureAccount(agreement.escrowAccountId, input.currency, "credit", merchantId, true);
      try {
        await commitUnit(this.ctx.engine, [], () => ({ value: agreement, write: (tx) => this.writeAgreement(tx, agreement, null, true) }));
      } finally {
        this.sealed.delete(id);
      }
      return { agreement, created: true };
    });
    if (!created.created) return created;
    // The bank is asked at once; if it is down the agreement stays pending_bank and the retry job goes on.
    const opened = await this.openAtBank(id, extra);
    return { agreement: opened, created: true };
  }

  /** One attempt to open the agreement's custody account; returns the agreement as it is now. */
  async openAtBank(id: string, extra?: Extra<Agreement>): Promise<Agreement> {
    return this.locked(id, async () => {
      const a = await this.get(id, null);
      if (a.status !== "pending_bank") {
        if (extra) await commitUnit(this.ctx.engine, [], () => ({ value: a, write: async () => {} }), extra);
        return a;
      }
      const bank = this.bank(a.custodyBank);
      const payer = JSON.parse(this.ctx.vault.decrypt(PAYER_PURPOSE, (await this.ctx.db.read.selectFrom("agreements").select("payer").where("id", "=", id).executeTakeFirstOrThrow()).payer)) as PayerDetails;
      let next: Agreement;
      const now = this.nowUs();
      let alert = false;
      try {
        const result = await bank.openAccount({ agreementId: a.id, currency: a.currency, amountDue: a.amountDue, payerName: payer.name, ...(payer.id_number ? { payerIdNumber: payer.id_number } : {}) });
        if (result.kind === "opened") {
          next = withStatus({ ...a, status: "awaiting_funds", virtualAccountNumber: result.accountNumber.slice(0, 34), virtualAccountName: result.accountName, bankAttempts: a.bankAttempts + 1, nextBankAttemptAt: null, bankReason: null, updatedAt: now, version: a.version + 1n }, now);
        } else {
          next = { ...a, status: "bank_rejected", bankAttempts: a.bankAttempts + 1, nextBankAttemptAt: null, bankReason: result.reason, updatedAt: now, version: a.version + 1n };
        }
      } catch (error) {
        const attempts = a.bankAttempts + 1;
        const delayMs = Math.min(1000 * 2 ** Math.min(attempts - 1, 20), BANK_RETRY_DELAY_MS_MAX);
        const reason = error instanceof CustodyUnavailableError ? error.message : "the bank could not be reached";
        if (!(error instanceof CustodyUnavailableError)) this.ctx.logger.warn({ err: error, agreement: a.id }, "opening the custody account failed; retrying");
        next = { ...a, bankAttempts: attempts, nextBankAttemptAt: now + BigInt(delayMs) * 1000n, bankReason: reason, updatedAt: now, version: a.version + 1n };
        alert = attempts === BANK_ATTEMPTS_ALERT;
      }
      return commitUnit(
        this.ctx.engine,
        [],
        () => ({
          value: next,
          write: async (tx) => {
            await this.writeAgreement(tx, next, a);
            if (alert) await this.event(tx, next, "agreement.bank_pending", a.status);
          },
        }),
        extra,
      );
    });
  }

  /** The retry job: agreements whose bank attempt is due. */
  async retryBanks(): Promise<number> {
    const due = await this.ctx.db.read
      .selectFrom("agreements")
      .select("id")
      .where("next_bank_attempt_at", "is not", null)
      .where("next_bank_attempt_at", "<=", this.nowUs())
      .orderBy("next_bank_attempt_at")
      .limit(this.ctx.limits.paymentJobBatchMax)
      .execute();
    for (const row of due) await this.openAtBank(row.id);
    return due.length;
  }

  /** Moves agreements past their deadline to `expired` (money received stays held for refund). */
  async expireDue(): Promise<number> {
    const now = this.nowUs();
    const due = await this.ctx.db.read
      .selectFrom("agreements")
      .select("id")
      .where("status", "in", ["awaiting_funds", "partially_funded"])
      .where("expires_at", "is not", null)
      .where("expires_at", "<=", now)
      .limit(this.ctx.limits.paymentJobBatchMax)
      .execute();
    for (const row of due) {
      await this.locked(row.id, async () => {
        const a = await this.get(row.id, null);
        const next = withStatus({ ...a, updatedAt: now, version: a.version + 1n }, now);
        if (next.status === a.status) return;
        await commitUnit(this.ctx.engine, [], () => ({ value: next, write: (tx) => this.writeAgreement(tx, next, a) }));
      });
    }
    return due.length;
  }

  async cancel(id: string, merchantId: string | null, extra?: Extra<Agreement>): Promise<Agreement> {
    return this.locked(id, async () => {
      const a = await this.get(id, merchantId);
      if (a.amountReceived > 0n || !["pending_bank", "awaiting_funds", "bank_rejected", "expired"].includes(a.status)) {
        throw new ApiError("invalid_state_transition", `an agreement that is ${a.status}${a.amountReceived > 0n ? " with money received" : ""} cannot be canceled`);
      }
      const now = this.nowUs();
      const next: Agreement = { ...a, status: "canceled", nextBankAttemptAt: null, updatedAt: now, version: a.version + 1n };
      return commitUnit(this.ctx.engine, [], () => ({ value: next, write: (tx) => this.writeAgreement(tx, next, a) }), extra);
    });
  }

  /**
   * Applies a change of the agreement's amounts with the ledger transfers behind it, in one unit
   * of work; the status follows from the amounts. `refuse` turns a ledger refusal into an error.
   */
  async applyChange<T>(a: Agreement, change: Partial<Agreement>, transfers: readonly TransferInput[], value: (next: Agreement) => T, write?: (tx: Tx, next: Agreement) => Promise<void>, extra?: Extra<T>): Promise<T> {
    const now = this.nowUs();
    const next = withStatus({ ...a, ...change, updatedAt: now, version: a.version + 1n }, now);
    return commitUnit(
      this.ctx.engine,
      transfers,
      (outcomes) => {
        if (!allApplied(outcomes)) {
          const code = firstRefusal(outcomes);
          return code === "exceeds_credits" ? new ApiError("exceeds_escrow", "the escrow does not hold that much") : new ApiError("invalid_state_transition", `the ledger refused the change: ${code}`);
        }
        return {
          value: value(next),
          write: async (tx) => {
            await this.writeAgreement(tx, next, a);
            if (write) await write(tx, next);
          },
        };
      },
      extra,
    );
  }

  async payOut(kind: "release" | "refund", agreementId: string, merchantId: string | null, input: { id?: string; amount?: bigint }, extra?: Extra<unknown>) {
    const hash = requestHash({ kind, agreementId, amount: input.amount ?? null });
    const started = await this.locked(agreementId, async () => {
      const a = await this.get(agreementId, merchantId);
      if (input.id !== undefined) {
        const existing = await this.ctx.db.read.selectFrom("custody_payouts").selectAll().where("id", "=", input.id).executeTakeFirst();
        if (existing) {
          if (existing.request_hash === hash) return { existing };
          throw new ApiError("exists_with_different_fields", `a ${kind} ${input.id} exists with different fields`, "id");
        }
      }
      if (!a.virtualAccountNumber) throw new ApiError("invalid_state_transition", `an agreement that is ${a.status} holds no money`);
      const limit = kind === "release" ? releasable(a) : available(a);
      const amount = input.amount ?? limit;
      if (amount <= 0n || amount > limit) {
        throw new ApiError("exceeds_escrow", `at most ${limit} can be ${kind === "release" ? "released (money beyond amount_due can only be refunded)" : "refunded"} now`, "amount");
      }
      const now = this.nowUs();
      const payout = { id: input.id ?? `${kind === "release" ? "rel" : "rfd"}_${ulid()}`, agreement_id: a.id, kind, ledger_key: ulid(), amount, currency: a.currency, status: "pending" as const, bank_transfer_id: null, failure: null, request_hash: hash, created_at: now, updated_at: now };
      const hold: TransferInput = {
        id: `esc.${payout.ledger_key}.hold`,
        debitAccountId: a.escrowAccountId,
        creditAccountId: escrowAccounts.clearing(a.custodyBank, a.currency),
        amount,
        currency: a.currency,
        pending: true,
        timeoutSeconds: 0,
        linked: false,
        reference: payout.id,
      };
      await this.applyChange(a, { amountPendingOut: a.amountPendingOut + amount }, [hold], () => null, (tx) => tx.insertInto("custody_payouts").values(payout).execute().then(() => undefined));
      return { payout, agreement: a };
    });
    if ("existing" in started) return started.existing;
    const { payout, agreement } = started;
    const payee = JSON.parse(this.ctx.vault.decrypt(PAYEE_PURPOSE, (await this.ctx.db.read.selectFrom("agreements").select("payee").where("id", "=", agreement.id).executeTakeFirstOrThrow()).payee)) as PayeeDetails;
    let result: CustodyPayoutResult;
    try {
      result = await this.bank(agreement.custodyBank).payout({
        transferId: payout.id,
        kind,
        fromAccountNumber: agreement.virtualAccountNumber!,
        amount: payout.amount,
        currency: payout.currency,
        // A refund goes back the way the money came; the bank resolves the payer's account.
        toAccountNumber: kind === "release" ? payee.bank_account_number : "ORIGINAL-PAYER",
        toAccountName: kind === "release" ? (payee.account_name ?? payee.name) : "ORIGINAL-PAYER",
      });
    } catch (error) {
      this.ctx.logger.warn({ err: error, payout: payout.id }, "custody payout call failed; it stays pending and is asked about again");
      result = { status: "pending" };
    }
    return this.settlePayout(payout.id, result, extra);
  }

  /** Records the bank's answer about a release or refund; an answer that changes nothing is a no-op. */
  async settlePayout(payoutId: string, result: CustodyPayoutResult, extra?: Extra<unknown>) {
    const first = await this.ctx.db.read.selectFrom("custody_payouts").selectAll().where("id", "=", payoutId).executeTakeFirstOrThrow();
    return this.locked(first.agreement_id, async () => {
      const p = await this.ctx.db.read.selectFrom("custody_payouts").selectAll().where("id", "=", payoutId).executeTakeFirstOrThrow();
      const a = await this.get(p.agreement_id, null);
      const now = this.nowUs();
      const amount = BigInt(p.amount);
      if (p.status !== "pending" || result.status === "pending") {
        const touched = { ...p, bank_transfer_id: result.bankTransferId ?? p.bank_transfer_id, updated_at: now };
        return commitUnit(this.ctx.engine, [], () => ({ value: custodyPayoutJson(touched), write: (tx) => tx.updateTable("custody_payouts").set({ bank_transfer_id: touched.bank_transfer_id, updated_at: now }).where("id", "=", p.id).execute().then(() => undefined) }), extra);
      }
      const paid = result.status === "paid";
      const settled = { ...p, status: result.status, bank_transfer_id: result.bankTransferId ?? p.bank_transfer_id, failure: paid ? null : (result.reason ?? "the bank failed the transfer"), updated_at: now };
      const transfer: TransferInput = paid
        ? { id: `esc.${p.ledger_key}.post`, postPendingId: `esc.${p.ledger_key}.hold`, pending: false, timeoutSeconds: 0, linked: false, reference: p.id }
        : { id: `esc.${p.ledger_key}.void`, voidPendingId: `esc.${p.ledger_key}.hold`, pending: false, timeoutSeconds: 0, linked: false, reference: p.id };
      const change: Partial<Agreement> = { amountPendingOut: a.amountPendingOut - amount };
      if (paid && p.kind === "release") Object.assign(change, { amountReleased: a.amountReleased + amount });
      if (paid && p.kind === "refund") Object.assign(change, { amountRefunded: a.amountRefunded + amount });
      return this.applyChange(a, change, [transfer], () => custodyPayoutJson(settled), (tx) =>
        tx.updateTable("custody_payouts").set({ status: settled.status, bank_transfer_id: settled.bank_transfer_id, failure: settled.failure, updated_at: now }).where("id", "=", p.id).execute().then(() => undefined),
      extra);
    });
  }

  /** Asks the banks about releases and refunds still pending (a job). */
  async pollPayouts(): Promise<number> {
    const pending = await this.ctx.db.read
      .selectFrom("custody_payouts")
      .innerJoin("agreements", "agreements.id", "custody_payouts.agreement_id")
      .select(["custody_payouts.id", "agreements.custody_bank"])
      .where("custody_payouts.status", "=", "pending")
      .where("custody_payouts.updated_at", "<", this.nowUs() - 5_000_000n)
      .limit(this.ctx.limits.paymentJobBatchMax)
      .execute();
    for (const row of pending) {
      const result = await this.bank(row.custody_bank).queryPayout(row.id).catch(() => ({ status: "pending" as const }));
      await this.settlePayout(row.id, result);
    }
    return pending.length;
  }

  /** 定转佣: from the escrow to the agent's commission account, at once; idempotent by event id. */
  async commission(agreementId: string, merchantId: string | null, input: { eventId: string; amount: bigint; accountId?: string }, extra?: Extra<Agreement>): Promise<Agreement> {
    return this.locked(agreementId, async () => {
      const a = await this.get(agreementId, merchantId);
      const existing = await this.ctx.db.read.selectFrom("commissions").selectAll().where("agreement_id", "=", a.id).where("event_id", "=", input.eventId).executeTakeFirst();
      if (existing) {
        if (BigInt(existing.amount) === input.amount && (input.accountId === undefined || input.accountId === existing.account_id)) {
          if (extra) await commitUnit(this.ctx.engine, [], () => ({ value: a, write: async () => {} }), extra);
          return a;
        }
        throw new ApiError("exists_with_different_fields", `commission event ${input.eventId} was applied with different fields`, "event_id");
      }
      const accountId = input.accountId ?? a.agentAccountId;
      if (!accountId) throw new ApiError("validation_failed", "commission_account_id is required: the agreement names no agent account", "commission_account_id");
      const limit = releasable(a);
      if (input.amount > limit) throw new ApiError("exceeds_escrow", `at most ${limit} of the escrow can become commission now`, "amount");
      const transferId = `esc.${a.ledgerKey}.comm.${requestHash({ e: input.eventId }).slice(0, 24)}`;
      const now = this.nowUs();
      const t: TransferInput = { id: transferId, debitAccountId: a.escrowAccountId, creditAccountId: accountId, amount: input.amount, currency: a.currency, pending: false, timeoutSeconds: 0, linked: false, reference: input.eventId.slice(0, 128) };
      return this.applyChange(a, { amountConverted: a.amountConverted + input.amount }, [t], (next) => next, (tx) =>
        tx.insertInto("commissions").values({ agreement_id: a.id, event_id: input.eventId, amount: input.amount, account_id: accountId, transfer_id: transferId, created_at: now }).execute().then(() => undefined),
      extra);
    });
  }

  async list(merchantId: string | null, q: { status?: string; contractRef?: string; limit: number; startingAfter?: Agreement }): Promise<{ data: Agreement[]; hasMore: boolean }> {
    let query = this.ctx.db.read.selectFrom("agreements").selectAll();
    if (merchantId !== null) query = query.where("merchant_id", "=", merchantId);
    if (q.status) query = query.where("status", "=", q.status);
    if (q.contractRef) query = query.where("contract_ref", "=", q.contractRef);
    const after = q.startingAfter;
    if (after) query = query.where((eb) => eb.or([eb("created_at", "<", after.createdAt), eb.and([eb("created_at", "=", after.createdAt), eb("id", "<", after.id)])]));
    const rows: AgreementsTable[] = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(q.limit + 1).execute();
    return { data: rows.slice(0, q.limit).map(agreementFromRow), hasMore: rows.length > q.limit };
  }

  timestamp(us: bigint): string {
    return formatTimestampUs(us);
  }
}
