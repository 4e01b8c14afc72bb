// The vault's envelope encryption: the ciphertext format, both suites checked against reference
// vectors and OpenSSL, the first cut's values still readable, rotation, key providers, and every
// way a value can fail (each a VaultError, never garbage).
import assert from "node:assert/strict";
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { sm3, sm4 } from "sm-crypto-v2";
import { LocalKeyProvider, MemoryDataKeyStore, SUITE_OF_NAME, Vault, VaultError, blindIndexLegacy, encryptLegacy, loadOrCreateMasterKey, suite, type SuiteName } from "../../src/vault/index.ts";
import { hmacSm3 } from "../../src/vault/suites.ts";

const PURPOSE = "payout.destination";
const INDEX = "bank_account_number";

export async function memoryVault(name: SuiteName, provider = new LocalKeyProvider(randomBytes(32)), store = new MemoryDataKeyStore()): Promise<Vault> {
  return Vault.open({ store, provider, suite: SUITE_OF_NAME[name], purposes: [PURPOSE, "other"], indexes: [INDEX] });
}

const isVaultError = (pattern: RegExp) => (e: unknown) => e instanceof VaultError && pattern.test(e.message);

for (const name of ["aes", "sm"] as const) {
  test(`${name}: values round-trip in the v2 format naming suite and key version`, async () => {
    const vault = await memoryVault(name);
    const clear = JSON.stringify({ bankAccountNumber: "6222021234567893445", accountName: "张三" });
    const ct = vault.encrypt(PURPOSE, clear);
    assert.match(ct, new RegExp(`^v2:${SUITE_OF_NAME[name]}:1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$`));
    assert.equal(vault.decrypt(PURPOSE, ct), clear);
    assert.notEqual(vault.encrypt(PURPOSE, clear), ct, "a fresh IV each time");
    assert.equal(vault.decrypt(PURPOSE, vault.encrypt(PURPOSE, "")), "");
  });

  test(`${name}: tampering, truncation, another purpose, unknown versions and foreign strings throw VaultError`, async () => {
    const vault = await memoryVault(name);
    const ct = vault.encrypt(PURPOSE, "6222021234567893445");
    const [f, s, v, iv, body] = ct.split(":") as [string, string, string, string, string];
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, "base64url");
      bytes[at]! ^= 0x01;
      return bytes.toString("base64url");
    };
    const cases: [string, string, RegExp][] = [
      ["a flipped ciphertext byte", [f, s, v, iv, flip(body, 0)].join(":"), /authentication/],
      ["a flipped tag byte", [f, s, v, iv, flip(body, Buffer.from(body, "base64url").length - 1)].join(":"), /authentication/],
      ["a flipped IV byte", [f, s, v, flip(iv, 3), body].join(":"), /authentication/],
      ["a truncated body", [f, s, v, iv, body.slice(0, 8)].join(":"), /truncated/],
      ["a body cut short by three bytes", [f, s, v, iv, Buffer.from(body, "base64url").subarray(0, -3).toString("base64url")].join(":"), /authentication/],
      ["a truncated IV", [f, s, v, iv.slice(0, 8), body].join(":"), /truncated/],
      ["a missing part", [f, s, v, iv].join(":"), /not a vault ciphertext/],
      ["an unknown key version", [f, s, "7", iv, body].join(":"), /unknown key version 7/],
      ["another suite named", [f, name === "aes" ? "sm4-gcm" : "aes-256-gcm", v, iv, body].join(":"), /key version 1 .* is /],
      ["an unknown suite", [f, "des", v, iv, body].join(":"), /not a vault ciphertext/],
      ["an unknown format", ["v9", s, v, iv, body].join(":"), /not a vault ciphertext/],
      ["a clear value", "6222021234567893445", /not a vault ciphertext/],
      ["an empty string", "", /not a vault ciphertext/],
      ["a non-canonical base64 character", [f, s, v, iv, `${body}=`].join(":"), /not a vault ciphertext/],
    ];
    for (const [label, text, error] of cases) assert.throws(() => vault.decrypt(PURPOSE, text), isVaultError(error), label);
    assert.throws(() => vault.decrypt("other", ct), isVaultError(/authentication/), "a value moved to another purpose");
  });

  test(`${name}: a rotation makes a new version; older values stay readable, another process picks it up`, async () => {
    const store = new MemoryDataKeyStore();
    const provider = new LocalKeyProvider(randomBytes(32));
    const a = await memoryVault(name, provider, store);
    const b = await memoryVault(name, provider, store);
    const old = a.encrypt(PURPOSE, "old value");
    assert.equal(await a.rotate(PURPOSE), 2);
    const fresh = a.encrypt(PURPOSE, "new value");
    assert.equal(a.versionOf(fresh), 2);
    assert.equal(a.decrypt(PURPOSE, old), "old value");
    assert.throws(() => b.decrypt(PURPOSE, fresh), isVaultError(/unknown key version 2/), "b has not seen version 2 yet");
    assert.equal(await b.decryptFresh(PURPOSE, fresh), "new value");
    assert.equal(b.currentVersion(PURPOSE), 2);
    assert.equal(a.blindIndex(INDEX, "6222 0212 3456 7893 445"), b.blindIndex(INDEX, "6222021234567893445"), "blind indexes survive rotations and ignore spaces");
  });

  test(`${name}: a vault with another master key cannot unwrap the data keys`, async () => {
    const store = new MemoryDataKeyStore();
    await memoryVault(name, new LocalKeyProvider(randomBytes(32)), store);
    await assert.rejects(memoryVault(name, new LocalKeyProvider(randomBytes(32)), store), isVaultError(/does not unwrap with this master key/));
  });
}

