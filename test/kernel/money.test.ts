// Tests for the money kernel: exact parsing and formatting tables, plus property
// tests showing that allocation never creates or loses a minor unit.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CURRENCY_EXPONENTS,
  allocate,
  currencyExponent,
  formatMinor,
  isCurrency,
  money,
  parseMinor,
} from "../../src/kernel/money.ts";

// Property run count and seed come from the environment so CI can run longer
// campaigns and a failure can be replayed exactly.
const seedText = process.env.TALLY_PROPERTY_SEED;
const propertyParams: fc.Parameters<unknown> = {
  numRuns: Number(process.env.TALLY_PROPERTY_RUNS ?? 200),
  ...(seedText !== undefined && seedText !== "" ? { seed: Number(seedText) } : {}),
};

const CURRENCIES = Object.keys(CURRENCY_EXPONENTS);

test("currency table holds the required exponents", () => {
  const expected: Record<string, number> = {
    CNY: 2, USD: 2, EUR: 2, HKD: 2, JPY: 0, BHD: 3, GBP: 2, CHF: 2, SGD: 2, TWD: 2,
    MOP: 2, AUD: 2, CAD: 2, KRW: 0, KWD: 3, JOD: 3, OMR: 3, TND: 3, CLF: 4,
  };
  for (const [code, exponent] of Object.entries(expected)) {
    assert.equal(isCurrency(code), true, code);
    assert.equal(currencyExponent(code), exponent, code);
  }
  assert.ok(Object.isFrozen(CURRENCY_EXPONENTS));
});

test("unknown currencies are rejected", () => {
  for (const code of ["XXX", "cny", "", "toString", "__proto__", "hasOwnProperty"]) {
    assert.equal(isCurrency(code), false, code);
    assert.throws(() => currencyExponent(code), RangeError);
    assert.throws(() => formatMinor(1n, code), RangeError);
    const result = parseMinor("1.00", code);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "unknown_currency");
  }
});

test("parseMinor accepts valid amounts exactly", () => {
  const cases: Array<[string, string, bigint]> = [
    ["12.50", "CNY", 1250n],
    ["12.5", "CNY", 1250n],
    ["12", "CNY", 1200n],
    ["0.01", "CNY", 1n],
    ["12.500", "CNY", 1250n],
    ["12.5000000", "CNY", 1250n],
    ["007.50", "CNY", 750n],
    ["-12.50", "CNY", -1250n],
    ["-0.05", "CNY", -5n],
    ["0", "CNY", 0n],
    ["0.00", "CNY", 0n],
    ["1250", "JPY", 1250n],
    ["12.0", "JPY", 12n],
    ["-1250", "JPY", -1250n],
    ["1.234", "BHD", 1234n],
    ["1.2", "BHD", 1200n],
    ["0.0001", "CLF", 1n],
    ["123456789012345678901234567890.12", "USD", 12345678901234567890123456789012n],
    ["1".repeat(64), "JPY", BigInt("1".repeat(64))],
  ];
  for (const [text, currency, value] of cases) {
    assert.deepEqual(parseMinor(text, currency), { ok: true, value }, `${text} ${currency}`);
  }
});

test("parseMinor rejects amounts with too many decimals", () => {
  const cases: Array<[string, string]> = [
    ["12.505", "CNY"],
    ["0.001", "CNY"],
    ["12.5001", "CNY"],
    ["12.5", "JPY"],
    ["12.01", "JPY"],
    ["1.2345", "BHD"],
    ["-12.505", "CNY"],
  ];
  for (const [text, currency] of cases) {
    const result = parseMinor(text, currency);
    assert.equal(result.ok, false, `${text} ${currency}`);
    if (!result.ok) {
      assert.equal(result.code, "too_many_decimals", `${text} ${currency}`);
      assert.ok(result.message.length > 0);
    }
  }
});

test("parseMinor rejects malformed amounts", () => {
  const cases = [
    "",
    " 12",
    "12 ",
    "+12",
    "1e3",
    ".5",
    "12.",
    "1,234.50",
    "0x10",
    "١٢",
    "１２",
    "--1",
    "-",
    "-.5",
    "NaN",
    "Infinity",
    "-Infinity",
    "12.5.0",
    "1_000",
    "12\n",
    "1".repeat(65),
    "-" + "1".repeat(64),
  ];
  for (const text of cases) {
    const result = parseMinor(text, "CNY");
    assert.equal(result.ok, false, JSON.stringify(text));
    if (!result.ok) {
      assert.equal(result.code, "invalid_amount", JSON.stringify(text));
      assert.ok(result.message.length > 0);
    }
  }
});

test("formatMinor prints the canonical decimal form", () => {
  const cases: Array<[bigint, string, string]> = [
    [1250n, "CNY", "12.50"],
    [-5n, "CNY", "-0.05"],
    [0n, "CNY", "0.00"],
    [1n, "CNY", "0.01"],
    [-1250n, "CNY", "-12.50"],
    [100n, "USD", "1.00"],
    [1250n, "JPY", "1250"],
    [0n, "JPY", "0"],
    [-7n, "KRW", "-7"],
    [1234n, "BHD", "1.234"],
    [5n, "BHD", "0.005"],
    [1n, "CLF", "0.0001"],
    [2n ** 80n, "USD", "12089258196146291747061.76"],
  ];
  for (const [amount, currency, text] of cases) {
    assert.equal(formatMinor(amount, currency), text, `${amount} ${currency}`);
  }
});

