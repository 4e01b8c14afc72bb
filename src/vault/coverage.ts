// The coverage report: for each registered sensitive column, how many rows hold a value the vault
// decrypts (authenticated, so a corrupt value counts as not covered), per key version, and the
// share of all such rows overall. A clear value anywhere brings coverage below 100%.
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/database.ts";
import { columnName, SEALED_DOCUMENTS, SENSITIVE_COLUMNS, type SensitiveColumn } from "./registry.ts";
import type { Vault } from "./vault.ts";

const SCAN_BATCH_ROWS = 1000;

export interface ColumnCoverage {
  readonly table: string;
  readonly column: string;
  readonly purpose: string;
  readonly rows: number;
  readonly encrypted: number;
  readonly not_encrypted: number;
  readonly coverage_percent: number;
  /** Encrypted rows by data-key version ("0" = the first cut's format). */
  readonly key_versions: Readonly<Record<string, number>>;
  /** Primary keys of the first rows found not encrypted (at most 10), to fix them. */
  readonly not_encrypted_examples: readonly string[];
}

/** A table of sealed documents: how many rows hold their document sealed (not opened to check). */
export interface DocumentCoverage {
  readonly table: string;
  readonly column: string;
  readonly purpose: string;
  readonly rows: number;
  readonly sealed: number;
  readonly not_sealed: number;
  /** Primary keys of the first rows found without a seal (at most 10). */
  readonly not_sealed_examples: readonly string[];
}

export interface CoverageReport {
  readonly columns: readonly ColumnCoverage[];
  /** Documents kept as received; rows without a seal count as not encrypted in `overall`. */
  readonly documents: readonly DocumentCoverage[];
  readonly overall: { readonly rows: number; readonly encrypted: number; readonly not_encrypted: number; readonly coverage_percent: number };
}

/** Rounded down, so 99.999% never shows as 100. */
const percent = (encrypted: number, rows: number) => (rows === 0 ? 100 : Math.floor((encrypted * 10_000) / rows) / 100);

export async function coverageReport(db: Database, vault: Vault, columns: readonly SensitiveColumn[] = SENSITIVE_COLUMNS): Promise<CoverageReport> {
  await vault.refresh();
  const out: ColumnCoverage[] = [];
  const read = db.read as unknown as Kysely<any>;
  for (const column of columns) {
    let rows = 0;
    let encrypted = 0;
    const versions: Record<string, number> = {};
    const examples: string[] = [];
    let lastKey: string | null = null;
    for (;;) {
      let q = read.selectFrom(column.table).select([sql.ref(column.primaryKey).as("pk"), sql.ref(column.column).as("value")]).orderBy(column.primaryKey).limit(SCAN_BATCH_ROWS);
      if (lastKey !== null) q = q.where(column.primaryKey, ">", lastKey);
      const batch = (await q.execute()) as { pk: string; value: string | null }[];
      for (const row of batch) {
        rows++;
        let ok = false;
        if (typeof row.value === "string") {
          try {
            await vault.decryptFresh(column.purpose, row.value);
            ok = true;
          } catch {
            ok = false;
          }
        }
        if (ok) {
          encrypted++;
          const v = String(vault.versionOf(row.value!));
          versions[v] = (versions[v] ?? 0) + 1;
        } else if (examples.length < 10) examples.push(row.pk);
      }
      if (batch.length < SCAN_BATCH_ROWS) break;
      lastKey = batch[batch.length - 1]!.pk;
    }
    out.push({ table: column.table, column: column.column, purpose: column.purpose, rows, encrypted, not_encrypted: rows - encrypted, coverage_percent: percent(encrypted, rows), key_versions: versions, not_encrypted_examples: examples });
  }
  const documents: DocumentCoverage[] = [];
  for (const d of SEALED_DOCUMENTS) {
    const counts = (await read
      .selectFrom(d.table)
      .select([sql<number>`count(*)`.as("rows"), sql<number>`count(${sql.ref(d.column)})`.as("sealed")])
      .executeTakeFirstOrThrow()) as { rows: number | bigint | string; sealed: number | bigint | string };
    const rows = Number(counts.rows);
    const sealed = Number(counts.sealed);
    const examples = sealed < rows ? ((await read.selectFrom(d.table).select(sql.ref(d.primaryKey).as("pk")).where(d.column, "is", null).orderBy(d.primaryKey).limit(10).execute()) as { pk: string }[]).map((r) => r.pk) : [];
    documents.push({ table: d.table, column: d.column, purpose: d.purpose, rows, sealed, not_sealed: rows - sealed, not_sealed_examples: examples });
  }
  const rows = out.reduce((n, c) => n + c.rows, 0) + documents.reduce((n, d) => n + d.rows, 0);
  const encrypted = out.reduce((n, c) => n + c.encrypted, 0) + documents.reduce((n, d) => n + d.sealed, 0);
  return { columns: out, documents, overall: { rows, encrypted, not_encrypted: rows - encrypted, coverage_percent: percent(encrypted, rows) } };
}

export function formatCoverage(report: CoverageReport): string {
  const lines = report.columns.map(
    (c) => `${columnName(c).padEnd(32)} ${String(c.encrypted).padStart(8)} / ${String(c.rows).padEnd(8)} ${c.coverage_percent.toFixed(2).padStart(6)}%  versions ${JSON.stringify(c.key_versions)}${c.not_encrypted ? `  not encrypted e.g. ${c.not_encrypted_examples.join(", ")}` : ""}`,
  );
  for (const d of report.documents) {
    lines.push(`${columnName(d).padEnd(32)} ${String(d.sealed).padStart(8)} / ${String(d.rows).padEnd(8)} ${percent(d.sealed, d.rows).toFixed(2).padStart(6)}%  sealed documents${d.not_sealed ? `  not sealed e.g. ${d.not_sealed_examples.join(", ")}` : ""}`);
  }
  lines.push(`${"overall".padEnd(32)} ${String(report.overall.encrypted).padStart(8)} / ${String(report.overall.rows).padEnd(8)} ${report.overall.coverage_percent.toFixed(2).padStart(6)}%`);
  return lines.join("\n");
}
