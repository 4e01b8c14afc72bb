// Idempotency records (CONVENTIONS.md): the first response to a key is stored and replayed; the
// same key with another body is a conflict; a key still in flight is refused. The final record is
// written inside the request's unit of work, so it exists exactly when the change committed.
//
// In-flight markers: on SQLite (one process owns the file) they live in memory, which spares a
// disk commit per request; on PostgreSQL (several processes) they are rows, taken over when a
// crashed request left one behind for longer than the in-flight timeout.
import type { Kysely } from "kysely";
import type { Database } from "./database.ts";
import type { Tables } from "./schema.ts";

export type BeginResult =
  | { kind: "proceed" }
  | { kind: "replay"; status: number; body: string }
  | { kind: "reused" }
  | { kind: "in_use" };

export interface StoredResponse {
  readonly status: number;
  readonly body: string;
}

export class IdempotencyStore {
  private readonly inFlight = new Map<string, string>();

  constructor(private readonly db: Database, private readonly inFlightTimeoutMs: number, private readonly nowMs: () => number) {}

  async begin(principal: string, key: string, requestHash: string): Promise<BeginResult> {
    const memoryKey = `${principal}\u0000${key}`;
    const existing = await this.db.read
      .selectFrom("idempotency_keys")
      .select(["request_hash", "status", "response_status", "response_body", "locked_at"])
      .where("principal", "=", principal)
      .where("key", "=", key)
      .executeTakeFirst();
    if (existing && existing.status === "done") {
      if (existing.request_hash !== requestHash) return { kind: "reused" };
      return { kind: "replay", status: Number(existing.response_status), body: existing.response_body ?? "" };
    }
    if (this.db.dialect === "sqlite") {
      const holder = this.inFlight.get(memoryKey);
      if (holder !== undefined) return holder === requestHash ? { kind: "in_use" } : { kind: "reused" };
      this.inFlight.set(memoryKey, requestHash);
      return { kind: "proceed" };
    }
    const now = BigInt(this.nowMs()) * 1000n;
    const inserted = await this.db.kysely
      .insertInto("idempotency_keys")
      .values({ principal, key, request_hash: requestHash, status: "in_flight", response_status: null, response_body: null, created_at: now, locked_at: now })
      .onConflict((oc) => oc.columns(["principal", "key"]).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { kind: "proceed" };
    const row = await this.db.kysely
      .selectFrom("idempotency_keys")
      .selectAll()
      .where("principal", "=", principal)
      .where("key", "=", key)
      .executeTakeFirst();
    if (!row) return this.begin(principal, key, requestHash);
    if (row.request_hash !== requestHash) return { kind: "reused" };
    if (row.status === "done") return { kind: "replay", status: Number(row.response_status), body: row.response_body ?? "" };
    const staleBefore = now - BigInt(this.inFlightTimeoutMs) * 1000n;
    if (BigInt(row.locked_at) < staleBefore) {
      // A request that crashed left this marker: take it over, unless another process just did.
      const taken = await this.db.kysely
        .updateTable("idempotency_keys")
        .set({ locked_at: now })
        .where("principal", "=", principal)
        .where("key", "=", key)
        .where("status", "=", "in_flight")
        .where("locked_at", "=", row.locked_at)
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 1) return { kind: "proceed" };
    }
    return { kind: "in_use" };
  }

  /** Stores the final response; call inside the unit of work that made the change. */
  async complete(tx: Kysely<Tables>, principal: string, key: string, requestHash: string, response: StoredResponse): Promise<void> {
    const now = BigInt(this.nowMs()) * 1000n;
    await tx
      .insertInto("idempotency_keys")
      .values({
        principal, key, request_hash: requestHash, status: "done",
        response_status: response.status, response_body: response.body, created_at: now, locked_at: now,
      })
      .onConflict((oc) =>
        oc.columns(["principal", "key"]).doUpdateSet({ status: "done", response_status: response.status, response_body: response.body }),
      )
      .execute();
  }

  /** Forgets the in-flight marker: after completion, or after a failure the client may retry. */
  async release(principal: string, key: string, completed: boolean): Promise<void> {
    this.inFlight.delete(`${principal}\u0000${key}`);
    if (!completed && this.db.dialect === "postgres") {
      await this.db.kysely
        .deleteFrom("idempotency_keys")
        .where("principal", "=", principal)
        .where("key", "=", key)
        .where("status", "=", "in_flight")
        .execute();
    }
  }

  /** Deletes records older than the retention period. */
  async prune(retentionHours: number): Promise<number> {
    const cutoff = BigInt(this.nowMs() - retentionHours * 3_600_000) * 1000n;
    const result = await this.db.kysely.deleteFrom("idempotency_keys").where("created_at", "<", cutoff).where("status", "=", "done").executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
