// The transactional outbox: events are appended in the same transaction as the change they
// describe, so an event exists exactly when its change committed. Publishers read them later.
import { ulid } from "../kernel/ids.ts";
import type { Kysely } from "kysely";
import type { Tables } from "./schema.ts";

export interface OutboxEvent {
  readonly type: string;
  readonly data: unknown;
}

export async function appendEvents(tx: Kysely<Tables>, events: readonly OutboxEvent[], nowUs: bigint): Promise<void> {
  if (events.length === 0) return;
  await tx
    .insertInto("outbox_events")
    .values(
      events.map((e) => ({
        id: `evt_${ulid()}`,
        type: e.type,
        created_at: nowUs,
        data: JSON.stringify(e.data, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
      })) as any,
    )
    .execute();
}
