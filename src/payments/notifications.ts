// The notification inbox: what a channel sends us is stored exactly as received before anything
// else, then verified, de-duplicated and applied. A notification that fails verification
// changes nothing and stays in the inbox for inspection; one that could not be applied (a bug,
// the database down) stays `failed` and can be replayed. Answers go back in the channel's protocol.
// Bodies are sealed by the vault as received: a notification can name the payer (Alipay's
// buyer_logon_id, UnionPay's masked card number), and personal data is encrypted at rest.
import type { Logger } from "pino";
import type { Channel, NotifyAck, RawNotification } from "../channels/channel.ts";
import { ApiError } from "../kernel/errors.ts";
import { ulid } from "../kernel/ids.ts";
import type { Database } from "../db/database.ts";
import type { ChannelNotificationsTable } from "../db/schema.ts";
import type { PayoutService } from "./payouts.ts";
import type { RefundService } from "./refunds.ts";
import { EXPIRED_BY_TALLY, type PaymentService } from "./service.ts";
import { commitUnit } from "./unit-of-work.ts";
import type { Vault } from "../vault/index.ts";

/** Notification bodies are sealed whole under this purpose (vault/registry.ts SEALED_DOCUMENTS). */
export const NOTIFICATION_PURPOSE = "channel.notification";

/** Headers never kept with a stored notification. */
const DROPPED_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

export type NotificationStatus = ChannelNotificationsTable["status"];

export interface NotificationOutcome {
  readonly id: string;
  readonly status: NotificationStatus;
  readonly reason: string | null;
  readonly ack: NotifyAck;
}

export class NotificationInbox {
  /** Counts by channel and status, for /metrics and alerts. */
  readonly counts = new Map<string, number>();

  constructor(
    private readonly payments: PaymentService,
    private readonly refunds: RefundService,
    private readonly payouts: PayoutService,
    private readonly logger: Logger,
    private readonly vault: Vault,
  ) {}

  /** A stored notification's body as text, decoded as UTF-8 (VaultError when its seal does not open). */
  async bodyOf(row: Pick<ChannelNotificationsTable, "body" | "sealed_body">): Promise<string> {
    return (await this.bytesOf(row)).toString("utf8");
  }

  /** A stored notification's body exactly as it was received (VaultError when its seal does not open). */
  async bytesOf(row: Pick<ChannelNotificationsTable, "body" | "sealed_body">): Promise<Buffer> {
    // A row without a seal was received, as text, before bodies were sealed (migration 0011).
    if (row.sealed_body === null) return Buffer.from(row.body, "utf8");
    return this.vault.openDocumentFresh(NOTIFICATION_PURPOSE, row.sealed_body);
  }

  private channel(id: string): Channel {
    const channel = this.payments.ctx.channels.get(id);
    if (!channel?.verifyNotification || !channel.acknowledge) throw new ApiError("not_found", `no channel ${id} takes notifications`);
    return channel;
  }

