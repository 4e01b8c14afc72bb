// Key providers hold the master key that wraps (encrypts) the vault's data keys. The master key
// never leaves its provider: a provider is asked to wrap or unwrap a data key, so a KMS or HSM
// (Alibaba Cloud KMS, a cloud HSM) fits behind the same interface. The local provider keeps a
// 256-bit key in a file created with mode 0600 on first start.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { hkdfSync, randomBytes } from "node:crypto";
import { VaultError } from "./errors.ts";
import { suite, type SuiteId } from "./suites.ts";

export interface KeyProvider {
  /** Names the provider (and its key) in the data-key table, e.g. `local`. */
  readonly id: string;
  /** Encrypts a data key; `context` is bound to the result (a wrapped key moved to another purpose or version fails to unwrap). */
  wrap(dataKey: Buffer, context: string): Promise<string>;
  unwrap(wrapped: string, context: string): Promise<Buffer>;
  /**
   * The first cut's per-purpose keys (HKDF from the master key), so values it wrote (format v1)
   * stay readable and its blind indexes keep matching. Providers that never ran the first cut
   * (a KMS) leave it out.
   */
  legacyKey?(name: string): Buffer;
}

/** Wraps with the master key from a local file, in the configured suite's AEAD. */
export class LocalKeyProvider implements KeyProvider {
  readonly id = "local";
  private readonly legacy = new Map<string, Buffer>();

  constructor(private readonly masterKey: Buffer, private readonly wrapSuite: SuiteId = "aes-256-gcm") {
    if (masterKey.length !== 32) throw new VaultError("the vault's master key must be 32 bytes");
  }

  static fromFile(path: string, wrapSuite: SuiteId = "aes-256-gcm"): LocalKeyProvider {
    return new LocalKeyProvider(loadOrCreateMasterKey(path), wrapSuite);
  }

  /** The master key cut to the suite's key size (SM4 takes 128 bits), separate per suite. */
  private kek(id: SuiteId): Buffer {
    const s = suite(id);
    return Buffer.from(hkdfSync("sha256", this.masterKey, Buffer.alloc(0), `tally-vault:kek:${id}`, s.keyBytes));
  }

  async wrap(dataKey: Buffer, context: string): Promise<string> {
    const s = suite(this.wrapSuite);
    const iv = randomBytes(s.ivBytes);
    const body = s.seal(this.kek(s.id), iv, dataKey, Buffer.from(context));
    return `local:${s.id}:${iv.toString("base64url")}:${body.toString("base64url")}`;
  }

  async unwrap(wrapped: string, context: string): Promise<Buffer> {
    const parts = wrapped.split(":");
    if (parts.length !== 4 || parts[0] !== "local") throw new VaultError("not a key wrapped by the local key provider");
    const s = suite(parts[1]!);
    const iv = Buffer.from(parts[2]!, "base64url");
    if (iv.length !== s.ivBytes) throw new VaultError("the wrapped key is truncated");
    try {
      return s.open(this.kek(s.id), iv, Buffer.from(parts[3]!, "base64url"), Buffer.from(context));
    } catch {
      throw new VaultError(`a data key (${context}) does not unwrap with this master key: wrong TALLY_VAULT_KEY_FILE, or the key row was altered`);
    }
  }

  legacyKey(name: string): Buffer {
    let key = this.legacy.get(name);
    if (!key) {
      key = Buffer.from(hkdfSync("sha256", this.masterKey, Buffer.alloc(0), `tally-vault:${name}`, 32));
      this.legacy.set(name, key);
    }
    return key;
  }
}

/** Reads the master key file, creating it (mode 0600) on first start; refuses a file others can read. */
export function loadOrCreateMasterKey(path: string): Buffer {
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) throw new VaultError(`the vault key file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
    if (key.length !== 32) throw new VaultError(`the vault key file ${path} does not hold a 32-byte base64 key`);
    return key;
  }
  mkdirSync(dirname(path), { recursive: true });
  const key = randomBytes(32);
  try {
    writeFileSync(path, key.toString("base64") + "\n", { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateMasterKey(path);
    throw error;
  }
  chmodSync(path, 0o600);
  return key;
}