// The largest magnitude whose formatted text still fits the parser's 64-character
// limit in every currency: 62 digits plus a sign and a decimal point.
const ROUND_TRIP_LIMIT = 10n ** 62n - 1n;

for (const currency of CURRENCIES) {
  test(`formatMinor/parseMinor round trip in ${currency}`, () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -ROUND_TRIP_LIMIT, max: ROUND_TRIP_LIMIT }), (amount) => {
        assert.deepEqual(parseMinor(formatMinor(amount, currency), currency), {
          ok: true,
          value: amount,
        });
      }),
      propertyParams,
    );
  });
}

test("allocate worked examples", () => {
  assert.deepEqual(allocate(100n, [1n, 1n, 1n]), [34n, 33n, 33n]);
  // 5*3/10 = 1.5 and 5*7/10 = 3.5: both remainders are 5/10, so the tie goes to
  // the lower index and the split is [2, 3].
  assert.deepEqual(allocate(5n, [3n, 7n]), [2n, 3n]);
  assert.deepEqual(allocate(-100n, [1n, 1n, 1n]), [-34n, -33n, -33n]);
  assert.deepEqual(allocate(0n, [1n, 2n]), [0n, 0n]);
  assert.deepEqual(allocate(10n, [0n, 1n, 0n]), [0n, 10n, 0n]);
  assert.deepEqual(allocate(7n, [5n]), [7n]);
  // Remainders 1/6, 2/6, 3/6 for ratios 1, 2, 3 of 1: the single unit goes to the largest.
  assert.deepEqual(allocate(1n, [1n, 2n, 3n]), [0n, 0n, 1n]);
  assert.deepEqual(allocate(2n, [1n, 1n, 1n, 1n]), [1n, 1n, 0n, 0n]);
});

test("allocate rejects invalid ratios", () => {
  assert.throws(() => allocate(100n, []), RangeError);
  assert.throws(() => allocate(100n, [0n]), RangeError);
  assert.throws(() => allocate(100n, [0n, 0n, 0n]), RangeError);
  assert.throws(() => allocate(100n, [-1n, 2n]), RangeError);
  assert.throws(() => allocate(-100n, [3n, -1n]), RangeError);
});

const amountArb = fc.oneof(
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.bigInt({ min: -1000n, max: 1000n }),
);
const ratioArb = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 10n }),
  fc.bigInt({ min: 0n, max: 2n ** 64n }),
);
const ratiosArb = fc
  .array(ratioArb, { minLength: 1, maxLength: 20 })
  .filter((ratios) => ratios.some((ratio) => ratio > 0n));

const sum = (values: readonly bigint[]): bigint => values.reduce((a, b) => a + b, 0n);
const abs = (value: bigint): bigint => (value < 0n ? -value : value);

test("allocate never creates or loses a minor unit", () => {
  fc.assert(
    fc.property(amountArb, ratiosArb, (amount, ratios) => {
      const shares = allocate(amount, ratios);
      assert.equal(shares.length, ratios.length);
      assert.equal(sum(shares), amount);
    }),
    propertyParams,
  );
});

test("allocate keeps every share within one minor unit of its exact proportion", () => {
  fc.assert(
    fc.property(amountArb, ratiosArb, (amount, ratios) => {
      const total = sum(ratios);
      const shares = allocate(amount, ratios);
      shares.forEach((share, i) => {
        const ratio = ratios[i]!;
        assert.ok(abs(share * total - amount * ratio) < total, `share ${i}`);
        if (ratio === 0n) assert.equal(share, 0n);
      });
    }),
    propertyParams,
  );
});

test("allocate gives leftover units to the largest remainders, ties to the lower index", () => {
  fc.assert(
    fc.property(amountArb, ratiosArb, (amount, ratios) => {
      const total = sum(ratios);
      const magnitude = abs(amount);
      const shares = allocate(magnitude, ratios);
      const remainders = ratios.map((ratio) => (magnitude * ratio) % total);
      const bumped = shares.map((share, i) => share * total > magnitude * ratios[i]!);
      for (let i = 0; i < ratios.length; i++) {
        for (let j = 0; j < ratios.length; j++) {
          if (!bumped[i] || bumped[j]) continue;
          const ri = remainders[i]!;
          const rj = remainders[j]!;
          assert.ok(ri > rj || (ri === rj && i < j), `share ${i} bumped over ${j}`);
        }
      }
    }),
    propertyParams,
  );
});

test("allocate of a negative amount mirrors its absolute value", () => {
  fc.assert(
    fc.property(amountArb, ratiosArb, (amount, ratios) => {
      assert.deepEqual(
        allocate(-amount, ratios),
        allocate(amount, ratios).map((share) => -share),
      );
    }),
    propertyParams,
  );
});

test("allocate is deterministic", () => {
  fc.assert(
    fc.property(amountArb, ratiosArb, (amount, ratios) => {
      const copy = [...ratios];
      assert.deepEqual(allocate(amount, ratios), allocate(amount, copy));
      assert.deepEqual(ratios, copy);
    }),
    propertyParams,
  );
});

test("money validates its currency and amount type", () => {
  const m = money(1250n, "CNY");
  assert.deepEqual(m, { amountMinor: 1250n, currency: "CNY" });
  assert.ok(Object.isFrozen(m));
  assert.throws(() => money(1n, "XXX"), RangeError);
  assert.throws(() => money(12.5 as unknown as bigint, "CNY"), TypeError);
});
