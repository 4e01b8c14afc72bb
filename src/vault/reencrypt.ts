// Re-encryption after a key rotation: walks each sensitive column in primary-key order, in
// bounded batches, rewriting values not yet under the purpose's newest key version. Each batch
// commits its rows and its checkpoint (the last primary key done) in one transaction, so a job
// killed midway resumes after the last committed batch. A row is rewritten only if it still
// holds the value read (compare and set), so a concurrent write is never overwritten; old key
// versions stay readable throughout, so reads never fail.
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/database.ts";
import { columnName, SENSITIVE_COLUMNS, type SensitiveColumn } from "./registry.ts";
import type { Vault } from "./vault.ts";

export interface ReencryptBatch {
  readonly column: string;
  readonly targetVersion: number;
  readonly rowsRead: number;
  readonly rowsChanged: number;
  readonly lastKey: string | null;
  readonly finished: boolean;
}

export interface ReencryptOptions {
  /** Rows read per batch (one transaction each). */
  readonly batchRows: number;
  /** Stop after this many batches (a background tick); absent = until every column is done. */
  readonly batchesMax?: number;
  /** Pause between batches, so the job never starves the API of the database. */
  readonly pauseMs?: number;
  readonly onBatch?: (batch: ReencryptBatch) => void;
}

export class Reencryptor {
  constructor(
    private readonly db: Database,
    private readonly vault: Vault,
    private readonly nowUs: () => bigint,
    private readonly columns: readonly SensitiveColumn[] = SENSITIVE_COLUMNS,
  ) {}

  /** Runs batches until every column is on its newest key (or batchesMax); returns the batches run. */
  async run(options: ReencryptOptions): Promise<number> {
    await this.vault.refresh();
    let batches = 0;
    for (const column of this.columns) {
      for (;;) {
        if (options.batchesMax !== undefined && batches >= options.batchesMax) return batches;
        const batch = await this.batch(column, options.batchRows);
        if (batch === null) break;
        batches++;
        options.onBatch?.(batch);
        if (batch.finished) break;
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    }
    return batches;
  }

  /** One batch of one column; null when the column is already done for its newest version. */
  async batch(column: SensitiveColumn, batchRows: number): Promise<ReencryptBatch | null> {
    const target = this.vault.currentVersion(column.purpose);
    if (target === undefined) return null;
    const name = columnName(column);
    const progress = await this.db.kysely.selectFrom("vault_reencrypt_progress").selectAll().where("name", "=", name).executeTakeFirst();
    const fresh = !progress || Number(progress.target_version) !== target;
    if (!fresh && progress.finished_at !== null) return null;
    const lastKey = fresh ? null : progress.last_key;
    const db = this.db.kysely as unknown as Kysely<any>;
    let q = db.selectFrom(column.table).select([sql.ref(column.primaryKey).as("pk"), sql.ref(column.column).as("value")]).orderBy(column.primaryKey).limit(batchRows);
    if (lastKey !== null) q = q.where(column.primaryKey, ">", lastKey);
    const rows = (await q.execute()) as { pk: string; value: string | null }[];
    const changes: { pk: string; from: string; to: string }[] = [];
    for (const row of rows) {
      if (row.value === null) continue;
      const version = this.vault.versionOf(row.value);
      // Not a ciphertext at all: the coverage report counts it; re-encryption never guesses.
      if (version === null || version === target) continue;
      const plain = await this.vault.decryptFresh(column.purpose, row.value);
      changes.push({ pk: row.pk, from: row.value, to: this.vault.encrypt(column.purpose, plain) });
    }
    const finished = rows.length < batchRows;
    const newLastKey = rows.length > 0 ? rows[rows.length - 1]!.pk : lastKey;
    const now = this.nowUs();
    let changed = 0;
    await this.db.transaction(async (tx) => {
      const t = tx as unknown as Kysely<any>;
      for (const c of changes) {
        const r = await t.updateTable(column.table).set({ [column.column]: c.to }).where(column.primaryKey, "=", c.pk).where(column.column, "=", c.from).executeTakeFirst();
        changed += Number(r.numUpdatedRows);
      }
      const values = {
        target_version: target,
        last_key: newLastKey,
        rows_changed: (fresh ? 0n : BigInt(progress!.rows_changed)) + BigInt(changed),
        started_at: fresh ? now : BigInt(progress!.started_at),
        updated_at: now,
        finished_at: finished ? now : null,
      };
      await tx
        .insertInto("vault_reencrypt_progress")
        .values({ name, ...values })
        .onConflict((oc) => oc.column("name").doUpdateSet(values))
        .execute();
    });
    return { column: name, targetVersion: target, rowsRead: rows.length, rowsChanged: changed, lastKey: newLastKey, finished };
  }
}
