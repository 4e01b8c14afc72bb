// Webhooks to merchants from the outbox. A fan-out step turns each new outbox event into one
// delivery per subscribed endpoint (with its cursor, in one unit of work, so no event is skipped
// or doubled); a delivery step sends due deliveries with bounded concurrency and a timeout, off
// the payment path, so a slow or failing merchant never slows payments. Failures are retried
// with exponential backoff a bounded number of times; every attempt is recorded; any event can
// be redelivered by hand.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Database } from "../db/database.ts";
import type { WebhookDeliveriesTable, WebhookEndpointsTable } from "../db/schema.ts";
import type { Clock } from "../kernel/clock.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import type { PostingEngine } from "../ledger/engine.ts";
import { commitUnit, type Extra, type Tx } from "../payments/unit-of-work.ts";
import { signatureHeader } from "./signing.ts";

/** Outbox events that are the ledger's own bookkeeping, not merchant-facing. */
const INTERNAL_EVENT_TYPES = new Set(["ledger.batch_committed"]);
export const WEBHOOK_EVENT_TYPES = [
  "payment.requires_capture",
  "payment.succeeded",
  "payment.failed",
  "payment.canceled",
  "payment.expired",
  "payment.late_success",
  "refund.succeeded",
  "refund.failed",
  "payout.in_transit",
  "payout.paid",
  "payout.failed",
  "payout.returned",
] as const;
const CURSOR = "webhooks.fanout";
/** Events fanned out per run. */
const FANOUT_BATCH_MAX = 500;
const RETRY_DELAY_MS_MAX = 3_600_000;
const ERROR_TEXT_MAX = 500;
const ENDPOINTS_PER_MERCHANT_MAX = 16;

export interface WebhookEndpoint {
  readonly id: string;
  readonly merchantId: string | null;
  readonly url: string;
  readonly events: readonly string[];
  readonly createdAt: bigint;
}

export interface EventRecord {
  readonly seq: bigint;
  readonly id: string;
  readonly merchantId: string | null;
  readonly type: string;
  readonly createdAt: bigint;
  /** JSON text of the event's data ({"object": ...}). */
  readonly data: string;
}

export interface WebhookDeps {
  readonly db: Database;
  readonly engine: PostingEngine;
  readonly clock: Clock;
  readonly limits: Limits;
  readonly logger: Logger;
}

export function eventBody(e: EventRecord): string {
  return `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"created_at":${JSON.stringify(formatTimestampUs(e.createdAt))},"data":${e.data}}`;
}

function endpointFromRow(r: WebhookEndpointsTable): WebhookEndpoint {
  return { id: r.id, merchantId: r.merchant_id, url: r.url, events: JSON.parse(r.events) as string[], createdAt: BigInt(r.created_at) };
}

export class WebhookService {
  private readonly sending = new Set<string>();
  private endpointCache: { endpoints: WebhookEndpoint[]; secrets: Map<string, string> } | null = null;

  constructor(private readonly deps: WebhookDeps) {}

  async createEndpoint(merchantId: string | null, url: string, events: readonly string[], extra?: Extra<{ endpoint: WebhookEndpoint; secret: string }>) {
    const count = await this.deps.db.read.selectFrom("webhook_endpoints").select((eb) => eb.fn.countAll<number>().as("n")).where("merchant_id", merchantId === null ? "is" : "=", merchantId).where("disabled_at", "is", null).executeTakeFirst();
    if (Number(count?.n ?? 0) >= ENDPOINTS_PER_MERCHANT_MAX) throw new ApiError("validation_failed", `at most ${ENDPOINTS_PER_MERCHANT_MAX} webhook endpoints per merchant`);
    const endpoint: WebhookEndpoint = { id: `we_${ulid()}`, merchantId, url, events: [...events], createdAt: this.deps.clock.nowUs() };
    const secret = `whsec_${randomBytes(24).toString("base64url")}`;
    const row: WebhookEndpointsTable = { id: endpoint.id, merchant_id: merchantId, url, secret, events: JSON.stringify(events), created_at: endpoint.createdAt, disabled_at: null };
    const value = await commitUnit(this.deps.engine, [], () => ({ value: { endpoint, secret }, write: (tx) => tx.insertInto("webhook_endpoints").values(row).execute().then(() => undefined) }), extra);
    this.endpointCache = null;
    return value;
  }

