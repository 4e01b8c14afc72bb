// What the arrival-notice and statement parsers produce (ESCROW.md "Arrival notices", "Bank
// profiles", "Statements"): plain values, amounts in bigint minor units, never floats. Parsers
// are pure (bytes + profile in, entries out) and never throw on bad input: a problem is an
// entry's quarantine reason or a document-level error. Matching and storage are elsewhere.

export type NoticeFormat = "camt054" | "camt053" | "mt940" | "json" | "csv";

/** Why an entry (or a whole document) cannot be applied. */
export interface QuarantineReason {
  readonly code:
    | "unparseable_date"
    | "missing_field"
    | "invalid_amount"
    | "too_many_decimals"
    | "unknown_currency"
    | "missing_bank_reference"
    | "malformed"
    | "conflicts_with_arrival";
  readonly field?: string;
  readonly value?: string;
}

export type EntryDirection = "credit" | "debit";
/** camt `Sts` (BOOK, PDNG, INFO; absent = booked); MT940 entries are booked. */
export type EntryStatus = "booked" | "pending" | "info";

export interface ParsedEntry {
  /** 0-based position of the entry in the document: (notice, position) identifies it forever. */
  readonly position: number;
  /** The custody (virtual) account the entry is booked on, as written. */
  readonly account: string | null;
  /** Minor units, positive; direction says which way. Null when quarantined for the amount. */
  readonly amount: bigint | null;
  readonly currency: string | null;
  readonly direction: EntryDirection | null;
  readonly status: EntryStatus;
  /** camt: the `Sts` code as written (BOOK, PDNG, INFO ...), null when the entry has none. */
  readonly statusCode?: string | null;
  /** A reversal of an earlier entry (camt RvslInd, MT940 RC/RD). */
  readonly reversal: boolean;
  readonly bankReference: string | null;
  readonly payerName: string | null;
  readonly payerAccount: string | null;
  /** Remittance information / purpose text (camt Ustrd, MT940 :86:, the profile's field). */
  readonly remittance: string | null;
  /** Booking moment in µs since the epoch (UTC), or null when quarantined for the date. */
  readonly bookedAtUs: bigint | null;
  /** The booking date as written in the document's local sense (YYYY-MM-DD), for statements. */
  readonly bookingDate: string | null;
  /** Set when the entry cannot be applied; the others are still applied. */
  readonly quarantine: QuarantineReason | null;
}

export interface ParsedBalance {
  readonly amount: bigint;
  readonly currency: string;
  /** YYYY-MM-DD */
  readonly date: string | null;
  /** The balance's type as written: camt OPBD/PRCD/CLBD, MT940 60F/60M/62F/62M. */
  readonly tag?: string;
}

/** One account's statement (camt.053 Stmt, camt.054 Ntfctn, one MT940 message/page). */
export interface ParsedStatement {
  readonly account: string | null;
  readonly currency: string | null;
  readonly opening: ParsedBalance | null;
  readonly closing: ParsedBalance | null;
  /** FrToDt (camt) as YYYY-MM-DD, when given. */
  readonly fromDate: string | null;
  readonly toDate: string | null;
  readonly entries: readonly ParsedEntry[];
  /** How many entries the statement holds (equals entries.length unless entries were streamed to onEntry). */
  readonly entryCount?: number;
}

export interface ParsedDocument {
  readonly format: NoticeFormat;
  /** e.g. "MT940", "MT942", "camt.053.001.08". */
  readonly messageType: string | null;
  readonly statements: readonly ParsedStatement[];
  /** Document-level problems (not XML, DOCTYPE refused, truncated, wrong encoding ...). When non-empty the body could not be split into entries, or only partly. */
  readonly errors: readonly QuarantineReason[];
}

/** How to read a bank's JSON or CSV notices (ESCROW.md "Bank profiles"). */
export interface BankProfile {
  readonly format: NoticeFormat;
  readonly fields?: Readonly<Record<string, string>>;
  readonly amount_unit?: "major" | "minor";
  readonly date_formats?: readonly string[];
  readonly timezone?: string;
  /** MT940: a regular expression on :86: whose first group is the bank reference. */
  readonly mt940_reference?: string;
  readonly encoding?: "utf-8" | "gb18030";
  /** JSON/CSV: the currency when the notice has no currency field (ISO 4217). */
  readonly currency?: string;
  /** CSV: the field separator, one character (default ","). */
  readonly csv_delimiter?: string;
}
