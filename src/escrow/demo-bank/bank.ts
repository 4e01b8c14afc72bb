// A simulated custody bank (any bank code starting `demo-`), behaving like a real one: it opens
// virtual accounts (or is down, or refuses an identity), receives transfers and sends Tally its
// arrival notices in the configured format and date format (also duplicated or late), pays out
// (or fails, or holds until settled), and writes daily statements of what it really holds.
// Its state lives in memory: it is a sandbox for newcomers and tests, not a system of record.
import { createHash } from "node:crypto";
import type { Clock } from "../../kernel/clock.ts";
import { ulid } from "../../kernel/ids.ts";
import { CustodyUnavailableError, type CustodyBank, type CustodyPayoutRequest, type CustodyPayoutResult, type OpenAccountRequest, type OpenAccountResult } from "../custody-bank.ts";
import { writeNotice, writeStatement, type BankCredit, type NoticeFormat, type StatementAccount } from "./formats.ts";

export interface DemoBehaviour {
  readonly accounts: "ok" | "down" | "refuse_identity";
  readonly payouts: "paid" | "failed" | "hold";
  readonly notice: { readonly format: NoticeFormat; readonly date_format: string };
}

export const DEFAULT_DEMO_BEHAVIOUR: DemoBehaviour = { accounts: "ok", payouts: "paid", notice: { format: "json", date_format: "yyyy-MM-dd HH:mm:ss" } };

/** Where the bank sends a notice or statement: Tally's inbox. Resolves to the stored document's id. */
export type DocumentSink = (bank: string, kind: "notice" | "statement", body: Buffer, contentType: string) => Promise<string>;

interface DemoAccount {
  readonly number: string;
  readonly name: string;
  readonly currency: string;
}

interface DemoPayout {
  readonly request: CustodyPayoutRequest;
  status: "pending" | "paid" | "failed";
  readonly bookedAtUs: bigint;
}

export interface DemoTransfer {
  readonly account_number: string;
  readonly amount: bigint;
  readonly currency?: string;
  readonly payer_name: string;
  readonly payer_account?: string;
  readonly remittance?: string;
  readonly bank_reference?: string;
  readonly copies?: number;
  readonly delay_ms?: number;
}

const COPIES_MAX = 10;

