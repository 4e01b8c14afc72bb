// HMAC request signing for server-to-server callers (docs/security.md). A signed request carries
//   Tally-Timestamp: <unix seconds>
//   Tally-Nonce:     <16-64 characters of [A-Za-z0-9_-], new for every request>
//   Tally-Signature: v1=<hex HMAC-SHA256(signing secret, "<ts>\n<nonce>\n<METHOD>\n<path?query>\n<hex sha256(body)>")>
// The timestamp must be within the window of the server's clock; a nonce is accepted once per key
// within the window (a replay is refused). Nonces live in memory on SQLite (one process) and in
// the `request_nonces` table on PostgreSQL (every process of a deployment sees them).
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Database } from "../db/database.ts";

export const SIGNATURE_VERSION = "v1";
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^v1=([0-9a-f]{64})$/;

/** The exact text a signature covers. */
export function signedPayload(timestamp: string, nonce: string, method: string, pathAndQuery: string, body: string): string {
  const bodyHash = createHash("sha256").update(body, "utf8").digest("hex");
  return `${timestamp}\n${nonce}\n${method.toUpperCase()}\n${pathAndQuery}\n${bodyHash}`;
}

/** The Tally-Signature header value for a request (what a client computes). */
export function signRequest(secret: string | Buffer, timestamp: string, nonce: string, method: string, pathAndQuery: string, body: string): string {
  return `${SIGNATURE_VERSION}=${createHmac("sha256", secret).update(signedPayload(timestamp, nonce, method, pathAndQuery, body), "utf8").digest("hex")}`;
}

export type SignatureFailure = "missing" | "malformed" | "stale" | "no_secret" | "mismatch";

export interface SignedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  readonly timestamp: unknown;
  readonly nonce: unknown;
  readonly signature: unknown;
}

/** Checks a request's signature (not its nonce); null when it is good. */
export function checkSignature(secret: Buffer | null, r: SignedRequest, nowMs: number, windowMs: number): SignatureFailure | null {
  if (r.timestamp === undefined || r.nonce === undefined || r.signature === undefined) return "missing";
  if (typeof r.timestamp !== "string" || typeof r.nonce !== "string" || typeof r.signature !== "string") return "malformed";
  if (!TIMESTAMP.test(r.timestamp) || !NONCE.test(r.nonce)) return "malformed";
  const match = SIGNATURE.exec(r.signature);
  if (!match) return "malformed";
  if (Math.abs(Number(r.timestamp) * 1000 - nowMs) > windowMs) return "stale";
  if (!secret) return "no_secret";
  const expected = createHmac("sha256", secret).update(signedPayload(r.timestamp, r.nonce, r.method, r.url, r.body), "utf8").digest();
  return timingSafeEqual(expected, Buffer.from(match[1]!, "hex")) ? null : "mismatch";
}

export interface NonceStore {
  /** Records a nonce of a key until `expiresMs`; false when it was already there (a replay). */
  remember(keyId: string, nonce: string, expiresMs: number, nowMs: number): Promise<boolean>;
  /** Forgets nonces whose window has passed. */
  prune(nowMs: number): Promise<void>;
}

/** Nonces in memory: right for SQLite, where one process serves the database. */
export class MemoryNonceStore implements NonceStore {
  private readonly seen = new Map<string, number>();
  constructor(private readonly entriesMax: number) {}

  async remember(keyId: string, nonce: string, expiresMs: number, nowMs: number): Promise<boolean> {
    const id = `${keyId}\n${nonce}`;
    const until = this.seen.get(id);
    if (until !== undefined && until > nowMs) return false;
    if (this.seen.size >= this.entriesMax) {
      await this.prune(nowMs);
      if (this.seen.size >= this.entriesMax) throw new NonceStoreFullError();
    }
    this.seen.set(id, expiresMs);
    return true;
  }

  async prune(nowMs: number): Promise<void> {
    for (const [id, until] of this.seen) if (until <= nowMs) this.seen.delete(id);
  }
}

export class NonceStoreFullError extends Error {
  override name = "NonceStoreFullError";
  constructor() {
    super("too many signed requests within the signature window; nonces cannot be remembered");
  }
}

/** Nonces in a table: every process on one PostgreSQL database refuses the others' replays. */
export class TableNonceStore implements NonceStore {
  constructor(private readonly db: Database) {}

  async remember(keyId: string, nonce: string, expiresMs: number): Promise<boolean> {
    const r = await this.db.kysely
      .insertInto("request_nonces")
      .values({ key_id: keyId, nonce, expires_at: BigInt(expiresMs) })
      .onConflict((oc) => oc.columns(["key_id", "nonce"]).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async prune(nowMs: number): Promise<void> {
    await this.db.kysely.deleteFrom("request_nonces").where("expires_at", "<=", BigInt(nowMs)).execute();
  }
}
