// Exact decimal amounts for bank files: decimal strings to bigint minor units and back, never
// through floating point. The kernel's currency table (src/kernel/money.ts) wins where it knows a
// currency; bank statements also carry currencies the ledger does not trade in (SEK, HUF, PLN,
// RON ...), so the rest of ISO 4217 is listed here with its exponents.

import { CURRENCY_EXPONENTS, isCurrency } from "../../kernel/money.ts";

const ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(" ");
const THREE = "BHD IQD JOD KWD LYD OMR TND".split(" ");
const FOUR = "CLF UYW".split(" ");
const TWO = (
  "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN " +
  "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP " +
  "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP " +
  "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR " +
  "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP " +
  "STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER " +
  "ZAR ZMW ZWG ZWL"
).split(" ");

const ISO_EXPONENTS: ReadonlyMap<string, number> = new Map<string, number>([
  ...TWO.map((c) => [c, 2] as const),
  ...ZERO.map((c) => [c, 0] as const),
  ...THREE.map((c) => [c, 3] as const),
  ...FOUR.map((c) => [c, 4] as const),
]);

/** The minor-unit exponent of an ISO 4217 code, or null for an unknown code. */
export function exponentOf(currency: string): number | null {
  if (isCurrency(currency)) return CURRENCY_EXPONENTS[currency];
  return ISO_EXPONENTS.get(currency) ?? null;
}

export type DecimalResult =
  | { ok: true; value: bigint }
  | { ok: false; code: "invalid_amount" | "too_many_decimals" | "unknown_currency" };

const MAX_TEXT = 64;
const DOT_PATTERN = /^(-?)([0-9]+)(?:\.([0-9]*))?$/;
const COMMA_PATTERN = /^(-?)([0-9]+)(?:,([0-9]*))?$/;

/**
 * A decimal string ("1234.50", "50000", "131.7"; with `comma`, MT940's "9," and "0,01") to
 * signed minor units. Same rules as the kernel's parseMinor: extra fractional digits are allowed
 * only when they are zeros ("5442.09000"); anything that would need rounding is
 * `too_many_decimals`. A trailing separator without digits is accepted only for MT940 (comma).
 */
export function decimalToMinor(
  text: string,
  currency: string,
  options: { comma?: boolean } = {},
): DecimalResult {
  const exponent = exponentOf(currency);
  if (exponent === null) return { ok: false, code: "unknown_currency" };
  if (text.length === 0 || text.length > MAX_TEXT) return { ok: false, code: "invalid_amount" };
  const match = (options.comma === true ? COMMA_PATTERN : DOT_PATTERN).exec(text);
  if (match === null) return { ok: false, code: "invalid_amount" };
  const fraction = match[3] ?? "";
  if (options.comma !== true && match[3] !== undefined && fraction.length === 0) {
    return { ok: false, code: "invalid_amount" };
  }
  if (/[^0]/.test(fraction.slice(exponent))) return { ok: false, code: "too_many_decimals" };
  const magnitude = BigInt((match[2] ?? "0") + fraction.slice(0, exponent).padEnd(exponent, "0"));
  return { ok: true, value: match[1] === "-" ? -magnitude : magnitude };
}

/** Minor units to a decimal string with exactly the currency's decimals ("-12.30"). */
export function minorToDecimal(value: bigint, currency: string): string {
  const exponent = exponentOf(currency);
  if (exponent === null) throw new RangeError(`Unknown currency: ${JSON.stringify(currency)}`);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString();
  if (exponent === 0) return (negative ? "-" : "") + digits;
  const padded = digits.padStart(exponent + 1, "0");
  const split = padded.length - exponent;
  return `${negative ? "-" : ""}${padded.slice(0, split)}.${padded.slice(split)}`;
}
