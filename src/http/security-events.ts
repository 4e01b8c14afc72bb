// Security events (blocked clients, keys used after expiry or revocation, bad signatures, replayed
// nonces, rate limit trips). Recording one never touches the database on the request's path: it
// lands in a bounded in-memory buffer, aggregated by (type, address, key, reason), and a timer
// writes the buffer in one batch. So a flood of rejected requests costs one row per kind and
// flush, not one per request, and normal requests never wait on it.
import type { Database } from "../db/database.ts";
import { ulid } from "../kernel/ids.ts";

export const SECURITY_EVENT_TYPES = [
  "client_blocked",
  "key_expired",
  "key_revoked",
  "signature_invalid",
  "nonce_replayed",
  "rate_limited",
  "custody_scope_refused",
  "events_dropped",
] as const;
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

export interface SecurityEvent {
  readonly type: SecurityEventType;
  readonly clientAddress: string | null;
  readonly keyId: string | null;
  /** A few short facts (reason, path, counts); never secrets or request bodies. */
  readonly detail?: Readonly<Record<string, string | number>>;
}

interface Pending {
  event: SecurityEvent;
  count: number;
  firstMs: number;
}

export interface SecurityEventView {
  readonly id: string;
  readonly type: string;
  readonly created_at: string;
  readonly client_address: string | null;
  readonly key_id: string | null;
  readonly count: number;
  readonly detail: Record<string, unknown> | null;
}

const INSERT_ROWS_MAX = 100;
const PATH_LENGTH_MAX = 200;

/** A path as recorded: cut to a bounded length, control characters replaced. */
export function recordablePath(url: string): string {
  const path = url.length > PATH_LENGTH_MAX ? `${url.slice(0, PATH_LENGTH_MAX)}…` : url;
  return path.replace(/[\u0000-\u001f\u007f]/g, "?");
}

export class SecurityEventRecorder {
  private buffer = new Map<string, Pending>();
  private dropped = 0;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly nowMs: () => number,
    private readonly bufferMax: number,
    private readonly onWriteFailed: (error: unknown) => void,
  ) {}

  record(event: SecurityEvent): void {
    const id = `${event.type}\n${event.clientAddress ?? ""}\n${event.keyId ?? ""}\n${event.detail?.reason ?? ""}`;
    const pending = this.buffer.get(id);
    if (pending) {
      pending.count++;
      return;
    }
    if (this.buffer.size >= this.bufferMax) {
      this.dropped++;
      return;
    }
    this.buffer.set(id, { event, count: 1, firstMs: this.nowMs() });
  }

  /** Writes what is buffered; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write()).catch((error) => this.onWriteFailed(error));
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.buffer.size === 0 && this.dropped === 0) return;
    const batch = [...this.buffer.values()];
    this.buffer = new Map();
    if (this.dropped > 0) {
      batch.push({ event: { type: "events_dropped", clientAddress: null, keyId: null }, count: this.dropped, firstMs: this.nowMs() });
      this.dropped = 0;
    }
    const rows = batch.map((p) => ({
      id: `sev_${ulid()}`,
      type: p.event.type,
      created_at: BigInt(p.firstMs) * 1000n,
      client_address: p.event.clientAddress,
      key_id: p.event.keyId,
      count: p.count,
      detail: p.event.detail ? JSON.stringify(p.event.detail) : null,
    }));
    for (let i = 0; i < rows.length; i += INSERT_ROWS_MAX) {
      await this.db.kysely.insertInto("security_events").values(rows.slice(i, i + INSERT_ROWS_MAX)).execute();
    }
  }

  /** Newest first; `startingAfter` is the id of the last event of the previous page. */
  async list(options: { limit: number; startingAfter?: string; type?: string }): Promise<{ data: SecurityEventView[]; has_more: boolean }> {
    await this.flush();
    let query = this.db.read.selectFrom("security_events").selectAll().orderBy("id", "desc").limit(options.limit + 1);
    if (options.startingAfter !== undefined) query = query.where("id", "<", options.startingAfter);
    if (options.type !== undefined) query = query.where("type", "=", options.type);
    const rows = await query.execute();
    return {
      has_more: rows.length > options.limit,
      data: rows.slice(0, options.limit).map((r) => ({
        id: r.id,
        type: r.type,
        created_at: new Date(Number(BigInt(r.created_at) / 1000n)).toISOString(),
        client_address: r.client_address,
        key_id: r.key_id,
        count: Number(r.count),
        detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
      })),
    };
  }
}
