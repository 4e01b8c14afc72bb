// Field-level envelope encryption of personal data. Each purpose (a kind of value, e.g.
// `payout.destination`) has random data keys, one per version, wrapped by the key provider's
// master key (data-keys.ts); new values use the newest version, old versions stay readable until
// re-encryption has moved every row off them (reencrypt.ts). The ciphertext names its format,
// suite and key version:
//
//   v2:<suite>:<version>:<iv>:<ciphertext‖tag>     suite aes-256-gcm | sm4-gcm, base64url parts
//   v1:aes-256-gcm:1:<iv>:<ciphertext‖tag>         the first cut (HKDF-derived keys), read only
//
// Blind indexes (a keyed MAC of the normalised value) allow exact-match search without decrypting.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { KeyRing, type DataKeyStore, type UnwrappedKey } from "./data-keys.ts";
import { VaultError } from "./errors.ts";
import type { KeyProvider } from "./key-provider.ts";
import { isSuiteId, suite, type SuiteId } from "./suites.ts";
import { maskBankAccountNumber, maskPersonName as maskName } from "./fields.ts";

export { VaultError } from "./errors.ts";
export { LocalKeyProvider, loadOrCreateMasterKey, type KeyProvider } from "./key-provider.ts";

const FORMAT = "v2";
const LEGACY_FORMAT = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Longest value the vault encrypts; a limit on everything (and on what a reveal returns). */
export const PLAINTEXT_BYTES_MAX = 64 * 1024;
const VERSION = /^[1-9]\d{0,8}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export interface CiphertextHeader {
  readonly format: "v1" | "v2";
  readonly suite: SuiteId;
  readonly version: number;
}

/** The header of a vault ciphertext, or null when `text` is not one (checks shape only, not the tag). */
export function parseCiphertext(text: string): (CiphertextHeader & { iv: Buffer; body: Buffer }) | null {
  if (typeof text !== "string" || text.length > PLAINTEXT_BYTES_MAX * 2) return null;
  const parts = text.split(":");
  if (parts.length !== 5) return null;
  const [format, suiteId, version, iv, body] = parts as [string, string, string, string, string];
  if ((format !== FORMAT && format !== LEGACY_FORMAT) || !isSuiteId(suiteId) || !VERSION.test(version)) return null;
  if (format === LEGACY_FORMAT && (suiteId !== "aes-256-gcm" || version !== "1")) return null;
  if (!BASE64URL.test(iv) || !BASE64URL.test(body)) return null;
  const ivBytes = Buffer.from(iv, "base64url");
  const bodyBytes = Buffer.from(body, "base64url");
  // Only the canonical encoding: a changed character always changes the bytes (so fails the tag).
  if (ivBytes.toString("base64url") !== iv || bodyBytes.toString("base64url") !== body) return null;
  return { format, suite: suiteId, version: Number(version), iv: ivBytes, body: bodyBytes };
}

/** True when `text` has the shape of a vault ciphertext (coverage checks decrypt as well). */
export function looksEncrypted(text: string): boolean {
  return parseCiphertext(text) !== null;
}

/** Blind-index input: whitespace never distinguishes two values (`6222 0212…` = `62220212…`). */
export function normaliseForIndex(value: string): string {
  return value.normalize("NFC").replace(/\s+/g, "");
}

export interface VaultOptions {
  readonly store: DataKeyStore;
  readonly provider: KeyProvider;
  /** The suite new data keys are created in. */
  readonly suite: SuiteId;
  /** Data-key purposes and blind indexes to have keys for before the first encrypt. */
  readonly purposes?: readonly string[];
  readonly indexes?: readonly string[];
}

export class Vault {
  constructor(readonly keys: KeyRing) {}

  /** Loads the keys, creating version 1 for each listed purpose and index that has none. */
  static async open(options: VaultOptions): Promise<Vault> {
    const ring = new KeyRing(options.store, options.provider, options.suite);
    await ring.refresh();
    for (const p of options.purposes ?? []) await ring.ensure("data", p);
    for (const p of options.indexes ?? []) await ring.ensure("index", p);
    return new Vault(ring);
  }

  /** Picks up key versions created by other processes (a rotation from the CLI). */
  refresh(): Promise<void> {
    return this.keys.refresh();
  }

