import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CURRENCY_EXPONENTS, parseMinor } from "../../src/kernel/money.ts";
import { decimalToMinor, exponentOf, minorToDecimal } from "../../src/arrivals/parsers/decimal.ts";

const table: [string, string, boolean, bigint | string][] = [
  // text, currency, MT940 comma?, minor units or failure code
  ["1234.50", "CNY", false, 123450n],
  ["1234.5", "CNY", false, 123450n],
  ["1234", "CNY", false, 123400n],
  ["0.01", "CNY", false, 1n],
  ["5442.09000", "RON", false, 544209n], // zeros beyond the exponent are exact
  ["50000", "EUR", false, 5000000n],
  ["131.7", "EUR", false, 13170n],
  ["2700", "JPY", false, 2700n],
  ["2700.0", "JPY", false, 2700n],
  ["1.234", "BHD", false, 1234n],
  ["99999999999999999999.99", "CNY", false, 9999999999999999999999n], // beyond 2^53, still exact
  ["1.005", "CNY", false, "too_many_decimals"],
  ["0.001", "EUR", false, "too_many_decimals"],
  ["2700.5", "JPY", false, "too_many_decimals"],
  ["1,234.50", "CNY", false, "invalid_amount"],
  ["1e3", "CNY", false, "invalid_amount"],
  [" 12.00", "CNY", false, "invalid_amount"],
  ["12.", "CNY", false, "invalid_amount"],
  [".5", "CNY", false, "invalid_amount"],
  ["+12", "CNY", false, "invalid_amount"],
  ["0x10", "CNY", false, "invalid_amount"],
  ["١٢", "CNY", false, "invalid_amount"],
  ["", "CNY", false, "invalid_amount"],
  ["12.00", "XYZ", false, "unknown_currency"],
  ["1".repeat(65), "CNY", false, "invalid_amount"],
  // MT940
  ["9,", "EUR", true, 900n],
  ["0,01", "PLN", true, 1n],
  ["500", "EUR", true, 50000n],
  ["000000001213,28", "EUR", true, 121328n],
  ["2402,00", "HUF", true, 240200n],
  ["1,5", "EUR", true, 150n],
  ["1,234", "EUR", true, "too_many_decimals"],
  ["1.50", "EUR", true, "invalid_amount"],
  ["1,2,3", "EUR", true, "invalid_amount"],
];

for (const [text, ccy, comma, want] of table) {
  test(`amount ${JSON.stringify(text)} ${ccy}${comma ? " (MT940)" : ""}`, () => {
    const r = decimalToMinor(text, ccy, { comma });
    if (typeof want === "bigint") assert.deepEqual(r, { ok: true, value: want });
    else assert.deepEqual(r, { ok: false, code: want });
  });
}

test("currency exponents agree with the kernel's table", () => {
  for (const [code, exponent] of Object.entries(CURRENCY_EXPONENTS)) assert.equal(exponentOf(code), exponent, code);
  assert.equal(exponentOf("SEK"), 2);
  assert.equal(exponentOf("HUF"), 2);
  assert.equal(exponentOf("ISK"), 0);
  assert.equal(exponentOf("KWD"), 3);
  assert.equal(exponentOf("toString"), null);
});

test("property: any minor amount formatted as a decimal parses back exactly, as the kernel does", () => {
  const currencies = ["CNY", "JPY", "BHD", "CLF", "EUR", "SEK", "HUF", "KRW"];
  fc.assert(
    fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.constantFrom(...currencies), fc.nat({ max: 3 }), (value, ccy, zeros) => {
      const text = minorToDecimal(value, ccy);
      const withZeros = exponentOf(ccy)! > 0 ? text + "0".repeat(zeros) : text;
      assert.deepEqual(decimalToMinor(withZeros, ccy), { ok: true, value });
      if (ccy in CURRENCY_EXPONENTS && withZeros.length <= 64) {
        const k = parseMinor(withZeros, ccy);
        assert.ok(k.ok && k.value === value);
      }
      // MT940 writes the same value with a decimal comma and no sign.
      if (value >= 0n) assert.deepEqual(decimalToMinor(withZeros.replace(".", ","), ccy, { comma: true }), { ok: true, value });
    }),
    { numRuns: 2000 },
  );
});
