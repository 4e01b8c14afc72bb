// The algorithm suites the vault encrypts and indexes with: AES-256-GCM with HMAC-SHA256 (the
// default), or China's national algorithms, SM4-GCM with HMAC-SM3 (TALLY_VAULT_SUITE=sm). Each
// suite is an AEAD (seal/open with associated data) plus a MAC for blind indexes.
import { createCipheriv, createDecipheriv, createHmac, getHashes } from "node:crypto";
import { sm3, sm4 } from "sm-crypto-v2";
import { VaultError } from "./errors.ts";

export type SuiteId = "aes-256-gcm" | "sm4-gcm";
/** The configuration's name of a suite (TALLY_VAULT_SUITE). */
export type SuiteName = "aes" | "sm";

export const SUITE_OF_NAME: Readonly<Record<SuiteName, SuiteId>> = { aes: "aes-256-gcm", sm: "sm4-gcm" };

export interface Suite {
  readonly id: SuiteId;
  readonly keyBytes: number;
  readonly ivBytes: number;
  readonly tagBytes: number;
  /** ciphertext ‖ tag */
  seal(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): Buffer;
  /** The plaintext, or VaultError when the tag does not verify. */
  open(key: Buffer, iv: Buffer, body: Buffer, aad: Buffer): Buffer;
  /** The keyed MAC of blind indexes. */
  mac(key: Buffer, data: Buffer): Buffer;
}

const TAG_BYTES = 16;
const IV_BYTES = 12;

const aes: Suite = {
  id: "aes-256-gcm",
  keyBytes: 32,
  ivBytes: IV_BYTES,
  tagBytes: TAG_BYTES,
  seal(key, iv, plaintext, aad) {
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(aad);
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  },
  open(key, iv, body, aad) {
    if (body.length < TAG_BYTES) throw new VaultError("the ciphertext is truncated");
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, iv);
      decipher.setAAD(aad);
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new VaultError("the ciphertext failed authentication (tampered or wrong key)");
    }
  },
  mac: (key, data) => createHmac("sha256", key).update(data).digest(),
};

// OpenSSL 3 (Node 20) has SM3, so HMAC-SM3 runs natively; sm-crypto-v2's pure-JS HMAC is the
// fallback for builds without it. Both give the same bytes (test/vault/suites.test.ts).
const nativeSm3 = getHashes().includes("sm3");

export function hmacSm3(key: Buffer, data: Buffer): Buffer {
  if (nativeSm3) return createHmac("sm3", key).update(data).digest();
  return Buffer.from(sm3(new Uint8Array(data), { key: new Uint8Array(key), mode: "hmac" }), "hex");
}

const sm: Suite = {
  id: "sm4-gcm",
  keyBytes: 16,
  ivBytes: IV_BYTES,
  tagBytes: TAG_BYTES,
  seal(key, iv, plaintext, aad) {
    const r = sm4.encrypt(new Uint8Array(plaintext), new Uint8Array(key), { mode: "gcm", iv: new Uint8Array(iv), associatedData: new Uint8Array(aad), output: "array", outputTag: true });
    if (!r.tag || r.tag.length !== TAG_BYTES) throw new VaultError("SM4-GCM produced no authentication tag");
    return Buffer.concat([r.output, r.tag]);
  },
  open(key, iv, body, aad) {
    if (body.length < TAG_BYTES) throw new VaultError("the ciphertext is truncated");
    try {
      const out = sm4.decrypt(new Uint8Array(body.subarray(0, body.length - TAG_BYTES)), new Uint8Array(key), {
        mode: "gcm",
        iv: new Uint8Array(iv),
        associatedData: new Uint8Array(aad),
        tag: new Uint8Array(body.subarray(body.length - TAG_BYTES)),
        output: "array",
      });
      return Buffer.from(out);
    } catch {
      throw new VaultError("the ciphertext failed authentication (tampered or wrong key)");
    }
  },
  mac: hmacSm3,
};

const SUITES: Readonly<Record<SuiteId, Suite>> = { "aes-256-gcm": aes, "sm4-gcm": sm };

export function suite(id: string): Suite {
  const s = (SUITES as Record<string, Suite>)[id];
  if (!s) throw new VaultError(`unknown algorithm suite "${id}"`);
  return s;
}

export function isSuiteId(id: string): id is SuiteId {
  return Object.hasOwn(SUITES, id);
}
