// Every column that holds personal data, declared once: where it is, which purpose's keys encrypt
// it, what it holds, and its blind indexes. Key creation, re-encryption after a rotation and the
// coverage report all read this list, so a column added here is covered by all three (and one
// missing here is what the coverage test and the clear-data scan catch).
import type { FieldTypeName } from "./fields.ts";

export interface SensitiveColumn {
  readonly table: string;
  readonly column: string;
  /** A text primary key, the order re-encryption walks in (and its checkpoint). */
  readonly primaryKey: string;
  /** The data-key purpose (also bound into each ciphertext). */
  readonly purpose: string;
  /** One field, or a JSON record whose members are fields. */
  readonly content: { readonly kind: "field"; readonly type: FieldTypeName } | { readonly kind: "record"; readonly fields: Readonly<Record<string, FieldTypeName>> };
  readonly blindIndexes: readonly { readonly column: string; readonly purpose: string; readonly of: string }[];
}

export const SENSITIVE_COLUMNS: readonly SensitiveColumn[] = [
  {
    table: "payouts",
    column: "destination",
    primaryKey: "id",
    purpose: "payout.destination",
    content: { kind: "record", fields: { bankAccountNumber: "bank_account", accountName: "person_name" } },
    blindIndexes: [{ column: "account_number_index", purpose: "bank_account_number", of: "bankAccountNumber" }],
  },
  {
    table: "agreements",
    column: "payer",
    primaryKey: "id",
    purpose: "agreement.payer",
    content: { kind: "record", fields: { name: "person_name", id_number: "resident_id", phone: "mobile" } },
    blindIndexes: [{ column: "payer_name_index", purpose: "person_name", of: "name" }],
  },
  {
    table: "agreements",
    column: "payee",
    primaryKey: "id",
    purpose: "agreement.payee",
    content: { kind: "record", fields: { name: "person_name", bank_account_number: "bank_account", account_name: "person_name" } },
    blindIndexes: [],
  },
  {
    table: "custody_entries",
    column: "payer_name",
    primaryKey: "id",
    purpose: "custody.payer_name",
    content: { kind: "field", type: "person_name" },
    blindIndexes: [{ column: "payer_name_index", purpose: "person_name", of: "value" }],
  },
];

export const columnName = (c: Pick<SensitiveColumn, "table" | "column">) => `${c.table}.${c.column}`;

/**
 * Whole documents sealed as received (bank notices and statements carry payers' names and
 * accounts; channels' notifications their buyers' logins and masked cards): their purposes
 * have data keys like columns. The coverage report counts the rows without a seal; it does not
 * open every document (each may be up to 64 MiB).
 */
export const SEALED_DOCUMENTS = [
  { table: "custody_documents", column: "raw_body", primaryKey: "id", purpose: "custody.document" },
  // Rows without a seal hold their body in clear (stored before migration 0011, until sealed).
  { table: "channel_notifications", column: "sealed_body", primaryKey: "id", purpose: "channel.notification" },
] as const;

/** Data-key purposes of the registry. */
export function registeredPurposes(columns: readonly SensitiveColumn[] = SENSITIVE_COLUMNS): string[] {
  return [...new Set([...columns.map((c) => c.purpose), ...SEALED_DOCUMENTS.map((d) => d.purpose)])];
}

/** Blind-index purposes of the registry. */
export function registeredIndexes(columns: readonly SensitiveColumn[] = SENSITIVE_COLUMNS): string[] {
  return [...new Set(columns.flatMap((c) => c.blindIndexes.map((i) => i.purpose)))];
}
