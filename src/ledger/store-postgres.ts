// The ledger store on PostgreSQL. Several Tally processes may share one database, so each batch
// first takes the ledger's row lock (ledger_state, FOR UPDATE): one writer at a time per ledger,
// in commit order, which makes timestamps strictly increasing across processes and rules out
// lost updates and deadlocks (nobody holds an account lock while waiting for another). Reads and
// writes are set-based (= ANY / unnest) so a batch costs a handful of round trips, not one per
// transfer. docs/ledger-engine.md explains the choice against ordered row locking.
import type pg from "pg";
import type { Database } from "../db/database.ts";
import { assert } from "../kernel/assert.ts";
import type { Account, Transfer } from "./model.ts";
import { ACCOUNT_COLUMNS, TRANSFER_COLUMNS, accountFromRow, accountValues, transferFromRow, transferValues } from "./rows.ts";
import { DuplicateIdError, VersionConflictError, type BatchSession, type BatchWrites, type LedgerStore } from "./store.ts";

const TRANSFER_TYPES = [
  "bigint", "text", "text", "text", "text", "bigint", "text", "integer", "integer", "text", "integer",
  "bigint", "text", "bigint", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint",
  "bigint", "bigint", "bigint", "bigint", "bigint",
];
const ACCOUNT_TYPES = [
  "text", "text", "text", "integer", "text", "integer", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint",
  "bigint", "bigint",
];

function unnestInsert(table: string, columns: readonly string[], types: readonly string[]): string {
  const args = types.map((t, i) => `$${i + 1}::${t}[]`).join(", ");
  return `insert into ${table} (${columns.join(", ")}) select * from unnest(${args})`;
}

const INSERT_TRANSFERS = unnestInsert("ledger_transfers", TRANSFER_COLUMNS, TRANSFER_TYPES);
const INSERT_ACCOUNTS = unnestInsert("ledger_accounts", ACCOUNT_COLUMNS, ACCOUNT_TYPES);

/** Column-major arrays for unnest: one array per column. */
function columns(rows: unknown[][], width: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: width }, () => new Array(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < width; c++) {
      const v = row[c];
      out[c]![r] = typeof v === "bigint" ? v.toString() : v;
    }
  }
  return out;
}

async function query(client: pg.PoolClient, text: string, params: unknown[] = []): Promise<any[]> {
  return (await client.query(text, params)).rows;
}

export class PostgresLedgerStore implements LedgerStore {
  readonly pipelined = false;
  private readonly pool: pg.Pool;

  constructor(db: Database) {
    assert(db.pool, "PostgreSQL store needs the pool");
    this.pool = db.pool;
  }

  async close(): Promise<void> {}

  async begin(): Promise<BatchSession> {
    const client = await this.pool.connect();
    let state: any;
    try {
      await client.query("begin");
      [state] = await query(client, "select last_ts, version from ledger_state where id = 1 for update");
    } catch (error) {
      await client.query("rollback").catch(() => {});
      client.release(error as Error);
      throw error;
    }
    let open = true;
    const end = async (error?: Error) => {
      if (!open) return;
      open = false;
      client.release(error);
    };
    const loadTransfers = async (ids: Iterable<string>) => {
      const list = [...new Set(ids)];
      const out = new Map<string, Transfer>();
      if (list.length === 0) return out;
      for (const r of await query(client, "select * from ledger_transfers where id = any($1::text[])", [list])) {
        out.set(r.id, transferFromRow(r));
      }
      return out;
    };
    return {
      lastTimestamp: BigInt(state.last_ts),
      version: BigInt(state.version),
      // Optimistic unless asked to verify: the unique index refuses a duplicate at commit.
      findExisting: async (ids, verify) => (verify ? loadTransfers(ids) : new Map()),
      loadTransfers,
      loadAccounts: async (ids) => {
        const list = [...new Set(ids)];
        const out = new Map<string, Account>();
        if (list.length === 0) return out;
        for (const r of await query(client, "select * from ledger_accounts where id = any($1::text[])", [list])) {
          out.set(r.id, accountFromRow(r));
        }
        return out;
      },
      dueHolds: async (nowUs, limit) =>
        (
          await query(
            client,
            "select * from ledger_transfers where status = 'pending' and expires_at <= $1 order by expires_at limit $2",
            [nowUs.toString(), limit],
          )
        ).map(transferFromRow),
      commit: async (w: BatchWrites) => {
        try {
          if (BigInt(state.version) !== w.expectVersion) throw new VersionConflictError("the ledger changed under the batch");
          await writeBatch(client, w);
          await client.query("commit");
          await end();
        } catch (error) {
          await client.query("rollback").catch(() => {});
          const e = error as { code?: string; constraint?: string };
          if (e.code === "23505" && e.constraint === "ledger_transfers_id_key") {
            await end();
            throw new DuplicateIdError("a transfer id of the batch exists");
          }
          await end(error instanceof VersionConflictError ? undefined : (error as Error));
          throw error;
        }
      },
      abort: async () => {
        await client.query("rollback").catch(() => {});
        await end();
      },
    };
  }
}

async function writeBatch(client: pg.PoolClient, w: BatchWrites): Promise<void> {
  if (w.newAccounts.length > 0) {
    await query(client, INSERT_ACCOUNTS, columns(w.newAccounts.map(accountValues), ACCOUNT_COLUMNS.length));
  }
  if (w.transfers.length > 0) {
    await query(client, INSERT_TRANSFERS, columns(w.transfers.map(transferValues), TRANSFER_COLUMNS.length));
  }
  if (w.resolvedHolds.length > 0) {
    await query(
      client,
      `update ledger_transfers t set status = v.status, resolved_at = v.resolved_at
         from unnest($1::text[], $2::text[], $3::bigint[]) as v(id, status, resolved_at) where t.id = v.id`,
      columns(w.resolvedHolds.map((h) => [h.id, h.status, h.resolvedAt]), 3),
    );
  }
  if (w.balances.length > 0) {
    const rows = w.balances.map((a) => [a.id, a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted, a.lastTs, a.transferCount]);
    await query(
      client,
      `update ledger_accounts a set debits_pending = v.dp, debits_posted = v.dpo,
              credits_pending = v.cp, credits_posted = v.cpo, last_ts = v.last_ts, transfer_count = v.n
         from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
              as v(id, dp, dpo, cp, cpo, last_ts, n)
        where a.id = v.id`,
      columns(rows, 7),
    );
  }
  if (w.checkpoints.length > 0) {
    await query(
      client,
      "insert into ledger_checkpoints (account_id, ts) select * from unnest($1::text[], $2::bigint[])",
      columns(w.checkpoints.map((c) => [c.accountId, c.ts]), 2),
    );
  }
  if (w.version !== w.expectVersion) {
    await query(client, "update ledger_state set last_ts = $1, version = $2 where id = 1", [w.lastTs.toString(), w.version.toString()]);
  }
  for (const [id, type, createdAt, data] of w.events) {
    await query(client, "insert into outbox_events (id, type, created_at, data) values ($1, $2, $3, $4)", [id, type, createdAt.toString(), data]);
  }
  for (const s of w.statements) {
    await client.query(s.sql, s.parameters.map((p) => (typeof p === "bigint" ? p.toString() : p)) as unknown[]);
  }
}
