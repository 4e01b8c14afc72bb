// Field types: normalisation and validation (400 validation_failed naming the field), masking
// and derived attributes, table-driven with real-format values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../../src/kernel/errors.ts";
import { FIELD_TYPES, type FieldTypeName } from "../../src/vault/index.ts";

interface Valid {
  readonly type: FieldTypeName;
  readonly raw: string;
  readonly normalised: string;
  readonly masked: string;
  readonly derived: Record<string, string>;
}

const VALID: readonly Valid[] = [
  // GB 11643's own examples: a check character X, and a birth year in the 1880s.
  { type: "resident_id", raw: "11010519491231002X", normalised: "11010519491231002X", masked: "110105********002X", derived: { region_code: "110105", birth_date: "1949-12-31", sex: "female" } },
  { type: "resident_id", raw: "11010519491231002x", normalised: "11010519491231002X", masked: "110105********002X", derived: { region_code: "110105", birth_date: "1949-12-31", sex: "female" } },
  { type: "resident_id", raw: "440524188001010014", normalised: "440524188001010014", masked: "440524********0014", derived: { region_code: "440524", birth_date: "1880-01-01", sex: "male" } },
  { type: "resident_id", raw: "1101 0519 8001 0112 38", normalised: "110105198001011238", masked: "110105********1238", derived: { region_code: "110105", birth_date: "1980-01-01", sex: "male" } },
  { type: "bank_card", raw: "6222 0212 3456 7893 445", normalised: "6222021234567893445", masked: "6222 **** **** 3445", derived: { bin: "622202", last4: "3445" } },
  { type: "bank_card", raw: "6228-4804-0256-4890-018", normalised: "6228480402564890018", masked: "6228 **** **** 0018", derived: { bin: "622848", last4: "0018" } },
  { type: "bank_card", raw: "4111111111111111", normalised: "4111111111111111", masked: "4111 **** **** 1111", derived: { bin: "411111", last4: "1111" } },
  { type: "bank_account", raw: "1100 1234 5678 9", normalised: "1100123456789", masked: "1100 **** **** 6789", derived: { bin: "110012", last4: "6789" } },
  { type: "mobile", raw: "13812345678", normalised: "13812345678", masked: "138****5678", derived: { prefix: "138" } },
  { type: "mobile", raw: "+86 139-1234-5678", normalised: "13912345678", masked: "139****5678", derived: { prefix: "139" } },
  { type: "mobile", raw: "008619912345678", normalised: "19912345678", masked: "199****5678", derived: { prefix: "199" } },
  { type: "person_name", raw: "张三", normalised: "张三", masked: "张*", derived: {} },
  { type: "person_name", raw: " 欧阳娜娜 ", normalised: "欧阳娜娜", masked: "欧**娜", derived: {} },
  { type: "person_name", raw: "John  Smith", normalised: "John Smith", masked: "J*** Smith", derived: {} },
  { type: "person_name", raw: "58同城", normalised: "58同城", masked: "5**城", derived: {} },
  { type: "person_name", raw: "阿依古丽·买买提", normalised: "阿依古丽·买买提", masked: "阿******提", derived: {} },
  { type: "email", raw: "john.smith@Example.COM", normalised: "john.smith@example.com", masked: "j***@example.com", derived: { domain: "example.com" } },
  { type: "email", raw: "张三@mail.example.cn", normalised: "张三@mail.example.cn", masked: "张***@mail.example.cn", derived: { domain: "mail.example.cn" } },
];

const INVALID: readonly (readonly [FieldTypeName, string, RegExp])[] = [
  ["resident_id", "110105194912310021", /check digit/],
  ["resident_id", "11010519491331002X", /birth date/],
  ["resident_id", "11010519490230002X", /birth date/],
  ["resident_id", "11010519491231002", /18-character/],
  ["resident_id", "01010519491231002X", /18-character/],
  ["resident_id", "1101051949123100XX", /18-character/],
  ["bank_card", "6222021234567893446", /Luhn/],
  ["bank_card", "62220212345", /12 to 19 digits/],
  ["bank_card", "6222abcd12345678", /12 to 19 digits/],
  ["bank_account", "1234", /8 to 30 digits/],
  ["mobile", "12812345678", /mobile/],
  ["mobile", "1381234567", /mobile/],
  ["mobile", "+1 415 555 0100", /mobile/],
  ["person_name", "   ", /empty/],
  ["person_name", "张三<b>", /a name/],
  ["person_name", "张三\u0000", /a name/],
  ["person_name", "x".repeat(101), /at most 100/],
  ["email", "john.example.com", /email/],
  ["email", "@example.com", /email/],
  ["email", "john@localhost", /email/],
];

test("valid values normalise, mask and derive as specified", () => {
  for (const v of VALID) {
    const type = FIELD_TYPES[v.type];
    const normalised = type.normalise(v.raw, "field");
    assert.equal(normalised, v.normalised, `${v.type} ${v.raw}`);
    assert.equal(type.mask(normalised), v.masked, `${v.type} ${v.raw}`);
    assert.deepEqual(type.derive(normalised), v.derived, `${v.type} ${v.raw}`);
    assert.equal(type.normalise(normalised, "field"), normalised, "normalising twice changes nothing");
  }
});

test("invalid values are 400 validation_failed naming the field", () => {
  for (const [name, raw, message] of INVALID) {
    assert.throws(
      () => FIELD_TYPES[name].normalise(raw, "party.id_number"),
      (e: unknown) => e instanceof ApiError && e.code === "validation_failed" && e.status === 400 && e.param === "party.id_number" && message.test(e.message) && e.message.startsWith("party.id_number"),
      `${name} ${raw}`,
    );
  }
});

test("a mask never contains the middle of the value", () => {
  for (const v of VALID) {
    if (v.type === "person_name" || v.type === "email") continue;
    const masked = FIELD_TYPES[v.type].mask(v.normalised);
    assert.ok(!masked.includes(v.normalised.slice(6, -4)), `${v.type} ${masked}`);
  }
});
