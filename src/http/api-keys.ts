// API keys: shown once when created, stored only as a SHA-256 hash (keys are 256-bit random, so
// a plain hash is enough), carrying scopes, optionally expiring, revocable.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Database } from "../db/database.ts";
import { ulid } from "../kernel/ids.ts";

/** Every scope Tally knows. `*` (the admin key's) grants all. */
export const SCOPES = ["ledger:read", "ledger:write", "payments:read", "payments:write", "webhooks:write", "stats:read", "metrics:read", "keys:write", "pii:reveal", "vault:admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  /** The key's id ("admin" for TALLY_ADMIN_KEY): idempotency keys are scoped by it. */
  readonly keyId: string;
  /** The merchant whose objects this key sees; null = the platform (admin) sees everything. */
  readonly merchantId: string | null;
  readonly scopes: ReadonlySet<string>;
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.has("*") || p.scopes.has(scope);
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export interface CreatedKey {
  readonly id: string;
  readonly key: string;
  readonly merchantId: string | null;
  readonly scopes: readonly string[];
  readonly expiresAt: Date | null;
}

/** How long a verified key is trusted without reading the database again. */
const CACHE_TTL_MS = 5_000;
const CACHE_ENTRIES_MAX = 10_000;

export class ApiKeyStore {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();
  private readonly adminKeyHash: Buffer | null;

  constructor(private readonly db: Database, adminKey: string | undefined, private readonly nowMs: () => number) {
    this.adminKeyHash = adminKey ? createHash("sha256").update(adminKey).digest() : null;
  }

  async create(options: { scopes: readonly string[]; merchantId?: string | null; name?: string | null; expiresInDays?: number }): Promise<CreatedKey> {
    for (const s of options.scopes) {
      if (s !== "*" && !(SCOPES as readonly string[]).includes(s)) throw new Error(`unknown scope "${s}"; known: ${SCOPES.join(", ")}, *`);
    }
    if (options.scopes.length === 0) throw new Error("a key needs at least one scope");
    const id = `key_${ulid()}`;
    const key = `tally_sk_${randomBytes(32).toString("base64url")}`;
    const now = this.nowMs();
    const expiresAt = options.expiresInDays ? new Date(now + options.expiresInDays * 86_400_000) : null;
    await this.db.kysely
      .insertInto("api_keys")
      .values({
        id,
        merchant_id: options.merchantId ?? null,
        name: options.name ?? null,
        key_hash: hashKey(key),
        prefix: key.slice(0, 14),
        scopes: [...options.scopes].sort().join(" "),
        created_at: BigInt(now) * 1000n,
        expires_at: expiresAt ? BigInt(expiresAt.getTime()) * 1000n : null,
        revoked_at: null,
      })
      .execute();
    return { id, key, merchantId: options.merchantId ?? null, scopes: options.scopes, expiresAt };
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.db.kysely.updateTable("api_keys").set({ revoked_at: BigInt(this.nowMs()) * 1000n }).where("id", "=", id).executeTakeFirst();
    this.cache.clear();
    return Number(r.numUpdatedRows) === 1;
  }

  async count(): Promise<number> {
    const r = await this.db.read.selectFrom("api_keys").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** The principal for a presented key, or null when it is unknown, expired or revoked. */
  async verify(presented: string): Promise<Principal | null> {
    if (presented.length === 0 || presented.length > 256) return null;
    const digest = createHash("sha256").update(presented).digest();
    if (this.adminKeyHash && timingSafeEqual(digest, this.adminKeyHash)) {
      return { keyId: "admin", merchantId: null, scopes: new Set(["*"]) };
    }
    const hex = digest.toString("hex");
    const now = this.nowMs();
    const cached = this.cache.get(hex);
    if (cached && cached.until > now) return cached.principal;
    const row = await this.db.read.selectFrom("api_keys").selectAll().where("key_hash", "=", hex).executeTakeFirst();
    let principal: Principal | null = null;
    if (row && row.revoked_at === null && (row.expires_at === null || BigInt(row.expires_at) > BigInt(now) * 1000n)) {
      principal = { keyId: row.id, merchantId: row.merchant_id, scopes: new Set(row.scopes.split(" ")) };
    }
    if (this.cache.size >= CACHE_ENTRIES_MAX) this.cache.clear();
    // Cache until the key's own expiry at the latest.
    const expiresMs = row?.expires_at != null ? Number(BigInt(row.expires_at) / 1000n) : Infinity;
    this.cache.set(hex, { principal, until: Math.min(now + CACHE_TTL_MS, expiresMs) });
    return principal;
  }
}
