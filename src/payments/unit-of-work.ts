// The one door for payment writes: a state change, the ledger transfers it posts, its outbox
// events and the caller's idempotency record commit in one engine batch (one transaction).
// `decide` sees the transfers' outcomes and either accepts (its writes run) or refuses with an
// ApiError (nothing is written, and the transfers were refused too, or are rolled back with the
// batch if `decide` throws).
import type { Kysely } from "kysely";
import type { Tables } from "../db/schema.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import type { PostingEngine } from "../ledger/engine.ts";
import type { TransferInput, TransferOutcome } from "../ledger/model.ts";
import { stringifyJson } from "../http/json.ts";

export type Tx = Kysely<Tables>;

export interface Accepted<T> {
  readonly value: T;
  write(tx: Tx): Promise<void>;
}

export type Decide<T> = (outcomes: readonly TransferOutcome[]) => Accepted<T> | ApiError;
/** Extra work of the caller in the same transaction (the idempotency record of the request). */
export type Extra<T> = (tx: Tx, value: T) => Promise<void>;

export async function commitUnit<T>(engine: PostingEngine, transfers: readonly TransferInput[], decide: Decide<T>, extra?: Extra<T>): Promise<T> {
  let decision: Accepted<T> | ApiError | undefined;
  const hook = async (tx: Tx, outcomes: readonly TransferOutcome[]) => {
    // The engine may run the hook more than once (a batch redone); the run that commits counts.
    decision = decide(outcomes);
    if (decision instanceof ApiError) return;
    await decision.write(tx);
    if (extra) await extra(tx, decision.value);
  };
  if (transfers.length === 0) await engine.submitWrites(hook);
  else await engine.submitTransfers(null, transfers, hook);
  if (decision === undefined) throw new Error("the unit of work's hook did not run");
  if (decision instanceof ApiError) throw decision;
  return decision.value;
}

/** True when every transfer was created now or already existed (a redone step). */
export function allApplied(outcomes: readonly TransferOutcome[]): boolean {
  return outcomes.every((o) => o.result === "created" || o.result === "exists");
}

/** The first refused transfer's result code, for the error. */
export function firstRefusal(outcomes: readonly TransferOutcome[]): string | null {
  return outcomes.find((o) => o.result !== "created" && o.result !== "exists")?.result ?? null;
}

export async function appendEvent(tx: Tx, merchantId: string | null, type: string, createdAtUs: bigint, object: unknown): Promise<string> {
  const id = `evt_${ulid()}`;
  await tx.insertInto("outbox_events").values({ id, merchant_id: merchantId, type, created_at: createdAtUs, data: stringifyJson({ object }) } as never).execute();
  return id;
}
