// Statement reconciliation (ESCROW.md "Statements and reconciliation"): a bank's daily statement
// (camt.053 or MT940) is stored raw, parsed, and compared with what Tally recorded for the same
// accounts and period: lines pair with arrivals by bank reference. `missing_in_tally` — the bank
// has money Tally does not know about, the silent failure this module exists to catch — raises
// an alert and names the quarantined entries that could explain it. A statement never creates
// arrivals by itself; an operator matches a line by hand (audited).
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { ArrivalsTable, CustodyDocumentsTable } from "../db/schema.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import { commitUnit } from "../payments/unit-of-work.ts";
import { stringifyJson } from "../http/json.ts";
import { escrowBalance } from "../escrow/model.ts";
import type { AgreementService } from "../escrow/service.ts";
import { agreementFromRow } from "../escrow/view.ts";
import { DOCUMENT_PURPOSE, bankLock, type ArrivalInbox } from "../arrivals/service.ts";
import { parseStatement, type ParsedStatement } from "../arrivals/parsers/index.ts";

export type LineStatus = "matched" | "missing_in_tally" | "missing_at_bank" | "amount_mismatch";

export interface ReconciliationLine {
  readonly line: number;
  readonly status: LineStatus;
  readonly account: string | null;
  readonly bank_reference: string | null;
  readonly amount_bank: string | null;
  readonly amount_tally: string | null;
  readonly booking_date: string | null;
  readonly arrival_id: string | null;
  readonly agreement_id: string | null;
  /** Quarantined entries that could explain a line Tally is missing (the fix: replay them). */
  readonly candidates: ReadonlyArray<{ entry_id: string; notice_id: string; reason: unknown }>;
  readonly resolved_by?: string;
}

export interface BalanceCheck {
  readonly account: string;
  readonly closing_bank: string | null;
  readonly tally: string;
  readonly matches: boolean;
}

export interface Reconciliation {
  readonly id: string;
  readonly bank: string;
  readonly statement_id: string;
  readonly status: "balanced" | "differences";
  readonly summary: { matched: number; missing_in_tally: number; missing_at_bank: number; amount_mismatch: number };
  readonly lines: ReconciliationLine[];
  readonly balances: BalanceCheck[];
  readonly created_at: string;
}

export class ReconciliationService {
  constructor(private readonly agreements: AgreementService, private readonly inbox: ArrivalInbox, private readonly logger: Logger) {}

  private get ctx() {
    return this.agreements.ctx;
  }

  async get(id: string): Promise<Reconciliation> {
    const row = await this.ctx.db.read.selectFrom("reconciliations").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw new ApiError("not_found", `no reconciliation ${id}`, "id");
    return JSON.parse(row.lines) as Reconciliation;
  }