test("values and blind indexes of the first cut (format v1) stay readable and matching", async () => {
  const provider = new LocalKeyProvider(randomBytes(32));
  const vault = await memoryVault("aes", provider);
  const v1 = encryptLegacy(provider, PURPOSE, '{"bankAccountNumber":"6222021234567893445"}');
  assert.match(v1, /^v1:aes-256-gcm:1:/);
  assert.equal(vault.decrypt(PURPOSE, v1), '{"bankAccountNumber":"6222021234567893445"}');
  assert.equal(vault.versionOf(v1), 0);
  assert.equal(vault.blindIndex(INDEX, "6222021234567893445"), blindIndexLegacy(provider, INDEX, "6222021234567893445"));
  const bad = v1.slice(0, -3) + (v1.endsWith("A") ? "BAA" : "AAA");
  assert.throws(() => vault.decrypt(PURPOSE, bad), VaultError);
});

test("blind indexes of the two suites differ (HMAC-SHA256 vs HMAC-SM3) and are keyed per vault", async () => {
  const aes = await memoryVault("aes");
  const sm = await memoryVault("sm");
  const other = await memoryVault("sm");
  const value = "6222021234567893445";
  assert.notEqual(aes.blindIndex(INDEX, value), sm.blindIndex(INDEX, value));
  assert.notEqual(sm.blindIndex(INDEX, value), other.blindIndex(INDEX, value));
  assert.equal(sm.blindIndex(INDEX, value), sm.blindIndex(INDEX, ` ${value.slice(0, 4)} ${value.slice(4)} `));
  assert.equal(Buffer.from(sm.blindIndex(INDEX, value), "base64url").length, 32);
});

test("SM4 and SM3 match the GB/T reference vectors, and SM4-GCM matches OpenSSL's SM4-CTR keystream", () => {
  // GB/T 32907-2016 appendix A: one block under key = plaintext = 0123456789abcdeffedcba9876543210.
  const block = Buffer.from("0123456789abcdeffedcba9876543210", "hex");
  const ecb = sm4.encrypt(new Uint8Array(block), new Uint8Array(block), { mode: "ecb", padding: "none", output: "array" });
  assert.equal(Buffer.from(ecb).toString("hex"), "681edf34d206965e86b3e94f536e4246");
  // GB/T 32905-2016 appendix A: SM3("abc").
  assert.equal(sm3("abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  // GCM encrypts with CTR from J0 + 1 (J0 = IV ‖ 0x00000001 for a 96-bit IV).
  const key = randomBytes(16);
  const iv = randomBytes(12);
  const plain = randomBytes(100);
  const sealed = suite("sm4-gcm").seal(key, iv, plain, Buffer.from("aad"));
  const ctr = createCipheriv("sm4-ctr", key, Buffer.concat([iv, Buffer.from([0, 0, 0, 2])]));
  assert.deepEqual(sealed.subarray(0, 100), Buffer.concat([ctr.update(plain), ctr.final()]));
  assert.deepEqual(suite("sm4-gcm").open(key, iv, sealed, Buffer.from("aad")), plain);
  // HMAC-SM3: OpenSSL's and sm-crypto-v2's agree.
  const macKey = randomBytes(32);
  assert.equal(hmacSm3(macKey, Buffer.from("6222021234567893445")).toString("hex"), sm3("6222021234567893445", { key: new Uint8Array(macKey), mode: "hmac" }));
  assert.equal(hmacSm3(macKey, Buffer.from("x")).toString("hex"), createHmac("sm3", macKey).update("x").digest("hex"));
});

test("the local key file is created with mode 0600, reused, and refused when others can read it", () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-vault-key-"));
  const path = join(dir, "nested", "vault.key");
  const key = loadOrCreateMasterKey(path);
  assert.equal(key.length, 32);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(loadOrCreateMasterKey(path), key);
  const open = join(dir, "open.key");
  writeFileSync(open, randomBytes(32).toString("base64"), { mode: 0o644 });
  assert.throws(() => loadOrCreateMasterKey(open), isVaultError(/readable by others/));
  const short = join(dir, "short.key");
  writeFileSync(short, randomBytes(16).toString("base64"), { mode: 0o600 });
  assert.throws(() => loadOrCreateMasterKey(short), isVaultError(/32-byte/));
});

test("encrypting for a purpose with no key is refused, not silently keyed", async () => {
  const vault = await memoryVault("aes");
  assert.throws(() => vault.encrypt("undeclared.purpose", "x"), isVaultError(/no data key/));
  assert.throws(() => vault.blindIndex("undeclared", "x"), isVaultError(/no blind-index key/));
});
