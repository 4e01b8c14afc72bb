// Field-level encryption of personal data (first cut: AES-256-GCM, one master key from a key
// file, data keys per purpose derived with HKDF). The ciphertext names its format, algorithm and
// key version, so later versions (wrapped random data keys, SM4, rotation) can read old values.
// Blind indexes (keyed HMAC) allow exact-match search without decrypting.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";

const PREFIX = "v1";
const ALGORITHM = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class VaultError extends Error {
  override name = "VaultError";
}

export class Vault {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly masterKey: Buffer, private readonly keyVersion = 1) {
    if (masterKey.length !== 32) throw new VaultError("the vault's master key must be 32 bytes");
  }

  private key(purpose: string, kind: "enc" | "idx"): Buffer {
    const name = `${kind}:${purpose}:${this.keyVersion}`;
    let key = this.keys.get(name);
    if (!key) {
      key = Buffer.from(hkdfSync("sha256", this.masterKey, Buffer.alloc(0), `tally-vault:${name}`, 32));
      this.keys.set(name, key);
    }
    return key;
  }

  encrypt(purpose: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key(purpose, "enc"), iv);
    cipher.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}:${ALGORITHM}:${this.keyVersion}:${iv.toString("base64url")}:${body.toString("base64url")}`;
  }

  /** Decrypts, or throws VaultError: a tampered, truncated or foreign value never yields garbage. */
  decrypt(purpose: string, ciphertext: string): string {
    const parts = ciphertext.split(":");
    if (parts.length !== 5 || parts[0] !== PREFIX || parts[1] !== ALGORITHM) throw new VaultError("not a vault ciphertext");
    if (parts[2] !== String(this.keyVersion)) throw new VaultError(`unknown key version ${parts[2]}`);
    const iv = Buffer.from(parts[3]!, "base64url");
    const body = Buffer.from(parts[4]!, "base64url");
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new VaultError("the ciphertext is truncated");
    try {
      const decipher = createDecipheriv(ALGORITHM, this.key(purpose, "enc"), iv);
      decipher.setAAD(Buffer.from(purpose));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw new VaultError("the ciphertext failed authentication (tampered or wrong key)");
    }
  }

  /** A deterministic keyed hash of `value` for exact-match lookups. */
  blindIndex(purpose: string, value: string): string {
    return createHmac("sha256", this.key(purpose, "idx")).update(value).digest("base64url");
  }
}

/** Reads the master key file, creating it (mode 0600) on first start. */
export function loadOrCreateMasterKey(path: string): Buffer {
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
    if (key.length !== 32) throw new VaultError(`the vault key file ${path} does not hold a 32-byte base64 key`);
    return key;
  }
  mkdirSync(dirname(path), { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString("base64") + "\n", { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return key;
}

/** `6222021234567893445` → `6222 **** **** 3445` */
export function maskBankAccount(number: string): string {
  const digits = number.replace(/\s+/g, "");
  if (digits.length <= 8) return `${"*".repeat(Math.max(digits.length - 4, 0))}${digits.slice(-4)}`;
  return `${digits.slice(0, 4)} **** **** ${digits.slice(-4)}`;
}

/** `张三` → `张*`; `John Smith` → `J*** Smith`. */
export function maskPersonName(name: string): string {
  const trimmed = name.trim();
  const words = trimmed.split(/\s+/);
  if (words.length > 1) return `${words[0]![0]}${"*".repeat(3)} ${words.slice(1).join(" ")}`;
  const chars = [...trimmed];
  if (chars.length <= 1) return "*";
  // 张三 → 张*; 王小明 → 王*明 (ESCROW.md): the first and, from three characters on, the last stay.
  if (chars.length === 2) return `${chars[0]}*`;
  return `${chars[0]}${"*".repeat(chars.length - 2)}${chars.at(-1)}`;
}
