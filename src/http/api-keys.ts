// API keys: shown once when created, stored only as a SHA-256 hash (keys are 256-bit random, so
// a plain hash is enough), carrying scopes, optionally expiring, revocable. Each key also gets a
// request-signing secret (shown once beside it) for HMAC-signed requests; a key may require them.
//
// The signing secret must be readable by the server to check signatures, so it cannot be a hash.
// It is stored encrypted (AES-256-GCM) under a key derived with HKDF from the API key itself: the
// server can open it only while a request presents the API key, and a copy of the database alone
// (which holds only key hashes) reveals neither the key nor the secret.
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from "node:crypto";
import type { Database } from "../db/database.ts";
import { ulid } from "../kernel/ids.ts";

/** Every scope Tally knows. `*` (the admin key's) grants all. */
export const SCOPES = [
  "ledger:read",
  "ledger:write",
  "payments:read",
  "payments:write",
  "escrow:read",
  "escrow:write",
  "webhooks:write",
  "stats:read",
  "metrics:read",
  "keys:write",
  "security:read",
  "pii:reveal",
  "vault:admin",
] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  /** The key's id ("admin" for TALLY_ADMIN_KEY): idempotency keys are scoped by it. */
  readonly keyId: string;
  /** The merchant whose objects this key sees; null = the platform (admin) sees everything. */
  readonly merchantId: string | null;
  readonly scopes: ReadonlySet<string>;
  /** Requests with this key must be signed (Tally-Signature). */
  readonly requireSignature: boolean;
  /** The HMAC key for signed requests; null when the key has none (the admin key, old keys). */
  readonly signingSecret: Buffer | null;
}

/** A custody bank's own credential: it may send that bank's notices and statements only. */
export const CUSTODY_SCOPE = /^custody:[a-z0-9-]{1,32}$/;

export function hasCustodyScope(p: Principal, bank: string): boolean {
  return p.scopes.has("*") || p.scopes.has(`custody:${bank}`);
}

/** What a presented key turned out to be; the reasons feed security events, never the client. */
export type Verification =
  | { readonly kind: "valid"; readonly principal: Principal }
  | { readonly kind: "unknown" }
  | { readonly kind: "expired"; readonly keyId: string }
  | { readonly kind: "revoked"; readonly keyId: string };

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.has("*") || p.scopes.has(scope);
}

export function hashKey(key: string): string {
  // The one-shot digest: a Hash object per request (createHash) cost 4–5 µs of each request's
  // few hundred, this under 1 µs.
  return hash("sha256", key, "hex");
}

/** Compares two digests (or keys) in time that depends only on their lengths. */
function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface CreatedKey {
  readonly id: string;
  readonly key: string;
  /** The HMAC secret for signed requests (see docs/security.md); shown once, like the key. */
  readonly signingSecret: string;
  readonly merchantId: string | null;
  readonly scopes: readonly string[];
  readonly expiresAt: Date | null;
  readonly requireSignature: boolean;
}

const CACHE_ENTRIES_MAX = 10_000;
const SECRET_FORMAT = "v1";

function secretKey(apiKey: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(apiKey, "utf8"), Buffer.alloc(0), "tally:api-key:signing-secret", 32));
}

function sealSecret(apiKey: string, keyId: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", secretKey(apiKey), iv);
  cipher.setAAD(Buffer.from(keyId));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `${SECRET_FORMAT}:${iv.toString("base64url")}:${body.toString("base64url")}`;
}

/** The clear secret, or null when the stored value does not open with this key (never garbage). */
function openSecret(apiKey: string, keyId: string, sealed: string): Buffer | null {
  const [format, ivText, bodyText] = sealed.split(":");
  if (format !== SECRET_FORMAT || !ivText || !bodyText) return null;
  const iv = Buffer.from(ivText, "base64url");
  const body = Buffer.from(bodyText, "base64url");
  if (iv.length !== 12 || body.length <= 16) return null;
  try {
    const decipher = createDecipheriv("aes-256-gcm", secretKey(apiKey), iv);
    decipher.setAAD(Buffer.from(keyId));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  } catch {
    return null;
  }
}

export class ApiKeyStore {
  private readonly cache = new Map<string, { verification: Verification; until: number }>();
  /** Lookups in flight, so that a burst on an expired cache entry reads the database once. */
  private readonly pending = new Map<string, Promise<Verification>>();
  private readonly adminKeyHash: string | null;
  private lastPresented = "";
  private lastDigest = "";
  private readonly admin: Verification = {
    kind: "valid",
    principal: { keyId: "admin", merchantId: null, scopes: new Set(["*"]), requireSignature: false, signingSecret: null },
  };

  /**
   * `cacheTtlMs`: how long a verification is trusted without reading the database again. A key
   * revoked through this store stops working at once (the cache is cleared); one revoked by
   * another process (the CLI, another instance) stops working within `cacheTtlMs`.
   */
  constructor(private readonly db: Database, adminKey: string | undefined, private readonly nowMs: () => number, private readonly cacheTtlMs = 1_000) {
    this.adminKeyHash = adminKey ? hashKey(adminKey) : null;
  }

