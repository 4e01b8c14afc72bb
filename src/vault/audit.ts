// The reveal audit log: who (API key id) saw what (object and field), when and why. Append-only
// (database triggers refuse updates and deletes) and hash-chained: each row stores
// sha256(previous hash ‖ canonical row), and positions count 1, 2, 3…, so an edited, inserted or
// deleted row breaks the chain at that position. Removing the newest rows is visible only
// against a head kept elsewhere: `tally audit verify` prints it for that.
import { createHash } from "node:crypto";
import type { Database } from "../db/database.ts";
import { ulid } from "../kernel/ids.ts";

export const GENESIS_HASH = "0".repeat(64);
const APPEND_ATTEMPTS_MAX = 20;
const VERIFY_BATCH_ROWS = 1000;

export interface AuditRecord {
  readonly actor: string;
  readonly action: "reveal";
  readonly objectType: string;
  readonly objectId: string;
  readonly field: string;
  readonly reason: string;
}

export interface AuditEntry extends AuditRecord {
  readonly position: bigint;
  readonly id: string;
  readonly at: bigint;
  readonly prevHash: string;
  readonly hash: string;
}

export function canonicalEntry(e: Omit<AuditEntry, "hash" | "prevHash">): string {
  return JSON.stringify([e.position.toString(), e.id, e.at.toString(), e.actor, e.action, e.objectType, e.objectId, e.field, e.reason]);
}

export function entryHash(prevHash: string, e: Omit<AuditEntry, "hash" | "prevHash">): string {
  return createHash("sha256").update(prevHash).update("\n").update(canonicalEntry(e)).digest("hex");
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly rows: number;
  /** The newest row's position and hash: keep it elsewhere to detect removal of the newest rows. */
  readonly head: { position: string; hash: string } | null;
  readonly firstBroken?: { position: string; problem: string };
}

export class AuditLog {
  constructor(private readonly db: Database, private readonly nowUs: () => bigint) {}

  /** Appends one entry after the current head (retrying when another process appended first). */
  async append(record: AuditRecord): Promise<AuditEntry> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          const head = await tx.selectFrom("vault_audit_log").select(["position", "hash"]).orderBy("position", "desc").limit(1).executeTakeFirst();
          const base = { ...record, position: head ? BigInt(head.position) + 1n : 1n, id: `aud_${ulid()}`, at: this.nowUs() };
          const prevHash = head?.hash ?? GENESIS_HASH;
          const entry: AuditEntry = { ...base, prevHash, hash: entryHash(prevHash, base) };
          await tx
            .insertInto("vault_audit_log")
            .values({
              position: entry.position,
              id: entry.id,
              at: entry.at,
              actor: entry.actor,
              action: entry.action,
              object_type: entry.objectType,
              object_id: entry.objectId,
              field: entry.field,
              reason: entry.reason,
              prev_hash: entry.prevHash,
              hash: entry.hash,
            })
            .execute();
          return entry;
        });
      } catch (error) {
        // A unique violation on position or prev_hash: another appender took this place.
        if (attempt >= APPEND_ATTEMPTS_MAX || !/unique|duplicate/i.test(String((error as Error).message))) throw error;
      }
    }
  }

  async list(options: { objectType?: string; objectId?: string; limit: number }): Promise<AuditEntry[]> {
    let q = this.db.read.selectFrom("vault_audit_log").selectAll().orderBy("position", "desc").limit(options.limit);
    if (options.objectType) q = q.where("object_type", "=", options.objectType);
    if (options.objectId) q = q.where("object_id", "=", options.objectId);
    return (await q.execute()).map(toEntry);
  }

  /** Walks the chain from the first row; reports the first row that does not follow from its predecessor. */
  async verify(): Promise<VerifyResult> {
    let prevHash = GENESIS_HASH;
    let expected = 1n;
    let rows = 0;
    let head: VerifyResult["head"] = null;
    for (;;) {
      const batch = await this.db.kysely.selectFrom("vault_audit_log").selectAll().where("position", ">=", expected).orderBy("position").limit(VERIFY_BATCH_ROWS).execute();
      if (batch.length === 0) return { ok: true, rows, head };
      for (const row of batch) {
        const e = toEntry(row);
        const broken = (problem: string): VerifyResult => ({ ok: false, rows, head, firstBroken: { position: e.position.toString(), problem } });
        if (e.position !== expected) return { ok: false, rows, head, firstBroken: { position: expected.toString(), problem: `row ${expected} is missing (next is ${e.position})` } };
        if (e.prevHash !== prevHash) return broken("its previous hash does not match the row before it (a row before it was changed, removed or inserted)");
        if (entryHash(prevHash, e) !== e.hash) return broken("its hash does not match its contents (the row was edited)");
        prevHash = e.hash;
        expected = e.position + 1n;
        rows++;
        head = { position: e.position.toString(), hash: e.hash };
      }
    }
  }
}

function toEntry(r: { position: bigint | number; id: string; at: bigint | number; actor: string; action: string; object_type: string; object_id: string; field: string; reason: string; prev_hash: string; hash: string }): AuditEntry {
  return {
    position: BigInt(r.position),
    id: r.id,
    at: BigInt(r.at),
    actor: r.actor,
    action: r.action as "reveal",
    objectType: r.object_type,
    objectId: r.object_id,
    field: r.field,
    reason: r.reason,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