  async listEndpoints(merchantId: string | null): Promise<WebhookEndpoint[]> {
    let q = this.deps.db.read.selectFrom("webhook_endpoints").selectAll().where("disabled_at", "is", null);
    if (merchantId !== null) q = q.where("merchant_id", "=", merchantId);
    return (await q.orderBy("created_at").execute()).map(endpointFromRow);
  }

  private async endpoints() {
    if (!this.endpointCache) {
      const rows = await this.deps.db.read.selectFrom("webhook_endpoints").selectAll().where("disabled_at", "is", null).execute();
      this.endpointCache = { endpoints: rows.map(endpointFromRow), secrets: new Map(rows.map((r) => [r.id, r.secret])) };
    }
    return this.endpointCache;
  }

  async event(id: string, merchantId: string | null): Promise<EventRecord> {
    const row = await this.deps.db.read.selectFrom("outbox_events").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row || INTERNAL_EVENT_TYPES.has(row.type) || (merchantId !== null && row.merchant_id !== merchantId)) throw new ApiError("not_found", `no event ${id}`, "id");
    return { seq: BigInt(row.seq), id: row.id, merchantId: row.merchant_id, type: row.type, createdAt: BigInt(row.created_at), data: row.data };
  }

  async deliveries(eventId: string, merchantId: string | null): Promise<WebhookDeliveriesTable[]> {
    await this.event(eventId, merchantId);
    return this.deps.db.read.selectFrom("webhook_deliveries").selectAll().where("event_id", "=", eventId).orderBy("created_at").orderBy("id").execute();
  }

  /** Queues a fresh delivery of the event to every endpoint that subscribes to it. */
  async redeliver(eventId: string, merchantId: string | null, extra?: Extra<number>): Promise<number> {
    const event = await this.event(eventId, merchantId);
    const targets = this.targets(event, (await this.endpoints()).endpoints);
    const now = this.deps.clock.nowUs();
    return commitUnit(this.deps.engine, [], () => ({ value: targets.length, write: (tx) => this.insertDeliveries(tx, event.id, targets, 1, now) }), extra);
  }

  private targets(event: Pick<EventRecord, "merchantId" | "type">, endpoints: readonly WebhookEndpoint[]): WebhookEndpoint[] {
    return endpoints.filter((e) => (e.merchantId === null || e.merchantId === event.merchantId) && (e.events.includes("*") || e.events.includes(event.type)));
  }

  private async insertDeliveries(tx: Tx, eventId: string, endpoints: readonly WebhookEndpoint[], attempt: number, dueUs: bigint, createdUs = dueUs): Promise<void> {
    for (const endpoint of endpoints) {
      await tx
        .insertInto("webhook_deliveries")
        .values({ id: `whd_${ulid()}`, event_id: eventId, endpoint_id: endpoint.id, attempt, status: "pending", response_status: null, error: null, created_at: createdUs, next_attempt_at: dueUs, finished_at: null })
        .execute();
    }
  }

  /** Turns new outbox events into deliveries; returns how many events it read. */
  async fanOut(): Promise<number> {
    const cursor = await this.deps.db.read.selectFrom("job_cursors").select("position").where("name", "=", CURSOR).executeTakeFirst();
    const from = cursor ? BigInt(cursor.position) : 0n;
    // Not the events' data: a delivery reads its event when it is sent. Under load most rows
    // are the ledger's internal batch events, skipped below, and their data was most of a read.
    const rows = await this.deps.db.read
      .selectFrom("outbox_events")
      .select(["seq", "id", "merchant_id", "type"])
      .where("seq", ">", from)
      .orderBy("seq")
      .limit(FANOUT_BATCH_MAX)
      .execute();
    if (rows.length === 0) return 0;
    const { endpoints } = await this.endpoints();
    const now = this.deps.clock.nowUs();
    const last = BigInt(rows.at(-1)!.seq);
    await commitUnit(this.deps.engine, [], () => ({
      value: null,
      write: async (tx) => {
        for (const row of rows) {
          if (INTERNAL_EVENT_TYPES.has(row.type)) continue;
          await this.insertDeliveries(tx, row.id, this.targets({ merchantId: row.merchant_id, type: row.type }, endpoints), 1, now);
        }
        await tx
          .insertInto("job_cursors")
          .values({ name: CURSOR, position: last })
          .onConflict((oc) => oc.column("name").doUpdateSet({ position: last }))
          .execute();
      },
    }));
    return rows.length;
  }

  /** Starts sending due deliveries (without waiting for them); returns how many it started. */
  async deliverDue(): Promise<number> {
    const room = this.deps.limits.webhookConcurrencyMax - this.sending.size;
    if (room <= 0) return 0;
    const due = await this.deps.db.read
      .selectFrom("webhook_deliveries")
      .selectAll()
      .where("status", "=", "pending")
      .where("next_attempt_at", "<=", this.deps.clock.nowUs())
      .orderBy("next_attempt_at")
      .limit(room + this.sending.size)
      .execute();
    let started = 0;
    for (const delivery of due) {
      if (this.sending.has(delivery.id) || started >= room) continue;
      this.sending.add(delivery.id);
      started++;
      void this.send(delivery)
        .catch((err) => this.deps.logger.warn({ err, delivery: delivery.id }, "webhook delivery could not be recorded; it will be sent again"))
        .finally(() => this.sending.delete(delivery.id));
    }
    return started;
  }

  /** Resolves when no delivery is being sent (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.sending.size > 0) await new Promise((r) => setTimeout(r, 5));
  }

  private async send(delivery: WebhookDeliveriesTable): Promise<void> {
    const event = await this.event(delivery.event_id, null);
    const { endpoints, secrets } = await this.endpoints();
    const endpoint = endpoints.find((e) => e.id === delivery.endpoint_id);
    const secret = secrets.get(delivery.endpoint_id);
    let status: number | null = null;
    let error: string | null = null;
    if (!endpoint || !secret) {
      error = "the endpoint was removed";
    } else {
      const body = eventBody(event);
      try {
        const response = await fetch(endpoint.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "Tally-Webhooks/1",
            "tally-event-id": event.id,
            "tally-signature": signatureHeader(secret, Math.floor(this.deps.clock.nowMs() / 1000), body),
          },
          body,
          redirect: "manual",
          signal: AbortSignal.timeout(this.deps.limits.webhookTimeoutMs),
        });
        status = response.status;
        await response.body?.cancel().catch(() => {});
        if (status < 200 || status > 299) error = `the endpoint answered ${status}`;
      } catch (e) {
        error = (e as Error).name === "TimeoutError" ? `no answer within ${this.deps.limits.webhookTimeoutMs} ms` : `could not connect: ${(e as Error).message}`;
      }
    }
    const delivered = error === null;
    const now = this.deps.clock.nowUs();
    // Integer columns come back as bigint on SQLite and number on PostgreSQL.
    const attempt = Number(delivery.attempt);
    const retry = !delivered && endpoint !== undefined && attempt < this.deps.limits.webhookAttemptsMax;
    const delayMs = Math.min(this.deps.limits.webhookRetryBaseMs * 2 ** (attempt - 1), RETRY_DELAY_MS_MAX);
    await commitUnit(this.deps.engine, [], () => ({
      value: null,
      write: async (tx) => {
        await tx
          .updateTable("webhook_deliveries")
          .set({ status: delivered ? "delivered" : "failed", response_status: status, error: error?.slice(0, ERROR_TEXT_MAX) ?? null, finished_at: now, next_attempt_at: null })
          .where("id", "=", delivery.id)
          .execute();
        if (retry) await this.insertDeliveries(tx, delivery.event_id, [endpoint], attempt + 1, now + BigInt(delayMs) * 1000n, now);
      },
    }));
  }
}

export function deliveryJson(d: WebhookDeliveriesTable) {
  return {
    id: d.id,
    event_id: d.event_id,
    endpoint_id: d.endpoint_id,
    attempt: Number(d.attempt),
    status: d.status,
    response_status: d.response_status === null ? null : Number(d.response_status),
    error: d.error,
    created_at: formatTimestampUs(BigInt(d.created_at)),
    finished_at: d.finished_at === null ? null : formatTimestampUs(BigInt(d.finished_at)),
  };
}
