// The arrival-notice inbox (ESCROW.md "Arrival notices"): a bank's notice is stored byte for byte
// before anything else; then parsed with the bank's current profile, each entry recorded by
// (notice, position) and applied at most once: matched to an agreement (money from the bank's
// clearing account to the escrow), held in the bank's suspense account (unmatched, manual queue),
// linked as a duplicate of an earlier arrival with the same bank reference, or quarantined with
// its reason. Quarantined entries are applied when the notice is replayed after a profile fix.
// One bank's documents are processed one at a time (a named lock), so de-duplication by bank
// reference holds across processes; each applied entry is one unit of work.
import type { Logger } from "pino";
import type { ArrivalsTable, CustodyDocumentsTable, CustodyEntriesTable } from "../db/schema.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import type { TransferInput } from "../ledger/model.ts";
import { allApplied as allAccepted, commitUnit, type Extra, type Tx } from "../payments/unit-of-work.ts";
import { stringifyJson } from "../http/json.ts";
import { arrivalTransfer, escrowAccounts, reversalTransfer, suspenseToEscrow, withStatus, type Agreement } from "../escrow/model.ts";
import { normaliseName } from "../escrow/pii.ts";
import { PERSON_NAME_INDEX, bankLock, lockName, type AgreementService } from "../escrow/service.ts";

export { bankLock };
import { matchEntry, remittanceTokens, type MatchCandidate } from "./matching.ts";
import { parseDocument, validateProfile, type BankProfile, type ParsedEntry, type QuarantineReason } from "./parsers/index.ts";
import { agreementFromRow } from "../escrow/view.ts";

export const PAYER_NAME_PURPOSE = "custody.payer_name";
/** Raw bank documents are sealed whole under this purpose (vault/registry.ts SEALED_DOCUMENTS). */
export const DOCUMENT_PURPOSE = "custody.document";
/** Entries applied in one unit of work (one transaction, one batch of transfers). */
const ENTRIES_PER_UNIT_MAX = 1000;
/** The bank's local time decides booking dates (statements are by local booking date). */
const BANK_TIMEZONE_OFFSET_MS = 8 * 3600_000;

export function localDate(us: bigint): string {
  return new Date(Number(us / 1000n) + BANK_TIMEZONE_OFFSET_MS).toISOString().slice(0, 10);
}

export interface StoredProfile {
  readonly version: number;
  readonly profile: BankProfile;
}

export class ArrivalInbox {
  /** Documents stored and waiting to be processed by this process. */
  private readonly queue = new Set<Promise<unknown>>();
  readonly counts = new Map<string, number>();

  constructor(private readonly agreements: AgreementService, private readonly logger: Logger) {}

  private get ctx() {
    return this.agreements.ctx;
  }

  get context() {
    return this.agreements.ctx;
  }

  /** A stored document's body exactly as it was received. */
  documentBody(doc: Pick<CustodyDocumentsTable, "raw_body">): Promise<Buffer> {
    // Fresh: a document sealed by another process after a rotation names a key this one may lack.
    return this.ctx.vault.openDocumentFresh(DOCUMENT_PURPOSE, doc.raw_body);
  }

  /** Resolves when every document received so far was processed (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.queue.size > 0) await Promise.allSettled([...this.queue]);
  }

  async profile(bank: string): Promise<StoredProfile | null> {
    const row = await this.ctx.db.read.selectFrom("bank_profiles").selectAll().where("bank", "=", bank).orderBy("version", "desc").limit(1).executeTakeFirst();
    return row ? { version: Number(row.version), profile: JSON.parse(row.profile) as BankProfile } : null;
  }

  /** Stores a new version of a bank's profile (audited); refuses an invalid one with the field. */
  async putProfile(bank: string, input: unknown, actor: string, extra?: Extra<StoredProfile>): Promise<StoredProfile> {
    const checked = validateProfile(input);
    if ("error" in checked) throw new ApiError("validation_failed", checked.error, checked.field);
    return this.ctx.lock.run(bankLock(bank), async () => {
      const current = await this.profile(bank);
      const stored: StoredProfile = { version: (current?.version ?? 0) + 1, profile: checked.profile };
      const now = this.ctx.clock.nowUs();
      return commitUnit(
        this.ctx.engine,
        [],
        () => ({
          value: stored,
          write: async (tx) => {
            await tx.insertInto("bank_profiles").values({ bank, version: stored.version, profile: JSON.stringify(checked.profile), created_at: now, created_by: actor }).execute();
            await audit(tx, now, actor, "custody.profile_changed", bank, null, { version: stored.version, previous: current?.version ?? null });
          },
        }),
        extra,
      );
    });
  }

