import assert from "node:assert/strict";
import { test } from "node:test";
import { validateProfile } from "../../src/arrivals/parsers/index.ts";
import { EXAMPLE } from "./fixtures.ts";


const withFields = (fields: Record<string, string>) => ({ ...EXAMPLE, fields: { ...EXAMPLE.fields, ...fields } });

test("profile: the ESCROW.md example is valid", () => {
  assert.deepEqual(validateProfile(EXAMPLE), { profile: EXAMPLE });
});

test("profile: camt054 and mt940 need only a format", () => {
  assert.ok("profile" in validateProfile({ format: "camt054" }));
  assert.ok("profile" in validateProfile({ format: "mt940", timezone: "Europe/Berlin", mt940_reference: "REF:([A-Z0-9]+)" }));
  assert.ok("profile" in validateProfile({ format: "camt054", encoding: "gb18030" }));
});

test("profile: CSV names header columns", () => {
  const csv = { format: "csv", fields: { amount: "金额", currency: "币种", bank_reference: "流水号", booked_at: "交易时间" }, amount_unit: "major", date_formats: ["yyyy-MM-dd HH:mm:ss"], timezone: "Asia/Shanghai" };
  assert.ok("profile" in validateProfile(csv));
  assert.deepEqual(validateProfile({ ...csv, fields: { ...csv.fields, entries: "$" } }), { error: "only applies to format json (CSV rows are the entries)", field: "fields.entries" });
});

const invalid: [string, unknown, string][] = [
  ["not an object", [], ""],
  ["null", null, ""],
  ["unknown format", { ...EXAMPLE, format: "xml" }, "format"],
  ["camt053 is a statement, not a notice format", { format: "camt053" }, "format"],
  ["unknown top-level key", { ...EXAMPLE, date_format: ["yyyy"] }, "date_format"],
  ["bad encoding", { format: "camt054", encoding: "latin1" }, "encoding"],
  ["bad time zone", { ...EXAMPLE, timezone: "China/Beijing" }, "timezone"],
  ["offset as a time zone", { ...EXAMPLE, timezone: "+08:00" }, "timezone"],
  ["no time zone for local formats", { ...EXAMPLE, timezone: undefined }, "timezone"],
  ["amount_unit", { ...EXAMPLE, amount_unit: "cents" }, "amount_unit"],
  ["missing amount_unit", { ...EXAMPLE, amount_unit: undefined }, "amount_unit"],
  ["no date formats", { ...EXAMPLE, date_formats: [] }, "date_formats"],
  ["date_formats not a list", { ...EXAMPLE, date_formats: "yyyyMMdd" }, "date_formats"],
  ["unknown date letter", { ...EXAMPLE, date_formats: ["yyyy-MM-dd", "yyyy-MM-dd hh:mm"] }, "date_formats[1]"],
  ["two-digit year", { ...EXAMPLE, date_formats: ["yyMMdd"] }, "date_formats[0]"],
  ["date format not a string", { ...EXAMPLE, date_formats: [20230101] }, "date_formats[0]"],
  ["entries missing", { ...EXAMPLE, fields: { ...EXAMPLE.fields, entries: undefined } }, "fields.entries"],
  ["entries not a JSONPath", withFields({ entries: "data.items" }), "fields.entries"],
  ["descendant segment", withFields({ entries: "$..items" }), "fields.entries"],
  ["filter", withFields({ entries: "$.data[?@.ok]" }), "fields.entries"],
  ["slice", withFields({ entries: "$.data[0:2]" }), "fields.entries"],
  ["union", withFields({ entries: "$['a','b']" }), "fields.entries"],
  ["function", withFields({ entries: "$.data.length()" }), "fields.entries"],
  ["field with a wildcard from the root", withFields({ account: "$.header[*].acct" }), "fields.account"],
  ["field with an empty segment", withFields({ account: "header..acct" }), "fields.account"],
  ["unknown field", withFields({ amout: "amt" }), "fields.amout"],
  ["empty field", withFields({ amount: "" }), "fields.amount"],
  ["amount missing", { ...EXAMPLE, fields: { ...EXAMPLE.fields, amount: undefined } }, "fields.amount"],
  ["bank_reference missing", { ...EXAMPLE, fields: { ...EXAMPLE.fields, bank_reference: undefined } }, "fields.bank_reference"],
  ["booked_at missing", { ...EXAMPLE, fields: { ...EXAMPLE.fields, booked_at: undefined } }, "fields.booked_at"],
  ["direction without credit_value", { ...EXAMPLE, fields: { ...EXAMPLE.fields, credit_value: undefined } }, "fields.credit_value"],
  ["no currency anywhere", { ...EXAMPLE, fields: { ...EXAMPLE.fields, currency: undefined } }, "fields.currency"],
  ["unknown default currency", { ...EXAMPLE, currency: "RMB" }, "currency"],
  ["mt940_reference without a group", { format: "mt940", mt940_reference: "REF:[A-Z]+" }, "mt940_reference"],
  ["mt940_reference not a regex", { format: "mt940", mt940_reference: "REF:(" }, "mt940_reference"],
  ["mt940_reference on json", { ...EXAMPLE, mt940_reference: "(x)" }, "mt940_reference"],
  ["fields on camt054", { format: "camt054", fields: { amount: "x" } }, "fields"],
  ["csv delimiter", { format: "csv", fields: { amount: "a", currency: "c", bank_reference: "r", booked_at: "t" }, amount_unit: "major", date_formats: ["yyyy"], timezone: "UTC", csv_delimiter: ";;" }, "csv_delimiter"],
];

for (const [name, profile, field] of invalid) {
  test(`profile invalid: ${name}`, () => {
    const clean = profile !== null && typeof profile === "object" && !Array.isArray(profile) ? JSON.parse(JSON.stringify(profile)) : profile;
    const r = validateProfile(clean);
    assert.ok("error" in r, JSON.stringify(r));
    assert.equal(r.field, field);
    assert.ok(r.error.length > 0);
  });
}

test("profile invalid: the error names what is not supported", () => {
  const r = validateProfile(withFields({ entries: "$..items" }));
  assert.ok("error" in r && /descendant/.test(r.error));
  const d = validateProfile({ ...EXAMPLE, date_formats: ["yyyy/MM/dd hh:mm"] });
  assert.ok("error" in d && /hh/.test(d.error));
});
