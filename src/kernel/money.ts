// Exact money arithmetic for the ledger: amounts are always bigint minor units
// (cents, fils, yen), so no floating-point rounding can ever create or lose value.
// This module owns the currency table, the decimal-string parser and formatter,
// and the largest-remainder allocation used to split an amount across parties.

// Minor-unit exponents from ISO 4217. The table is frozen because every amount in
// the system is interpreted through it; changing an exponent at runtime would
// silently rescale stored balances.
export const CURRENCY_EXPONENTS = Object.freeze({
  AUD: 2,
  BHD: 3,
  CAD: 2,
  CHF: 2,
  CLF: 4,
  CNY: 2,
  EUR: 2,
  GBP: 2,
  HKD: 2,
  JOD: 3,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  MOP: 2,
  OMR: 3,
  SGD: 2,
  TND: 3,
  TWD: 2,
  USD: 2,
} as const);

export type CurrencyCode = keyof typeof CURRENCY_EXPONENTS;

export type Money = { readonly amountMinor: bigint; readonly currency: string };

export type ParseMinorResult =
  | { ok: true; value: bigint }
  | {
      ok: false;
      code: "invalid_amount" | "too_many_decimals" | "unknown_currency";
      message: string;
    };

// Anything longer is far beyond any real amount and is rejected before doing
// bigint work on attacker-controlled input.
const MAX_AMOUNT_TEXT_LENGTH = 64;

// Only plain ASCII digits with an optional sign and fraction are accepted, so that
// exponents, grouping separators, hex, and non-ASCII digits never reach BigInt().
const AMOUNT_PATTERN = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

export function isCurrency(code: string): code is CurrencyCode {
  // Object.hasOwn keeps inherited names such as "toString" from counting as currencies.
  return Object.hasOwn(CURRENCY_EXPONENTS, code);
}

export function currencyExponent(code: string): number {
  if (!isCurrency(code)) {
    throw new RangeError(`Unknown currency: ${JSON.stringify(code)}`);
  }
  return CURRENCY_EXPONENTS[code];
}

export function parseMinor(text: string, currency: string): ParseMinorResult {
  if (!isCurrency(currency)) {
    return {
      ok: false,
      code: "unknown_currency",
      message: `Unknown currency: ${JSON.stringify(currency)}`,
    };
  }
  const exponent = CURRENCY_EXPONENTS[currency];

  if (text.length > MAX_AMOUNT_TEXT_LENGTH) {
    return {
      ok: false,
      code: "invalid_amount",
      message: `Amount is longer than ${MAX_AMOUNT_TEXT_LENGTH} characters`,
    };
  }
  const match = AMOUNT_PATTERN.exec(text);
  if (match === null) {
    return {
      ok: false,
      code: "invalid_amount",
      message: `Not a decimal amount: ${JSON.stringify(text)}`,
    };
  }
  const sign = match[1] ?? "";
  const whole = match[2] ?? "0";
  const fraction = match[3] ?? "";

  // Extra fractional digits are harmless only when they are zeros; anything else
  // would have to be rounded, and rounding money is the caller's decision, not ours.
  const significant = fraction.slice(0, exponent);
  const excess = fraction.slice(exponent);
  if (/[^0]/.test(excess)) {
    return {
      ok: false,
      code: "too_many_decimals",
      message: `${currency} allows at most ${exponent} decimal places: ${JSON.stringify(text)}`,
    };
  }

  const magnitude = BigInt(whole + significant.padEnd(exponent, "0"));
  return { ok: true, value: sign === "-" ? -magnitude : magnitude };
}

export function formatMinor(amountMinor: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString();
  const sign = negative ? "-" : "";
  if (exponent === 0) {
    return sign + digits;
  }
  // Padding guarantees at least one whole digit, so 5 cents prints as "0.05".
  const padded = digits.padStart(exponent + 1, "0");
  const split = padded.length - exponent;
  return `${sign}${padded.slice(0, split)}.${padded.slice(split)}`;
}

export function allocate(amountMinor: bigint, ratios: readonly bigint[]): bigint[] {
  if (ratios.length === 0) {
    throw new RangeError("allocate needs at least one ratio");
  }
  let total = 0n;
  for (const ratio of ratios) {
    if (ratio < 0n) {
      throw new RangeError(`allocate ratios must be non-negative, got ${ratio}`);
    }
    total += ratio;
  }
  if (total === 0n) {
    throw new RangeError("allocate ratios must have a positive sum");
  }

  // Working on the absolute value keeps floor division and the remainder ordering
  // identical for debits and credits, so a refund mirrors its charge exactly.
  if (amountMinor < 0n) {
    return allocate(-amountMinor, ratios).map((share) => -share);
  }

  const shares: bigint[] = [];
  const remainders: bigint[] = [];
  let assigned = 0n;
  for (const ratio of ratios) {
    const scaled = amountMinor * ratio;
    const share = scaled / total;
    shares.push(share);
    remainders.push(scaled % total);
    assigned += share;
  }

  // The leftover is smaller than the number of shares with a non-zero remainder,
  // so each unit lands on a distinct share and no share moves a full unit away
  // from its exact proportion.
  let leftover = amountMinor - assigned;
  const order = ratios.map((_, index) => index);
  order.sort((a, b) => {
    const ra = remainders[a]!;
    const rb = remainders[b]!;
    if (ra !== rb) return ra > rb ? -1 : 1;
    return a - b;
  });
  for (const index of order) {
    if (leftover === 0n) break;
    shares[index] = shares[index]! + 1n;
    leftover -= 1n;
  }
  return shares;
}

export function money(amountMinor: bigint, currency: string): Money {
  // Untyped callers (decoded JSON, plain JS) could pass a number here; refusing it
  // keeps floating-point values out of the ledger entirely.
  if (typeof amountMinor !== "bigint") {
    throw new TypeError(`Money amount must be a bigint, got ${typeof amountMinor}`);
  }
  if (!isCurrency(currency)) {
    throw new RangeError(`Unknown currency: ${JSON.stringify(currency)}`);
  }
  return Object.freeze({ amountMinor, currency });
}