  /** Stores a notice as received (its own commit), then processes it in the background. */
  async receive(bank: string, body: Buffer, contentType: string | undefined, extra?: Extra<string>): Promise<string> {
    const id = `ntc_${ulid()}`;
    const row: CustodyDocumentsTable = {
      id,
      bank,
      kind: "notice",
      received_at: this.ctx.clock.nowUs(),
      content_type: contentType ?? null,
      // Byte for byte as received, sealed by the vault: notices carry payers' names and accounts.
      raw_body: this.ctx.vault.sealDocument(DOCUMENT_PURPOSE, body),
      status: "received",
      errors: null,
      profile_version: null,
      processed_at: null,
    };
    await commitUnit(this.ctx.engine, [], () => ({ value: id, write: (tx) => tx.insertInto("custody_documents").values(row).execute().then(() => undefined) }), extra);
    const work = this.process(id).catch((err) => this.logger.error({ err, notice: id }, "processing a notice failed; it stays received and can be replayed"));
    this.queue.add(work);
    void work.finally(() => this.queue.delete(work));
    return id;
  }

  /** Processes documents still `received` (after a crash). */
  async processPending(): Promise<number> {
    const rows = await this.ctx.db.read.selectFrom("custody_documents").select("id").where("kind", "=", "notice").where("status", "=", "received").orderBy("received_at").limit(this.ctx.limits.paymentJobBatchMax).execute();
    for (const r of rows) await this.process(r.id);
    return rows.length;
  }

