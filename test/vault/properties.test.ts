// Property tests of the vault (fast-check): every field type round-trips through encryption in
// both suites; any changed character, flipped bit, truncation or other key version fails with a
// VaultError (never a different value); blind-index search finds exactly the matching rows.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import fc from "fast-check";
import { FIELD_TYPES, LocalKeyProvider, MemoryDataKeyStore, SUITE_OF_NAME, Vault, VaultError, type FieldTypeName, type SuiteName } from "../../src/vault/index.ts";
import { residentIdCheckCharacter } from "../../src/vault/fields.ts";

const PURPOSE = "payout.destination";
const INDEX = "bank_account_number";
const SUITES = ["aes", "sm"] as const;

async function vaultOf(name: SuiteName): Promise<Vault> {
  return Vault.open({ store: new MemoryDataKeyStore(), provider: new LocalKeyProvider(randomBytes(32)), suite: SUITE_OF_NAME[name], purposes: [PURPOSE], indexes: [INDEX] });
}

const digits = (min: number, max: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max }).map((d) => d.join(""));

function luhnComplete(body: string): string {
  for (let c = 0; c <= 9; c++) {
    const candidate = `${body}${c}`;
    let sum = 0;
    for (let i = 0; i < candidate.length; i++) {
      let d = Number(candidate[candidate.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error("unreachable");
}

const cjkName = fc.array(fc.integer({ min: 0x4e00, max: 0x9fa5 }).map((c) => String.fromCodePoint(c)), { minLength: 1, maxLength: 4 }).map((a) => a.join(""));
const latinWord = fc.stringMatching(/^[A-Z][a-z]{1,10}$/);

const VALUES: Readonly<Record<FieldTypeName, fc.Arbitrary<string>>> = {
  resident_id: fc
    .tuple(fc.integer({ min: 110000, max: 659999 }), fc.date({ min: new Date("1900-01-01T00:00:00Z"), max: new Date("2025-12-31T00:00:00Z"), noInvalidDate: true }), fc.integer({ min: 0, max: 999 }))
    .map(([region, date, seq]) => {
      const first17 = `${region}${date.toISOString().slice(0, 10).replace(/-/g, "")}${String(seq).padStart(3, "0")}`;
      return first17 + residentIdCheckCharacter(first17);
    }),
  bank_card: fc.tuple(fc.constantFrom("62", "4", "51", "35"), fc.integer({ min: 15, max: 18 })).chain(([prefix, length]) => digits(length - prefix.length, length - prefix.length).map((d) => luhnComplete(prefix + d))),
  bank_account: digits(8, 30),
  mobile: fc.stringMatching(/^1[3-9]\d{9}$/),
  person_name: fc.oneof(cjkName, fc.tuple(latinWord, latinWord).map(([a, b]) => `${a} ${b}`)),
  email: fc.tuple(fc.stringMatching(/^[a-z0-9._%+-]{1,20}$/), fc.domain()).map(([local, domain]) => `${local}@${domain}`),
};

for (const name of SUITES) {
  test(`${name}: every field type's values normalise, mask and round-trip through encryption`, async () => {
    const vault = await vaultOf(name);
    for (const [typeName, arbitrary] of Object.entries(VALUES) as [FieldTypeName, fc.Arbitrary<string>][]) {
      const type = FIELD_TYPES[typeName];
      fc.assert(
        fc.property(arbitrary, (raw) => {
          const value = type.normalise(raw, "field");
          assert.equal(type.normalise(value, "field"), value);
          assert.equal(vault.decrypt(PURPOSE, vault.encrypt(PURPOSE, value)), value);
          assert.notEqual(type.mask(value), value);
        }),
        { numRuns: 60 },
      );
    }
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => vault.decrypt(PURPOSE, vault.encrypt(PURPOSE, text)) === text));
  });

  test(`${name}: any changed character, flipped bit or truncation throws VaultError`, async () => {
    const vault = await vaultOf(name);
    // Every character once: with one twice, removing the original could leave a copy of it to pick.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:";
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), fc.nat(), fc.nat(), (text, at, by) => {
        const ct = vault.encrypt(PURPOSE, text);
        const i = at % ct.length;
        const replacement = alphabet.replace(ct[i]!, "")[by % (alphabet.length - 1)]!;
        const changed = ct.slice(0, i) + replacement + ct.slice(i + 1);
        assert.throws(() => vault.decrypt(PURPOSE, changed), VaultError, `changed character ${i}: ${changed}`);
        assert.throws(() => vault.decrypt(PURPOSE, ct.slice(0, i)), VaultError, `truncated to ${i}`);
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (text, at, bit) => {
        const parts = vault.encrypt(PURPOSE, text).split(":");
        const part = 3 + (at % 2);
        const bytes = Buffer.from(parts[part]!, "base64url");
        bytes[at % bytes.length]! ^= 1 << bit;
        parts[part] = bytes.toString("base64url");
        assert.throws(() => vault.decrypt(PURPOSE, parts.join(":")), VaultError);
      }),
    );
  });

  test(`${name}: a value labelled with another key version throws VaultError`, async () => {
    const vault = await vaultOf(name);
    await vault.rotate(PURPOSE);
    await vault.rotate(PURPOSE);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), fc.integer({ min: 1, max: 1000 }), (text, version) => {
        const ct = vault.encrypt(PURPOSE, text);
        fc.pre(version !== 3);
        const relabelled = ct.replace(/^v2:([^:]+):3:/, `v2:$1:${version}:`);
        assert.throws(() => vault.decrypt(PURPOSE, relabelled), VaultError);
      }),
    );
  });

  test(`${name}: blind-index search finds exactly the rows holding the value, however it is spaced`, async () => {
    const vault = await vaultOf(name);
    const db = new BetterSqlite3(":memory:");
    db.exec("create table t (id integer primary key, value_index text not null)");
    const find = db.prepare("select id from t where value_index = ? order by id");
    fc.assert(
      fc.property(fc.uniqueArray(VALUES.bank_account, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), fc.nat(), fc.nat(), (pool, picks, query, spaceAt) => {
        db.exec("delete from t");
        const insert = db.prepare("insert into t (id, value_index) values (?, ?)");
        const stored = picks.map((p, id) => ({ id, value: pool[p % pool.length]! }));
        for (const row of stored) insert.run(row.id, vault.blindIndex(INDEX, row.value));
        const wanted = pool[query % pool.length]!;
        const cut = spaceAt % wanted.length;
        const spaced = `${wanted.slice(0, cut)} ${wanted.slice(cut)}`;
        const got = (find.all(vault.blindIndex(INDEX, spaced)) as { id: number }[]).map((r) => r.id);
        assert.deepEqual(got, stored.filter((r) => r.value === wanted).map((r) => r.id));
      }),
      { numRuns: 100 },
    );
    db.close();
  });
}