export class DemoBank implements CustodyBank {
  behaviour: DemoBehaviour = DEFAULT_DEMO_BEHAVIOUR;
  private readonly accounts = new Map<string, DemoAccount>();
  private readonly credits: BankCredit[] = [];
  private readonly payouts = new Map<string, DemoPayout>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly code: string, private readonly clock: Clock, private readonly sink: DocumentSink) {}

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  async openAccount(request: OpenAccountRequest): Promise<OpenAccountResult> {
    if (this.behaviour.accounts === "down") throw new CustodyUnavailableError(`${this.code}: the identity-check service is unavailable (simulated outage)`);
    if (this.behaviour.accounts === "refuse_identity") return { kind: "refused", reason: "identity check failed: the name does not match the ID number (simulated)" };
    // Deterministic per agreement: opening again (a retry after a lost answer) gives the same account.
    const digits = BigInt(`0x${createHash("sha256").update(`${this.code}:${request.agreementId}`).digest("hex").slice(0, 15)}`).toString().padStart(16, "0").slice(-16);
    const account: DemoAccount = { number: `9558${digits}`, name: `资金监管专户 ${request.agreementId}`.slice(0, 70), currency: request.currency };
    this.accounts.set(account.number, account);
    return { kind: "opened", accountNumber: account.number, accountName: account.name };
  }

  /** Money arrives at the bank; its notice (and copies) go to Tally now or after `delay_ms`. */
  async transfer(t: DemoTransfer): Promise<{ bank_reference: string; notice_ids: string[] }> {
    const credit: BankCredit = {
      bankReference: t.bank_reference ?? `DB${ulid()}`,
      accountNumber: t.account_number,
      amount: t.amount,
      currency: t.currency ?? this.accounts.get(t.account_number)?.currency ?? "CNY",
      payerName: t.payer_name,
      payerAccount: t.payer_account ?? "6217000010001234567",
      remittance: t.remittance ?? "",
      bookedAtUs: this.clock.nowUs(),
    };
    this.credits.push(credit);
    const body = Buffer.from(writeNotice([credit], this.behaviour.notice.format, this.behaviour.notice.date_format, `N${ulid().slice(-14)}`), "utf8");
    const contentType = { json: "application/json", csv: "text/csv", camt054: "application/xml", mt940: "text/plain" }[this.behaviour.notice.format];
    const copies = Math.min(Math.max(t.copies ?? 1, 1), COPIES_MAX);
    const send = () => Promise.all(Array.from({ length: copies }, () => this.sink(this.code, "notice", body, contentType)));
    if (t.delay_ms && t.delay_ms > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void send().catch(() => {});
      }, t.delay_ms);
      timer.unref();
      this.timers.add(timer);
      return { bank_reference: credit.bankReference, notice_ids: [] };
    }
    return { bank_reference: credit.bankReference, notice_ids: await send() };
  }

  async payout(request: CustodyPayoutRequest): Promise<CustodyPayoutResult> {
    const existing = this.payouts.get(request.transferId);
    if (existing) return this.result(request.transferId, existing);
    const status = this.behaviour.payouts === "hold" ? "pending" : this.behaviour.payouts;
    const payout: DemoPayout = { request, status, bookedAtUs: this.clock.nowUs() };
    this.payouts.set(request.transferId, payout);
    return this.result(request.transferId, payout);
  }

  async queryPayout(transferId: string): Promise<CustodyPayoutResult> {
    const payout = this.payouts.get(transferId);
    if (!payout) return { status: "failed", reason: "no such transfer at the bank" };
    return this.result(transferId, payout);
  }

  /** Settles a held payout (the simulator's endpoint); the result is what Tally's query will see. */
  settle(transferId: string, outcome: "paid" | "failed"): CustodyPayoutResult | null {
    const payout = this.payouts.get(transferId);
    if (!payout) return null;
    if (payout.status === "pending") payout.status = outcome;
    return this.result(transferId, payout);
  }

  private result(transferId: string, p: DemoPayout): CustodyPayoutResult {
    return { status: p.status, bankTransferId: `DBP${transferId.slice(-20)}`, ...(p.status === "failed" ? { reason: "the payee's bank rejected the transfer (simulated)" } : {}) };
  }

  /** The statement of `date` (YYYY-MM-DD, bank local time) for every account that has money. */
  statement(date: string, format: "camt053" | "mt940"): string {
    const localDate = (us: bigint) => new Date(Number(us / 1000n) + 8 * 3600_000).toISOString().slice(0, 10);
    const numbers = new Set<string>([...this.credits.map((c) => c.accountNumber), ...this.accounts.keys()]);
    const blocks: StatementAccount[] = [];
    for (const number of [...numbers].sort()) {
      const credits = this.credits.filter((c) => c.accountNumber === number);
      const paid = [...this.payouts.values()].filter((p) => p.request.fromAccountNumber === number && p.status === "paid");
      const before = (us: bigint) => localDate(us) < date;
      const opening = credits.filter((c) => before(c.bookedAtUs)).reduce((s, c) => s + c.amount, 0n) - paid.filter((p) => before(p.bookedAtUs)).reduce((s, p) => s + p.request.amount, 0n);
      const today = credits.filter((c) => localDate(c.bookedAtUs) === date);
      const out = paid.filter((p) => localDate(p.bookedAtUs) === date).reduce((s, p) => s + p.request.amount, 0n);
      const closing = opening + today.reduce((s, c) => s + c.amount, 0n) - out;
      blocks.push({ account: number, currency: this.accounts.get(number)?.currency ?? today[0]?.currency ?? "CNY", opening, closing, date, credits: today });
    }
    return writeStatement(blocks, format, `S${date.replace(/-/g, "")}${this.code.slice(0, 6)}`);
  }
}
