// Success rates from recorded channel attempts (PAYMENTS.md "Success rates"): only settled
// attempts count; effective success rate = succeeded / (attempts − user-caused failures),
// unrounded, null when nothing is left to divide by. Pay-in and payout separately.
import { sql } from "kysely";
import type { Database } from "../db/database.ts";

export type GroupBy = "channel" | "method" | "day";

export interface RateRow {
  readonly key: string;
  readonly attempts: number;
  readonly succeeded: number;
  readonly user_caused_failures: number;
  readonly system_failures: number;
  readonly effective_success_rate: number | null;
}

const DAY_US = 86_400_000_000n;

export function effectiveRate(succeeded: number, attempts: number, userCaused: number): number | null {
  const denominator = attempts - userCaused;
  return denominator === 0 ? null : succeeded / denominator;
}

export async function successRates(db: Database, fromUs: bigint, toUs: bigint, groupBy: GroupBy): Promise<{ pay_in: RateRow[]; payout: RateRow[] }> {
  const key = groupBy === "day" ? sql<string>`created_at / ${DAY_US}` : sql<string>`${sql.ref(groupBy)}`;
  const rows = await db.read
    .selectFrom("channel_attempts")
    .select([
      "flow",
      key.as("k"),
      sql<number>`count(*)`.as("attempts"),
      sql<number>`sum(case when status = 'succeeded' then 1 else 0 end)`.as("succeeded"),
      sql<number>`sum(case when status = 'failed' and failure_user_caused = 1 then 1 else 0 end)`.as("user_caused"),
      sql<number>`sum(case when status = 'failed' and (failure_user_caused is null or failure_user_caused = 0) then 1 else 0 end)`.as("system"),
    ])
    .where("status", "in", ["succeeded", "failed"])
    .where("created_at", ">=", fromUs)
    .where("created_at", "<", toUs)
    .groupBy(["flow", key])
    .orderBy(key)
    .execute();
  const out = { pay_in: [] as RateRow[], payout: [] as RateRow[] };
  for (const r of rows) {
    const attempts = Number(r.attempts);
    const succeeded = Number(r.succeeded);
    const userCaused = Number(r.user_caused);
    const k = groupBy === "day" ? new Date(Number(BigInt(r.k as unknown as bigint | number | string) * 86_400_000n)).toISOString().slice(0, 10) : String(r.k);
    out[r.flow === "payout" ? "payout" : "pay_in"].push({
      key: k,
      attempts,
      succeeded,
      user_caused_failures: userCaused,
      system_failures: Number(r.system),
      effective_success_rate: effectiveRate(succeeded, attempts, userCaused),
    });
  }
  return out;
}