  /** A new data-key version for `purpose`; returns it. */
  rotate(purpose: string): Promise<number> {
    return this.keys.rotate(purpose);
  }

  currentVersion(purpose: string): number | undefined {
    return this.keys.currentKey("data", purpose)?.version;
  }

  encrypt(purpose: string, plaintext: string): string {
    const key = this.keys.currentKey("data", purpose);
    if (!key) throw new VaultError(`the vault has no data key for purpose ${purpose}; declare it in the registry`);
    const data = Buffer.from(plaintext, "utf8");
    if (data.length > PLAINTEXT_BYTES_MAX) throw new VaultError(`the value is longer than ${PLAINTEXT_BYTES_MAX} bytes`);
    const s = suite(key.suite);
    const iv = randomBytes(s.ivBytes);
    const body = s.seal(key.key, iv, data, aad(FORMAT, key.suite, key.version, purpose));
    return `${FORMAT}:${key.suite}:${key.version}:${iv.toString("base64url")}:${body.toString("base64url")}`;
  }

  /** Decrypts, or throws VaultError: a tampered, truncated or foreign value never yields garbage. */
  decrypt(purpose: string, ciphertext: string): string {
    const c = parseCiphertext(ciphertext);
    if (!c) throw new VaultError("not a vault ciphertext");
    if (c.iv.length !== IV_BYTES || c.body.length < TAG_BYTES) throw new VaultError("the ciphertext is truncated");
    let plain: Buffer;
    if (c.format === LEGACY_FORMAT) {
      const key = this.keys.provider.legacyKey?.(`enc:${purpose}:1`);
      if (!key) throw new VaultError("a v1 ciphertext needs the local key provider's legacy keys");
      plain = openLegacy(key, c.iv, c.body, purpose);
    } else {
      const key = this.keys.get("data", purpose, c.version);
      if (!key) throw new VaultError(`unknown key version ${c.version} of ${purpose}`);
      if (key.suite !== c.suite) throw new VaultError(`key version ${c.version} of ${purpose} is ${key.suite}, the value says ${c.suite}`);
      plain = suite(c.suite).open(key.key, c.iv, c.body, aad(c.format, c.suite, c.version, purpose));
    }
    const text = plain.toString("utf8");
    // GCM authenticated these bytes, so they are what was encrypted; a check all the same.
    if (!Buffer.from(text, "utf8").equals(plain)) throw new VaultError("the decrypted value is not UTF-8");
    return text;
  }

  /**
   * Seals a whole document (a bank's notice as received, up to its 64 MiB limit) with the current
   * data key of `purpose`: `TLYD` ‖ u16 header length ‖ header "<format>:<suite>:<version>" ‖ IV ‖
   * ciphertext ‖ tag. Raw bodies are kept byte for byte, but encrypted like every personal value.
   */
  sealDocument(purpose: string, data: Uint8Array): Buffer {
    const key = this.keys.currentKey("data", purpose);
    if (!key) throw new VaultError(`the vault has no data key for purpose ${purpose}`);
    const s = suite(key.suite);
    const iv = randomBytes(s.ivBytes);
    const header = Buffer.from(`${FORMAT}:${key.suite}:${key.version}`);
    const body = s.seal(key.key, iv, Buffer.from(data), aad(FORMAT, key.suite, key.version, purpose));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(header.length);
    return Buffer.concat([DOCUMENT_MAGIC, len, header, iv, body]);
  }

  /** Opens a sealed document, or throws VaultError (tampered, truncated, unknown key). */
  openDocument(purpose: string, sealed: Uint8Array): Buffer {
    const b = Buffer.from(sealed);
    const { headerLength, suiteId, version } = documentHeader(b);
    const key = this.keys.get("data", purpose, version);
    if (!key || key.suite !== suiteId) throw new VaultError(`unknown key version ${version} of ${purpose}`);
    const s = suite(suiteId);
    const ivStart = 6 + headerLength;
    const iv = b.subarray(ivStart, ivStart + s.ivBytes);
    const body = b.subarray(ivStart + s.ivBytes);
    if (iv.length !== s.ivBytes || body.length < TAG_BYTES) throw new VaultError("the sealed document is truncated");
    try {
      return Buffer.from(s.open(key.key, iv, body, aad(FORMAT, suiteId, version, purpose)));
    } catch {
      throw new VaultError("the sealed document failed authentication (tampered or wrong key)");
    }
  }