  /** Stores a notification raw, then processes it. */
  async receive(channelId: string, notification: RawNotification): Promise<NotificationOutcome> {
    const channel = this.channel(channelId);
    const id = `ntf_${ulid()}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(notification.headers)) if (!DROPPED_HEADERS.has(k.toLowerCase())) headers[k.toLowerCase()] = v;
    const row: ChannelNotificationsTable = {
      id,
      channel: channelId,
      received_at: this.payments.ctx.clock.nowUs(),
      content_type: notification.contentType ?? null,
      headers: JSON.stringify(headers),
      body: "",
      // The bytes as received when they came over HTTP (a body in another charset is kept whole).
      sealed_body: this.vault.sealDocument(NOTIFICATION_PURPOSE, notification.bytes ?? Buffer.from(notification.body, "utf8")),
      status: "received",
      reason: null,
      dedupe_key: null,
      processed_at: null,
    };
    // Raw first: committed before it is parsed, so nothing received can be lost.
    await commitUnit(this.payments.ctx.engine, [], () => ({ value: null, write: (tx) => tx.insertInto("channel_notifications").values(row).execute().then(() => undefined) }));
    return this.process(channel, row, notification);
  }

  /** Processes a stored notification again (after a fix); applying twice changes nothing. */
  async replay(id: string): Promise<NotificationOutcome> {
    const row = await this.payments.ctx.db.read.selectFrom("channel_notifications").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw new ApiError("not_found", `no notification ${id}`, "id");
    return this.process(this.channel(row.channel), row);
  }

  /** `received`: the notification as it just arrived; without it, its body is opened from the row. */
  private async process(channel: Channel, row: ChannelNotificationsTable, received?: RawNotification): Promise<NotificationOutcome> {
    const bytes = received ? undefined : await this.bytesOf(row);
    const notification: RawNotification = {
      contentType: row.content_type ?? undefined,
      headers: JSON.parse(row.headers) as Record<string, string>,
      body: received ? received.body : bytes!.toString("utf8"),
      bytes: received ? received.bytes : bytes,
    };
    let status: NotificationStatus;
    let reason: string | null = null;
    let dedupeKey: string | null = null;
    try {
      const verdict = await channel.verifyNotification!(notification);
      if (verdict.kind === "rejected") {
        status = "rejected";
        reason = verdict.reason;
        this.logger.warn({ channel: channel.id, notification: row.id, reason }, "notification rejected; nothing changed");
      } else if (verdict.kind === "ignored") {
        status = "ignored";
        reason = verdict.reason;
        dedupeKey = verdict.dedupeKey;
      } else {
        dedupeKey = verdict.dedupeKey;
        const applied = await this.apply(channel.id, verdict.change);
        status = applied.status;
        reason = applied.reason;
      }
    } catch (error) {
      status = "failed";
      reason = "could not be applied; kept for replay";
      this.logger.error({ err: error, channel: channel.id, notification: row.id }, "notification could not be applied");
    }
    const processedAt = this.payments.ctx.clock.nowUs();
    await commitUnit(this.payments.ctx.engine, [], () => ({
      value: null,
      write: (tx) =>
        tx.updateTable("channel_notifications").set({ status, reason, dedupe_key: dedupeKey, processed_at: processedAt }).where("id", "=", row.id).execute().then(() => undefined),
    }));
    const key = `${channel.id}:${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    // The channel retries what we do not accept: only a rejected or failed one is answered "fail".
    const accepted = status !== "rejected" && status !== "failed";
    return { id: row.id, status, reason, ack: channel.acknowledge!(accepted) };
  }

  private async apply(channelId: string, change: import("../channels/channel.ts").NotifiedChange): Promise<{ status: NotificationStatus; reason: string | null }> {
    switch (change.target) {
      case "attempt": {
        const attempt = await this.payments.reads.attempt(change.attemptId);
        if (!attempt || attempt.flow !== "pay_in") return { status: "rejected", reason: `no attempt ${change.attemptId}` };
        if (attempt.channel !== channelId) return { status: "rejected", reason: `attempt ${attempt.id} belongs to channel ${attempt.channel}` };
        if (change.amount !== undefined && change.amount !== attempt.amount) {
          this.logger.error({ attempt: attempt.id, notified: change.amount.toString(), expected: attempt.amount.toString() }, "notification amount differs from the attempt's");
          return { status: "rejected", reason: `amount ${change.amount} differs from the attempt's ${attempt.amount}` };
        }
        if (attempt.status === "failed" && attempt.failure?.channelCode === EXPIRED_BY_TALLY && change.status === "succeeded") {
          await this.payments.applyLateSuccess(attempt.id, change.channelRef);
          return { status: "applied", reason: "late success after expiry: booked to suspense" };
        }
        if (attempt.status === "succeeded" || attempt.status === "failed") {
          const same = (attempt.status === "succeeded") === (change.status === "succeeded");
          if (!same) this.logger.error({ attempt: attempt.id, settled: attempt.status, notified: change.status }, "notification contradicts a settled attempt");
          return { status: "duplicate", reason: same ? null : `attempt already ${attempt.status}; notification said ${change.status}` };
        }
        await this.payments.applyAttemptResult(attempt.id, {
          status: change.status,
          ...(change.channelRef ? { channelRef: change.channelRef } : {}),
          ...(change.failure ? { failure: change.failure } : {}),
        });
        return { status: "applied", reason: null };
      }
      case "refund": {
        const refund = await this.payments.reads.refund(change.refundId, null);
        if (!refund || refund.channel !== channelId) return { status: "rejected", reason: `no refund ${change.refundId} on channel ${channelId}` };
        if (refund.status !== "pending") return { status: "duplicate", reason: null };
        await this.refunds.settle(refund.id, { status: change.status, ...(change.channelRef ? { channelRef: change.channelRef } : {}), ...(change.failure ? { failure: change.failure } : {}) });
        return { status: "applied", reason: null };
      }
      case "payout": {
        const payout = await this.payments.reads.payout(change.payoutId, null);
        if (!payout || payout.channel !== channelId) return { status: "rejected", reason: `no payout ${change.payoutId} on channel ${channelId}` };
        const before = payout.status;
        const after = await this.payouts.settle(payout.id, { status: change.status, ...(change.channelRef ? { channelRef: change.channelRef } : {}), ...(change.failure ? { failure: change.failure } : {}) });
        return { status: after.status === before ? "duplicate" : "applied", reason: null };
      }
    }
  }
}

/**
 * Seals the bodies stored in clear before bodies were sealed (migration 0011), `batchRows` per
 * transaction, until none is left or after `batchesMax` batches; returns how many it sealed. The
 * server's vault job (a few batches per run) and `tally vault reencrypt` (all) call it.
 */
export async function sealClearNotificationBodies(
  db: Database,
  vault: Vault,
  options: { batchRows: number; batchesMax?: number; pauseMs?: number },
): Promise<number> {
  let total = 0;
  for (let i = 0; i < (options.batchesMax ?? Infinity); i++) {
    const sealed = await sealBatch(db, vault, options.batchRows);
    total += sealed;
    if (sealed < options.batchRows) break;
    if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
  }
  return total;
}

/**
 * One batch: up to `limit` clear bodies sealed in one transaction. The update applies only while
 * the row is still unsealed: two processes sealing at once never overwrite a seal made from a
 * body they did not read.
 */
async function sealBatch(db: Database, vault: Vault, limit: number): Promise<number> {
  const rows = await db.read.selectFrom("channel_notifications").select(["id", "body"]).where("sealed_body", "is", null).orderBy("id").limit(limit).execute();
  if (rows.length === 0) return 0;
  const sealed = rows.map((r) => ({ id: r.id, seal: vault.sealDocument(NOTIFICATION_PURPOSE, Buffer.from(r.body, "utf8")) }));
  // On the service's own connection, not through the ledger's writer: on SQLite this one
  // overwrites the space the clear bodies took (secure_delete, db/database.ts), as the vault's
  // re-encryption does for the values it replaces.
  await db.transaction(async (tx) => {
    for (const r of sealed) {
      await tx.updateTable("channel_notifications").set({ sealed_body: r.seal, body: "" }).where("id", "=", r.id).where("sealed_body", "is", null).execute();
    }
  });
  return rows.length;
}