  /** Stores, parses and reconciles a statement; the same statement again answers the first result. */
  async receive(bank: string, body: Buffer, contentType: string | undefined): Promise<{ reconciliation: Reconciliation; created: boolean }> {
    const hash = createHash("sha256").update(body).digest("hex");
    return this.ctx.lock.run(bankLock(bank), async () => {
      const existing = await this.ctx.db.read.selectFrom("reconciliations").select("id").where("bank", "=", bank).where("body_hash", "=", hash).executeTakeFirst();
      if (existing) return { reconciliation: await this.get(existing.id), created: false };
      const now = this.ctx.clock.nowUs();
      const doc: CustodyDocumentsTable = { id: `stm_${ulid()}`, bank, kind: "statement", received_at: now, content_type: contentType ?? null, raw_body: this.ctx.vault.sealDocument(DOCUMENT_PURPOSE, body), status: "received", errors: null, profile_version: null, processed_at: null };
      // Raw first: the statement is kept even if it cannot be read.
      await commitUnit(this.ctx.engine, [], () => ({ value: null, write: (tx) => tx.insertInto("custody_documents").values(doc).execute().then(() => undefined) }));
      const profile = await this.inbox.profile(bank);
      const parsed = parseStatement(body, profile?.profile.mt940_reference ? { mt940_reference: profile.profile.mt940_reference } : {});
      if (parsed.errors.length > 0 && parsed.statements.length === 0) {
        await commitUnit(this.ctx.engine, [], () => ({ value: null, write: (tx) => tx.updateTable("custody_documents").set({ status: "quarantined", errors: JSON.stringify(parsed.errors), processed_at: now }).where("id", "=", doc.id).execute().then(() => undefined) }));
        throw new ApiError("validation_failed", `the statement cannot be read: ${parsed.errors.map((e) => e.code + (e.value ? ` (${e.value})` : "")).join(", ")}`);
      }
      const reconciliation = await this.reconcile(bank, doc.id, parsed.statements);
      await commitUnit(this.ctx.engine, [], () => ({
        value: null,
        write: async (tx) => {
          await tx.updateTable("custody_documents").set({ status: parsed.errors.length ? "quarantined" : "processed", errors: parsed.errors.length ? JSON.stringify(parsed.errors) : null, processed_at: now }).where("id", "=", doc.id).execute();
          await tx.insertInto("reconciliations").values({ id: reconciliation.id, bank, document_id: doc.id, body_hash: hash, summary: JSON.stringify(reconciliation.summary), lines: stringifyJson(reconciliation), created_at: now }).execute();
          if (reconciliation.status === "differences") {
            await tx
              .insertInto("outbox_events")
              .values({ id: `evt_${ulid()}`, merchant_id: null, type: "custody.reconciliation_mismatch", created_at: now, data: stringifyJson({ object: { id: reconciliation.id, bank, summary: reconciliation.summary, balances: reconciliation.balances.filter((b) => !b.matches) } }) } as never)
              .execute();
          }
        },
      }));
      if (reconciliation.summary.missing_in_tally > 0) {
        this.logger.error({ bank, reconciliation: reconciliation.id, missing: reconciliation.summary.missing_in_tally }, "the bank holds money Tally has no arrival for");
      }
      return { reconciliation, created: true };
    });
  }