  async create(options: { scopes: readonly string[]; merchantId?: string | null; name?: string | null; expiresInDays?: number; requireSignature?: boolean }): Promise<CreatedKey> {
    for (const s of options.scopes) {
      if (s !== "*" && !(SCOPES as readonly string[]).includes(s) && !CUSTODY_SCOPE.test(s)) {
        throw new Error(`unknown scope "${s}"; known: ${SCOPES.join(", ")}, custody:<bank>, *`);
      }
    }
    if (options.scopes.length === 0) throw new Error("a key needs at least one scope");
    const id = `key_${ulid()}`;
    const key = `tally_sk_${randomBytes(32).toString("base64url")}`;
    const signingSecret = `tally_ss_${randomBytes(32).toString("base64url")}`;
    const now = this.nowMs();
    const expiresAt = options.expiresInDays ? new Date(now + options.expiresInDays * 86_400_000) : null;
    const requireSignature = options.requireSignature ?? false;
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
        signing_secret: sealSecret(key, id, signingSecret),
        require_signature: requireSignature ? 1 : 0,
      })
      .execute();
    return { id, key, signingSecret, merchantId: options.merchantId ?? null, scopes: options.scopes, expiresAt, requireSignature };
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.db.kysely.updateTable("api_keys").set({ revoked_at: BigInt(this.nowMs()) * 1000n }).where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
    this.cache.clear();
    return Number(r.numUpdatedRows) === 1;
  }

  async count(): Promise<number> {
    const r = await this.db.read.selectFrom("api_keys").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** The principal for a presented key, or null when it is unknown, expired or revoked. */
  async verify(presented: string): Promise<Principal | null> {
    const v = await this.check(presented);
    return v.kind === "valid" ? v.principal : null;
  }

  /** What a presented key is: valid (with its principal), unknown, expired or revoked. */
  async check(presented: string): Promise<Verification> {
    // known() leaves the presented key's digest as the last one.
    return this.known(presented) ?? this.read(presented, this.lastDigest);
  }

  /**
   * What a presented key is when that is known without reading the database (a malformed key,
   * the admin key, a key verified within `cacheTtlMs`); null when `check` must read it.
   */
  known(presented: string): Verification | null {
    if (presented.length === 0 || presented.length > 256) return { kind: "unknown" };
    // Most requests in a row carry the same key: the last key's digest is remembered, and a key
    // is compared with the last in constant time (a plain !== would tell, by its timing, how many
    // leading characters a guess shares with a key in use). The verification itself is cached by
    // digest with its time limit, below. The key stays in memory only as long as requests carry it.
    let hex = this.lastDigest;
    if (!sameDigest(presented, this.lastPresented)) {
      hex = hashKey(presented);
      this.lastPresented = presented;
      this.lastDigest = hex;
    }
    if (this.adminKeyHash !== null && sameDigest(hex, this.adminKeyHash)) return this.admin;
    const cached = this.cache.get(hex);
    if (cached && cached.until > this.nowMs()) return cached.verification;
    return null;
  }

  private read(presented: string, hex: string): Promise<Verification> {
    let lookup = this.pending.get(hex);
    if (!lookup) {
      lookup = this.lookUp(presented, hex).finally(() => this.pending.delete(hex));
      this.pending.set(hex, lookup);
    }
    return lookup;
  }

  private async lookUp(presented: string, hex: string): Promise<Verification> {
    const row = await this.db.read.selectFrom("api_keys").selectAll().where("key_hash", "=", hex).executeTakeFirst();
    const now = this.nowMs();
    let verification: Verification;
    if (!row) verification = { kind: "unknown" };
    else if (row.revoked_at !== null) verification = { kind: "revoked", keyId: row.id };
    else if (row.expires_at !== null && BigInt(row.expires_at) <= BigInt(now) * 1000n) verification = { kind: "expired", keyId: row.id };
    else {
      verification = {
        kind: "valid",
        principal: {
          keyId: row.id,
          merchantId: row.merchant_id,
          scopes: new Set(row.scopes.split(" ")),
          requireSignature: Number(row.require_signature) === 1,
          signingSecret: row.signing_secret ? openSecret(presented, row.id, row.signing_secret) : null,
        },
      };
    }
    // Unknown keys are not cached: a stream of random keys must not evict the keys in use (the
    // address that sends them is blocked soon enough).
    if (this.cacheTtlMs > 0 && verification.kind !== "unknown") {
      if (this.cache.size >= CACHE_ENTRIES_MAX) this.cache.clear();
      // Cache until the key's own expiry at the latest.
      const expiresMs = row?.expires_at != null ? Number(BigInt(row.expires_at) / 1000n) : Infinity;
      this.cache.set(hex, { verification, until: Math.min(now + this.cacheTtlMs, expiresMs) });
    }
    return verification;
  }
}