  /**
   * Like openDocument, but first reloads the keys when the document names a version this process
   * has not seen (sealed by another process after a rotation).
   */
  async openDocumentFresh(purpose: string, sealed: Uint8Array): Promise<Buffer> {
    let version: number | null = null;
    try {
      version = documentHeader(Buffer.from(sealed)).version;
    } catch {
      // openDocument says what is wrong with it.
    }
    if (version !== null && !this.keys.get("data", purpose, version)) await this.keys.refresh();
    return this.openDocument(purpose, sealed);
  }

  /** Like decrypt, but first reloads the keys when the value names a version this process has not seen. */
  async decryptFresh(purpose: string, ciphertext: string): Promise<string> {
    const c = parseCiphertext(ciphertext);
    if (c && c.format === FORMAT && !this.keys.get("data", purpose, c.version)) await this.keys.refresh();
    return this.decrypt(purpose, ciphertext);
  }

  /** The version a value is encrypted under (0 for the first cut's format), or null when it is not a ciphertext. */
  versionOf(ciphertext: string): number | null {
    const c = parseCiphertext(ciphertext);
    if (!c) return null;
    return c.format === LEGACY_FORMAT ? 0 : c.version;
  }

  /** A deterministic keyed MAC of the normalised `value`, for exact-match lookups. */
  blindIndex(purpose: string, value: string): string {
    const key: UnwrappedKey | undefined = this.keys.currentKey("index", purpose);
    if (!key) throw new VaultError(`the vault has no blind-index key for ${purpose}; declare it in the registry`);
    return suite(key.suite).mac(key.key, Buffer.from(normaliseForIndex(value), "utf8")).toString("base64url");
  }
}

/** The header is authenticated too: a value moved to another purpose, suite or version fails. */
const DOCUMENT_MAGIC = Buffer.from("TLYD");
const aad = (format: string, suiteId: SuiteId, version: number, purpose: string) => Buffer.from(`${format}:${suiteId}:${version}:${purpose}`);

function openLegacy(key: Buffer, iv: Buffer, body: Buffer, purpose: string): Buffer {
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(purpose));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new VaultError("the ciphertext failed authentication (tampered or wrong key)");
  }
}

/** Writes a value in the first cut's format (v1); for tests that prove old values stay readable. */
export function encryptLegacy(provider: KeyProvider, purpose: string, plaintext: string): string {
  const key = provider.legacyKey?.(`enc:${purpose}:1`);
  if (!key) throw new VaultError("the provider has no legacy keys");
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(purpose));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `${LEGACY_FORMAT}:aes-256-gcm:1:${iv.toString("base64url")}:${body.toString("base64url")}`;
}

/** The first cut's blind index (HMAC-SHA256 under the HKDF-derived key); for compatibility tests. */
export function blindIndexLegacy(provider: KeyProvider, purpose: string, value: string): string {
  const key = provider.legacyKey?.(`idx:${purpose}:1`);
  if (!key) throw new VaultError("the provider has no legacy keys");
  return createHmac("sha256", key).update(value).digest("base64url");
}

/** `6222021234567893445` → `6222 **** **** 3445` */
export const maskBankAccount = maskBankAccountNumber;
/** `张三` → `张*`; `John Smith` → `J*** Smith`. */
export const maskPersonName = maskName;

/** The header of a sealed document (see sealDocument), or VaultError when it is not one. */
function documentHeader(b: Buffer): { headerLength: number; suiteId: SuiteId; version: number } {
  if (b.length < 6 || !b.subarray(0, 4).equals(DOCUMENT_MAGIC)) throw new VaultError("not a sealed document");
  const headerLength = b.readUInt16BE(4);
  const [format, suiteId, versionText] = b.subarray(6, 6 + headerLength).toString().split(":");
  const version = Number(versionText);
  if (format !== FORMAT || !suiteId || !isSuiteId(suiteId) || !Number.isInteger(version)) throw new VaultError("the sealed document's header is not readable");
  return { headerLength, suiteId, version };
}