  /** Parses (again) with the bank's current profile and applies what was not applied yet. */
  async process(documentId: string): Promise<{ status: string; errors: QuarantineReason[] }> {
    const doc = await this.ctx.db.read.selectFrom("custody_documents").selectAll().where("id", "=", documentId).executeTakeFirst();
    if (!doc || doc.kind !== "notice") throw new ApiError("not_found", `no notice ${documentId}`, "id");
    return this.ctx.lock.run(bankLock(doc.bank), async () => {
      const stored = await this.profile(doc.bank);
      let errors: QuarantineReason[] = [];
      let entries: ParsedEntry[] = [];
      if (!stored) {
        errors = [{ code: "malformed", field: "profile", value: `no profile for bank ${doc.bank}` }];
      } else {
        const parsed = parseDocument(await this.documentBody(doc), stored.profile);
        errors = [...parsed.errors];
        entries = parsed.statements.flatMap((s) => s.entries);
      }
      const existing = new Map((await this.ctx.db.read.selectFrom("custody_entries").selectAll().where("document_id", "=", documentId).execute()).map((e) => [Number(e.position), e]));
      let quarantined = 0;
      // Never applied twice: only a quarantined entry (or a new one) is looked at again.
      const open = entries.filter((e) => {
        const before = existing.get(e.position);
        return !before || before.status === "quarantined";
      });
      for (let i = 0; i < open.length; i += ENTRIES_PER_UNIT_MAX) {
        const chunk = open.slice(i, i + ENTRIES_PER_UNIT_MAX);
        quarantined += await this.applyChunk(doc, chunk, existing);
      }
      const docStatus = errors.length > 0 || quarantined > 0 ? "quarantined" : "processed";
      const now = this.ctx.clock.nowUs();
      await commitUnit(this.ctx.engine, [], () => ({
        value: null,
        write: async (tx) => {
          await tx.updateTable("custody_documents").set({ status: docStatus, errors: errors.length ? JSON.stringify(errors) : null, profile_version: stored?.version ?? null, processed_at: now }).where("id", "=", documentId).execute();
          if (docStatus === "quarantined") {
            await tx
              .insertInto("outbox_events")
              .values({ id: `evt_${ulid()}`, merchant_id: null, type: "custody.notice_quarantined", created_at: now, data: stringifyJson({ object: { id: documentId, bank: doc.bank, errors, quarantined_entries: quarantined } }) } as never)
              .execute();
          }
        },
      }));
      const key = `${doc.bank}:${docStatus}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      if (docStatus === "quarantined") this.logger.warn({ notice: documentId, bank: doc.bank, errors, quarantined }, "notice quarantined: money may have arrived that Tally cannot see yet");
      return { status: docStatus, errors };
    });
  }

  /**
   * Applies entries of one document in one unit of work: decisions are made in order (a reference
   * seen earlier in the chunk makes a later entry its duplicate), then every arrival's transfer,
   * every entry and arrival row and every agreement touched commit together. The caller holds the
   * bank's lock, under which every change to the bank's agreements runs, so the agreements read
   * here cannot change before the commit. Reversals take the one-by-one path. Returns how many
   * entries were quarantined.
   */
  private async applyChunk(doc: CustodyDocumentsTable, chunk: readonly ParsedEntry[], existing: ReadonlyMap<number, CustodyEntriesTable>): Promise<number> {
    const db = this.ctx.db.read;
    const bank = doc.bank;
    const refs = [...new Set(chunk.map((e) => e.bankReference).filter((r): r is string => r !== null))];
    const seen = new Map<string, ArrivalsTable>();
    for (let i = 0; i < refs.length; i += 500) {
      for (const a of await db.selectFrom("arrivals").selectAll().where("bank", "=", bank).where("bank_reference", "in", refs.slice(i, i + 500)).execute()) seen.set(a.bank_reference, a);
    }
    const rows = chunk.map((e) => this.entryRow(doc, e, existing.get(e.position) ?? null));
    // Candidates of the whole chunk, loaded once: by account, by remittance token, by payer name.
    const accounts = [...new Set(chunk.map((e) => e.account).filter((a): a is string => a !== null))];
    const tokens = [...new Set(chunk.flatMap((e) => [...remittanceTokens(e.remittance)]))];
    const names = [...new Set(rows.map((r) => r.payer_name_index).filter((n): n is string => n !== null))];
    const agreementRows = new Map<string, import("../db/schema.ts").AgreementsTable>();
    const load = async (column: "virtual_account_number" | "id" | "contract_ref" | "payer_name_index", values: string[]) => {
      for (let i = 0; i < values.length; i += 500) {
        for (const r of await db.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where(column, "in", values.slice(i, i + 500)).execute()) agreementRows.set(r.id, r);
      }
    };
    await load("virtual_account_number", accounts);
    await load("id", tokens);
    await load("contract_ref", tokens);
    await load("payer_name_index", names);
    const agreements = new Map<string, Agreement>([...agreementRows.values()].map((r) => [r.id, agreementFromRow(r)]));
    const received = new Map<string, bigint>();
    const candidate = (a: Agreement): MatchCandidate => ({
      id: a.id,
      contractRef: a.contractRef,
      virtualAccount: a.virtualAccountNumber,
      status: a.status,
      currency: a.currency,
      amountDue: a.amountDue,
      amountReceived: a.amountReceived + (received.get(a.id) ?? 0n),
      payerNameIndex: agreementRows.get(a.id)!.payer_name_index,
    });

    const now = this.ctx.clock.nowUs();
    const entries: Array<{ row: CustodyEntriesTable; insert: boolean }> = [];
    const arrivals: ArrivalsTable[] = [];
    const transfers: TransferInput[] = [];
    const alerts: Array<{ ref: string; arrival: string; position: number }> = [];
    const slow: ParsedEntry[] = [];
    let quarantined = 0;
    chunk.forEach((e, i) => {
      const base = rows[i]!;
      const insert = !existing.has(e.position);
      const put = (status: CustodyEntriesTable["status"], reason: unknown, more: Partial<CustodyEntriesTable> = {}) => {
        if (status === "quarantined") quarantined++;
        entries.push({ row: { ...base, status, reason: reason === null ? null : JSON.stringify(reason), ...more }, insert });
      };
      if (e.quarantine) return put("quarantined", e.quarantine);
      if (e.status !== "booked") return put("ignored", { code: e.status === "pending" ? "pending_entry" : "information_only" });
      if (e.bankReference === null) return put("quarantined", { code: "missing_bank_reference" });
      if (e.amount === null || e.currency === null || e.direction === null) return put("quarantined", { code: "missing_field", field: "amount" });
      if (e.reversal) return void slow.push(e);
      if (e.direction !== "credit") return put("ignored", { code: "debit" });
      const arrival = seen.get(e.bankReference);
      if (arrival) {
        if (BigInt(arrival.amount) === e.amount && (arrival.account === null || e.account === null || arrival.account === e.account)) {
          return put("duplicate", null, { arrival_id: arrival.id, agreement_id: arrival.agreement_id });
        }
        alerts.push({ ref: e.bankReference, arrival: arrival.id, position: e.position });
        return put("quarantined", { code: "conflicts_with_arrival", field: "bank_reference", value: e.bankReference });
      }
      const match = matchEntry({ account: e.account, amount: e.amount, currency: e.currency, remittance: e.remittance, payerNameIndex: base.payer_name_index }, [...agreements.values()].map(candidate));
      const target = match ? agreements.get(match.agreementId)! : null;
      const row: ArrivalsTable = {
        id: `arr_${ulid()}`,
        agreement_id: target?.id ?? null,
        bank,
        amount: e.amount,
        currency: e.currency,
        bank_reference: e.bankReference,
        account: e.account,
        source: "notice",
        document_id: doc.id,
        entry_id: base.id,
        status: target ? "matched" : "unmatched",
        booked_at: e.bookedAtUs,
        booking_date: base.booking_date ?? localDate(e.bookedAtUs ?? now),
        created_at: now,
        created_by: null,
        reason: match ? `matched by ${match.rule}` : null,
      };
      arrivals.push(row);
      seen.set(e.bankReference, row);
      transfers.push(arrivalTransfer(row.id, bank, e.currency, e.amount, target?.escrowAccountId ?? null));
      if (target) received.set(target.id, (received.get(target.id) ?? 0n) + e.amount);
      put(target ? "matched" : "unmatched", null, { arrival_id: row.id, agreement_id: target?.id ?? null });
    });
    for (const currency of new Set(arrivals.map((a) => a.currency))) {
      await this.agreements.ensureAccount(escrowAccounts.clearing(bank, currency), currency, "debit", null);
      await this.agreements.ensureAccount(escrowAccounts.suspense(bank, currency), currency, "credit", null);
    }
    const changed = [...received].map(([id, amount]) => {
      const before = agreements.get(id)!;
      return { before, next: withStatus({ ...before, amountReceived: before.amountReceived + amount, updatedAt: now, version: before.version + 1n }, now) };
    });
    await commitUnit(this.ctx.engine, transfers, (outcomes) => {
      // Arrivals only credit escrow and suspense accounts: a refusal is a broken invariant.
      if (!allAccepted(outcomes)) throw new Error(`the ledger refused an arrival of notice ${doc.id}: ${outcomes.find((o) => o.result !== "created" && o.result !== "exists")?.result}`);
      return {
        value: null,
        write: async (tx) => {
          for (const a of arrivals) await tx.insertInto("arrivals").values(a).execute();
          for (const e of entries) await this.saveEntry(tx, e.row, e.insert);
          for (const c of changed) await this.agreements.writeAgreement(tx, c.next, c.before);
          for (const alert of alerts) {
            await tx
              .insertInto("outbox_events")
              .values({ id: `evt_${ulid()}`, merchant_id: null, type: "custody.reconciliation_mismatch", created_at: now, data: stringifyJson({ object: { bank, bank_reference: alert.ref, arrival_id: alert.arrival, entry_position: alert.position, notice_id: doc.id } }) } as never)
              .execute();
          }
        },
      };
    });
    if (alerts.length > 0) this.logger.error({ bank, notice: doc.id, conflicts: alerts.length }, "entries conflict with earlier arrivals of the same bank reference");
    for (const e of slow) if ((await this.applyEntry(doc, e, existing.get(e.position) ?? null)) === "quarantined") quarantined++;
    return quarantined;
  }

  /** Candidates for matching one entry: by virtual account, by remittance tokens, by payer name. */
  private async candidates(bank: string, entry: { account: string | null; remittance: string | null; payerNameIndex: string | null }): Promise<MatchCandidate[]> {
    const db = this.ctx.db.read;
    const rows = [];
    if (entry.account) rows.push(...(await db.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where("virtual_account_number", "=", entry.account).execute()));
    const tokens = [...remittanceTokens(entry.remittance)].slice(0, 50);
    if (tokens.length > 0) {
      rows.push(...(await db.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where((eb) => eb.or([eb("id", "in", tokens), eb("contract_ref", "in", tokens)])).execute()));
    }
    if (entry.payerNameIndex) {
      rows.push(
        ...(await db.selectFrom("agreements").selectAll().where("custody_bank", "=", bank).where("payer_name_index", "=", entry.payerNameIndex).where("status", "in", ["awaiting_funds", "partially_funded"]).limit(20).execute()),
      );
    }
    return rows.map((r) => ({
      id: r.id,
      contractRef: r.contract_ref,
      virtualAccount: r.virtual_account_number,
      status: r.status,
      currency: r.currency,
      amountDue: BigInt(r.amount_due),
      amountReceived: BigInt(r.amount_received),
      payerNameIndex: r.payer_name_index,
    }));
  }

  private entryRow(doc: CustodyDocumentsTable, e: ParsedEntry, before: CustodyEntriesTable | null): CustodyEntriesTable {
    const now = this.ctx.clock.nowUs();
    const vault = this.ctx.vault;
    return {
      id: before?.id ?? `ent_${ulid()}`,
      document_id: doc.id,
      position: e.position,
      bank: doc.bank,
      status: "quarantined",
      reason: null,
      bank_reference: e.bankReference,
      account: e.account,
      amount: e.amount,
      currency: e.currency,
      direction: e.direction,
      reversal: e.reversal ? 1 : 0,
      payer_name: e.payerName ? vault.encrypt(PAYER_NAME_PURPOSE, e.payerName) : null,
      payer_name_index: e.payerName ? vault.blindIndex(PERSON_NAME_INDEX, normaliseName(e.payerName)) : null,
      remittance: e.remittance,
      booked_at: e.bookedAtUs,
      booking_date: e.bookingDate ?? (e.bookedAtUs !== null ? localDate(e.bookedAtUs) : null),
      arrival_id: null,
      agreement_id: null,
      created_at: before?.created_at ?? now,
      updated_at: now,
      alerted_at: before?.alerted_at ?? null,
    };
  }

  private async saveEntry(tx: Tx, row: CustodyEntriesTable, insert: boolean): Promise<void> {
    if (insert) await tx.insertInto("custody_entries").values(row).execute();
    else await tx.updateTable("custody_entries").set(row).where("id", "=", row.id).execute();
  }

  /** Applies one parsed entry (the caller holds the bank's lock). Returns its status. */
  private async applyEntry(doc: CustodyDocumentsTable, e: ParsedEntry, before: CustodyEntriesTable | null): Promise<CustodyEntriesTable["status"]> {
    const base = this.entryRow(doc, e, before);
    const insert = before === null;
    const simple = async (status: CustodyEntriesTable["status"], reason: QuarantineReason | { code: string } | null, extraFields: Partial<CustodyEntriesTable> = {}) => {
      const row = { ...base, status, reason: reason ? JSON.stringify(reason) : null, ...extraFields };
      await commitUnit(this.ctx.engine, [], () => ({ value: null, write: (tx) => this.saveEntry(tx, row, insert) }));
      return status;
    };
    if (e.quarantine) return simple("quarantined", e.quarantine);
    if (e.status !== "booked") return simple("ignored", { code: e.status === "pending" ? "pending_entry" : "information_only" });
    if (e.bankReference === null) return simple("quarantined", { code: "missing_bank_reference" });
    if (e.amount === null || e.currency === null || e.direction === null) return simple("quarantined", { code: "missing_field", field: "amount" });
    const credit = (e.direction === "credit") !== e.reversal;
    const arrival = await this.ctx.db.read.selectFrom("arrivals").selectAll().where("bank", "=", doc.bank).where("bank_reference", "=", e.bankReference).executeTakeFirst();
    if (e.reversal) {
      // A reversal of an applied credit takes the money back out (and reduces amount_received).
      if (!arrival || arrival.status === "reversed") return simple("ignored", { code: "reversal_of_unknown_arrival" });
      if (BigInt(arrival.amount) !== e.amount) return simple("quarantined", { code: "conflicts_with_arrival", field: "amount", value: String(e.amount) });
      await this.reverse(doc, base, insert, arrival);
      return "matched";
    }
    if (!credit) return simple("ignored", { code: "debit" });
    if (arrival) {
      const same = BigInt(arrival.amount) === e.amount && (arrival.account === null || e.account === null || arrival.account === e.account);
      if (same) return simple("duplicate", null, { arrival_id: arrival.id, agreement_id: arrival.agreement_id });
      this.logger.error({ bank: doc.bank, reference: e.bankReference, arrival: arrival.id }, "an entry conflicts with an earlier arrival of the same bank reference");
      await commitUnit(this.ctx.engine, [], () => ({
        value: null,
        write: async (tx) => {
          await this.saveEntry(tx, { ...base, status: "quarantined", reason: JSON.stringify({ code: "conflicts_with_arrival", field: "bank_reference", value: e.bankReference }) }, insert);
          await tx.insertInto("outbox_events").values({ id: `evt_${ulid()}`, merchant_id: null, type: "custody.reconciliation_mismatch", created_at: this.ctx.clock.nowUs(), data: stringifyJson({ object: { bank: doc.bank, bank_reference: e.bankReference, arrival_id: arrival.id, entry_position: e.position, notice_id: doc.id } }) } as never).execute();
        },
      }));
      return "quarantined";
    }
    const candidates = await this.candidates(doc.bank, { account: e.account, remittance: e.remittance, payerNameIndex: base.payer_name_index });
    const match = matchEntry({ account: e.account, amount: e.amount, currency: e.currency, remittance: e.remittance, payerNameIndex: base.payer_name_index }, candidates);
    await this.createArrival({
      bank: doc.bank,
      agreementId: match?.agreementId ?? null,
      amount: e.amount,
      currency: e.currency,
      bankReference: e.bankReference,
      account: e.account,
      source: "notice",
      documentId: doc.id,
      entry: { row: base, insert },
      bookedAtUs: e.bookedAtUs,
      bookingDate: base.booking_date,
      actor: null,
      reason: match ? `matched by ${match.rule}` : null,
    });
    return match ? "matched" : "unmatched";
  }

  /**
   * Records an arrival: matched → clearing to escrow, and the agreement's amounts grow;
   * unmatched → clearing to the bank's suspense account (the manual queue). One unit of work with
   * the entry (when it comes from a notice) and the agreement.
   */
  async createArrival(input: {
    bank: string;
    agreementId: string | null;
    amount: bigint;
    currency: string;
    bankReference: string;
    account: string | null;
    source: ArrivalsTable["source"];
    documentId: string | null;
    entry: { row: CustodyEntriesTable; insert: boolean } | null;
    bookedAtUs: bigint | null;
    bookingDate: string | null;
    actor: string | null;
    reason: string | null;
  }, extra?: Extra<ArrivalsTable>): Promise<ArrivalsTable> {
    const now = this.ctx.clock.nowUs();
    const arrival: ArrivalsTable = {
      id: `arr_${ulid()}`,
      agreement_id: input.agreementId,
      bank: input.bank,
      amount: input.amount,
      currency: input.currency,
      bank_reference: input.bankReference,
      account: input.account,
      source: input.source,
      document_id: input.documentId,
      entry_id: input.entry?.row.id ?? null,
      status: input.agreementId ? "matched" : "unmatched",
      booked_at: input.bookedAtUs,
      booking_date: input.bookingDate ?? localDate(input.bookedAtUs ?? now),
      created_at: now,
      created_by: input.actor,
      reason: input.reason,
    };
    const entryRow = input.entry ? { ...input.entry.row, status: (input.agreementId ? "matched" : "unmatched") as CustodyEntriesTable["status"], reason: null, arrival_id: arrival.id, agreement_id: input.agreementId } : null;
    await this.agreements.ensureAccount(escrowAccounts.clearing(input.bank, input.currency), input.currency, "debit", null);
    await this.agreements.ensureAccount(escrowAccounts.suspense(input.bank, input.currency), input.currency, "credit", null);
    const writeRows = async (tx: Tx) => {
      await tx.insertInto("arrivals").values(arrival).execute();
      if (entryRow) await this.saveEntry(tx, entryRow, input.entry!.insert);
      if (input.actor) await audit(tx, now, input.actor, `custody.${input.source}_arrival`, arrival.id, input.reason, { agreement_id: input.agreementId, amount: String(input.amount), bank_reference: input.bankReference });
    };
    if (!input.agreementId) {
      const t = arrivalTransfer(arrival.id, input.bank, input.currency, input.amount, null);
      return commitUnit(this.ctx.engine, [t], () => ({ value: arrival, write: writeRows }), extra);
    }
    return this.ctx.lock.run(lockName(input.agreementId), async () => {
      const a = await this.agreements.get(input.agreementId!, null);
      const t = arrivalTransfer(arrival.id, input.bank, input.currency, input.amount, a.escrowAccountId);
      return this.agreements.applyChange(a, { amountReceived: a.amountReceived + input.amount }, [t], () => arrival, writeRows, extra);
    });
  }

  private async reverse(doc: CustodyDocumentsTable, base: CustodyEntriesTable, insert: boolean, arrival: ArrivalsTable): Promise<void> {
    const amount = BigInt(arrival.amount);
    const entryRow = { ...base, status: "matched" as const, reason: JSON.stringify({ code: "reversal" }), arrival_id: arrival.id, agreement_id: arrival.agreement_id };
    const write = async (tx: Tx) => {
      await tx.updateTable("arrivals").set({ status: "reversed" }).where("id", "=", arrival.id).execute();
      await this.saveEntry(tx, entryRow, insert);
    };
    if (!arrival.agreement_id || arrival.status === "unmatched") {
      const t = reversalTransfer(arrival.id, doc.bank, arrival.currency, amount, escrowAccounts.suspense(doc.bank, arrival.currency));
      await commitUnit(this.ctx.engine, [t], () => ({ value: null, write }));
      return;
    }
    await this.ctx.lock.run(lockName(arrival.agreement_id), async () => {
      const a = await this.agreements.get(arrival.agreement_id!, null);
      const t = reversalTransfer(arrival.id, doc.bank, arrival.currency, amount, a.escrowAccountId);
      await this.agreements.applyChange(a, { amountReceived: a.amountReceived - amount }, [t], () => null, write);
    });
  }

  /** Matches an unmatched entry by hand (audited): its money moves from suspense to the escrow. */
  async matchEntryByHand(entryId: string, agreementId: string, reason: string, actor: string, extra?: Extra<ArrivalsTable>): Promise<ArrivalsTable> {
    const entry = await this.ctx.db.read.selectFrom("custody_entries").selectAll().where("id", "=", entryId).executeTakeFirst();
    if (!entry) throw new ApiError("not_found", `no entry ${entryId}`, "id");
    return this.ctx.lock.run(bankLock(entry.bank), async () => {
      const fresh = (await this.ctx.db.read.selectFrom("custody_entries").selectAll().where("id", "=", entryId).executeTakeFirstOrThrow());
      if (fresh.status !== "unmatched" || !fresh.arrival_id) throw new ApiError("invalid_state_transition", `an entry that is ${fresh.status} cannot be matched by hand`);
      const arrival = (await this.ctx.db.read.selectFrom("arrivals").selectAll().where("id", "=", fresh.arrival_id).executeTakeFirstOrThrow());
      return this.moveToAgreement(arrival, agreementId, reason, actor, { id: fresh.id, fields: { status: "matched", agreement_id: agreementId } }, extra);
    });
  }

  /** An unmatched arrival (in suspense) assigned to an agreement. The caller holds the bank lock. */
  async moveToAgreement(arrival: ArrivalsTable, agreementId: string, reason: string, actor: string, entry: { id: string; fields: Partial<CustodyEntriesTable> } | null, extra?: Extra<ArrivalsTable>): Promise<ArrivalsTable> {
    return this.ctx.lock.run(lockName(agreementId), async () => {
      const a = await this.agreements.get(agreementId, null);
      if (a.custodyBank !== arrival.bank || a.currency !== arrival.currency) throw new ApiError("validation_failed", "the agreement is at another bank or in another currency", "agreement_id");
      if (!["awaiting_funds", "partially_funded", "funded", "expired"].includes(a.status)) throw new ApiError("invalid_state_transition", `an agreement that is ${a.status} cannot receive money`);
      const amount = BigInt(arrival.amount);
      const now = this.ctx.clock.nowUs();
      const matched: ArrivalsTable = { ...arrival, agreement_id: agreementId, status: "matched", reason, created_by: actor };
      const t: TransferInput = suspenseToEscrow(arrival.id, arrival.bank, arrival.currency, amount, a.escrowAccountId);
      return this.agreements.applyChange(a, { amountReceived: a.amountReceived + amount }, [t], () => matched, async (tx) => {
        await tx.updateTable("arrivals").set({ agreement_id: agreementId, status: "matched", reason }).where("id", "=", arrival.id).execute();
        if (entry) await tx.updateTable("custody_entries").set({ ...entry.fields, updated_at: now }).where("id", "=", entry.id).execute();
        await audit(tx, now, actor, "custody.manual_match", arrival.id, reason, { agreement_id: agreementId, amount: String(amount) });
      }, extra);
    });
  }

  /**
   * 手动到账: an operator records money the bank confirmed by other means (audited). A notice
   * entry with the same bank reference, earlier (quarantined, replayed later) or later, becomes
   * its duplicate instead of counting again.
   */
  async manualArrival(agreementId: string, merchantId: string | null, input: { amount: bigint; currency: string; bankReference: string; bookedAtUs?: bigint; reason: string }, actor: string): Promise<{ arrival: ArrivalsTable; created: boolean }> {
    const a = await this.agreements.get(agreementId, merchantId);
    if (input.currency !== a.currency) throw new ApiError("currency_mismatch", `the agreement is in ${a.currency}`, "currency");
    return this.ctx.lock.run(bankLock(a.custodyBank), async () => {
      const existing = await this.ctx.db.read.selectFrom("arrivals").selectAll().where("bank", "=", a.custodyBank).where("bank_reference", "=", input.bankReference).executeTakeFirst();
      if (existing) {
        if (existing.agreement_id === a.id && BigInt(existing.amount) === input.amount) return { arrival: existing, created: false };
        throw new ApiError("exists_with_different_fields", `bank reference ${input.bankReference} was already applied`, "bank_reference");
      }
      const arrival = await this.createArrival({
        bank: a.custodyBank,
        agreementId: a.id,
        amount: input.amount,
        currency: input.currency,
        bankReference: input.bankReference,
        account: a.virtualAccountNumber,
        source: "manual",
        documentId: null,
        entry: null,
        bookedAtUs: input.bookedAtUs ?? null,
        bookingDate: input.bookedAtUs !== undefined ? localDate(input.bookedAtUs) : null,
        actor,
        reason: input.reason,
      });
      return { arrival, created: true };
    });
  }

  async arrivalsOf(agreementId: string): Promise<ArrivalsTable[]> {
    return this.ctx.db.read.selectFrom("arrivals").selectAll().where("agreement_id", "=", agreementId).orderBy("created_at").execute();
  }

  async agreementFor(id: string): Promise<Agreement | null> {
    const row = await this.ctx.db.read.selectFrom("agreements").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? agreementFromRow(row) : null;
  }
}

/** Banks Tally has heard from or holds agreements at. */
async function knownBanks(db: import("../db/database.ts").Database): Promise<string[]> {
  const rows = await db.read.selectFrom("agreements").select("custody_bank").distinct().execute();
  return rows.map((r) => r.custody_bank);
}

/**
 * The alerts of ESCROW.md that come from time passing: entries unmatched too long, a bank silent
 * during business hours, a statement not arrived by its hour. Each goes out once per occasion.
 */
export async function custodyAlerts(inbox: ArrivalInbox, ctx: ArrivalInbox["context"]): Promise<number> {
  const now = ctx.clock.nowUs();
  const limits = ctx.limits;
  let raised = 0;
  const event = (type: string, object: unknown) => (tx: Tx) =>
    tx.insertInto("outbox_events").values({ id: `evt_${ulid()}`, merchant_id: null, type, created_at: now, data: stringifyJson({ object }) } as never).execute().then(() => undefined);
  const stale = await ctx.db.read
    .selectFrom("custody_entries")
    .selectAll()
    .where("status", "=", "unmatched")
    .where("alerted_at", "is", null)
    .where("created_at", "<=", now - BigInt(limits.custodyUnmatchedAlertMs) * 1000n)
    .limit(limits.paymentJobBatchMax)
    .execute();
  for (const e of stale) {
    await commitUnit(ctx.engine, [], () => ({
      value: null,
      write: async (tx) => {
        await tx.updateTable("custody_entries").set({ alerted_at: now }).where("id", "=", e.id).execute();
        await event("custody.entry_unmatched", { entry_id: e.id, bank: e.bank, bank_reference: e.bank_reference, amount: e.amount, currency: e.currency, waiting_since: e.created_at })(tx);
      },
    }));
    raised++;
  }
  const local = new Date(Number(now / 1000n) + BANK_TIMEZONE_OFFSET_MS);
  const hour = local.getUTCHours();
  const today = local.toISOString().slice(0, 10);
  for (const bank of await knownBanks(ctx.db)) {
    const cursor = async (name: string) => (await ctx.db.read.selectFrom("job_cursors").select("position").where("name", "=", name).executeTakeFirst())?.position;
    const setCursor = (name: string, position: bigint) => (tx: Tx) =>
      tx.insertInto("job_cursors").values({ name, position }).onConflict((oc) => oc.column("name").doUpdateSet({ position })).execute().then(() => undefined);
    if (hour >= 9 && hour < 18) {
      const last = await ctx.db.read.selectFrom("custody_documents").select((eb) => eb.fn.max<bigint>("received_at").as("at")).where("bank", "=", bank).where("kind", "=", "notice").executeTakeFirst();
      const lastAt = last?.at === null || last?.at === undefined ? null : BigInt(last.at);
      const silentSince = lastAt ?? 0n;
      const name = `alert:bank_silent:${bank}`;
      if (lastAt !== null && now - silentSince >= BigInt(limits.custodyBankQuietMs) * 1000n && (await cursor(name)) !== silentSince) {
        await commitUnit(ctx.engine, [], () => ({ value: null, write: async (tx) => { await setCursor(name, silentSince)(tx); await event("custody.bank_silent", { bank, last_notice_at: silentSince })(tx); } }));
        raised++;
      }
    }
    if (hour >= limits.custodyStatementDueHour) {
      const dayNumber = BigInt(Math.floor(Date.parse(`${today}T00:00:00Z`) / 86_400_000));
      const name = `alert:statement_missing:${bank}`;
      const sinceLocalMidnightUs = BigInt(Date.parse(`${today}T00:00:00+08:00`)) * 1000n;
      const statement = await ctx.db.read.selectFrom("custody_documents").select("id").where("bank", "=", bank).where("kind", "=", "statement").where("received_at", ">=", sinceLocalMidnightUs).executeTakeFirst();
      if (!statement && (await cursor(name)) !== dayNumber) {
        await commitUnit(ctx.engine, [], () => ({ value: null, write: async (tx) => { await setCursor(name, dayNumber)(tx); await event("custody.statement_missing", { bank, date: today })(tx); } }));
        raised++;
      }
    }
  }
  void inbox;
  return raised;
}

export async function audit(tx: Tx, at: bigint, actor: string, action: string, objectId: string, reason: string | null, detail: unknown): Promise<void> {
  await tx.insertInto("escrow_audit").values({ id: `aud_${ulid()}`, at, actor, action, object_id: objectId, reason, detail: detail === null ? null : stringifyJson(detail) }).execute();
}