  private async reconcile(bank: string, statementId: string, statements: readonly ParsedStatement[]): Promise<Reconciliation> {
    const db = this.ctx.db.read;
    const lines: ReconciliationLine[] = [];
    const balances: BalanceCheck[] = [];
    let n = 0;
    for (const s of statements) {
      if (!s.account) continue;
      const dates = s.entries.map((e) => e.bookingDate).filter((d): d is string => d !== null).sort();
      const from = s.fromDate ?? s.closing?.date ?? dates[0] ?? null;
      const to = s.toDate ?? s.closing?.date ?? dates.at(-1) ?? null;
      let tallyQuery = db.selectFrom("arrivals").selectAll().where("bank", "=", bank).where("account", "=", s.account).where("status", "!=", "reversed");
      if (from) tallyQuery = tallyQuery.where("booking_date", ">=", from);
      if (to) tallyQuery = tallyQuery.where("booking_date", "<=", to);
      const tally = await tallyQuery.execute();
      const byRef = new Map<string, ArrivalsTable>(tally.map((a) => [a.bank_reference, a]));
      const seen = new Set<string>();
      for (const e of s.entries) {
        if (e.direction !== "credit" || e.reversal || e.status !== "booked") continue;
        const ref = e.bankReference;
        const arrival = ref ? (byRef.get(ref) ?? (await db.selectFrom("arrivals").selectAll().where("bank", "=", bank).where("bank_reference", "=", ref).executeTakeFirst())) : undefined;
        if (ref) seen.add(ref);
        const base = { line: n++, account: s.account, bank_reference: ref, amount_bank: e.amount?.toString() ?? null, booking_date: e.bookingDate };
        if (arrival && arrival.status !== "reversed") {
          const same = e.amount !== null && BigInt(arrival.amount) === e.amount;
          lines.push({ ...base, status: same ? "matched" : "amount_mismatch", amount_tally: String(arrival.amount), arrival_id: arrival.id, agreement_id: arrival.agreement_id, candidates: [] });
          continue;
        }
        // Quarantined entries that could explain the line: the same reference, or the same account and amount.
        const candidates = await db
          .selectFrom("custody_entries")
          .select(["id", "document_id", "reason"])
          .where("bank", "=", bank)
          .where("status", "=", "quarantined")
          .where((eb) => eb.or([eb("bank_reference", "=", ref ?? "\u0000"), eb.and([eb("account", "=", s.account), eb("amount", "=", e.amount ?? -1n)])]))
          .limit(10)
          .execute();
        lines.push({ ...base, status: "missing_in_tally", amount_tally: null, arrival_id: null, agreement_id: null, candidates: candidates.map((c) => ({ entry_id: c.id, notice_id: c.document_id, reason: c.reason ? JSON.parse(c.reason) : null })) });
      }
      for (const a of tally) {
        if (seen.has(a.bank_reference)) continue;
        lines.push({ line: n++, status: "missing_at_bank", account: s.account, bank_reference: a.bank_reference, amount_bank: null, amount_tally: String(a.amount), booking_date: a.booking_date, arrival_id: a.id, agreement_id: a.agreement_id, candidates: [] });
      }
      // The bank's closing balance against the money Tally says is at the bank on that account.
      const agreementRow = await db.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where("virtual_account_number", "=", s.account).executeTakeFirst();
      if (agreementRow && s.closing) {
        const a = agreementFromRow(agreementRow);
        const atBank = escrowBalance(a) + a.amountConverted;
        balances.push({ account: s.account, closing_bank: s.closing.amount.toString(), tally: atBank.toString(), matches: atBank === s.closing.amount });
      }
    }
    const count = (status: LineStatus) => lines.filter((l) => l.status === status).length;
    const summary = { matched: count("matched"), missing_in_tally: count("missing_in_tally"), missing_at_bank: count("missing_at_bank"), amount_mismatch: count("amount_mismatch") };
    const differences = summary.missing_in_tally + summary.missing_at_bank + summary.amount_mismatch > 0 || balances.some((b) => !b.matches);
    return { id: `rec_${ulid()}`, bank, statement_id: statementId, status: differences ? "differences" : "balanced", summary, lines, balances, created_at: new Date(Number(this.ctx.clock.nowMs())).toISOString() };
  }

  /** The fix for a `missing_in_tally` line: an arrival from the statement line, matched by hand (audited). */
  async matchLine(id: string, lineNo: number, agreementId: string, reason: string, actor: string) {
    const rec = await this.get(id);
    const line = rec.lines.find((l) => l.line === lineNo);
    if (!line) throw new ApiError("not_found", `no line ${lineNo} in ${id}`, "line");
    if (line.status !== "missing_in_tally" || !line.bank_reference || !line.amount_bank) throw new ApiError("invalid_state_transition", `a ${line.status} line cannot be matched`);
    const a = await this.agreements.get(agreementId, null);
    const arrival = await this.ctx.lock.run(bankLock(rec.bank), async () => {
      const existing = await this.ctx.db.read.selectFrom("arrivals").selectAll().where("bank", "=", rec.bank).where("bank_reference", "=", line.bank_reference!).executeTakeFirst();
      if (existing) return existing;
      return this.inbox.createArrival({
        bank: rec.bank,
        agreementId: a.id,
        amount: BigInt(line.amount_bank!),
        currency: a.currency,
        bankReference: line.bank_reference!,
        account: line.account,
        source: "statement_match",
        documentId: rec.statement_id,
        entry: null,
        bookedAtUs: null,
        bookingDate: line.booking_date,
        actor,
        reason,
      });
    });
    const updated: Reconciliation = { ...rec, lines: rec.lines.map((l) => (l.line === lineNo ? { ...l, resolved_by: arrival.id, arrival_id: arrival.id, agreement_id: a.id } : l)) };
    await commitUnit(this.ctx.engine, [], () => ({ value: null, write: (tx) => tx.updateTable("reconciliations").set({ lines: stringifyJson(updated) }).where("id", "=", id).execute().then(() => undefined) }));
    return arrival;
  }
}
