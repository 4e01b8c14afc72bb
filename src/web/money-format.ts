// Amounts for people to read, formatted by Intl exactly as
// `Intl.NumberFormat(locale, {style: "currency", currency})` would, but from bigint minor units:
// Intl formats the whole part (a BigInt, so no float is involved) and the fraction digits are
// put in from the minor units as they are.
import { assert } from "../kernel/assert.ts";
import { currencyExponent } from "../kernel/money.ts";

const formats = new Map<string, Intl.NumberFormat>();

function numberFormat(locale: string, currency: string, exponent: number): Intl.NumberFormat {
  const key = `${locale}\u0000${currency}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale, { style: "currency", currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent });
    formats.set(key, format);
  }
  return format;
}

/** `formatMoney(250000n, "CNY", "zh-CN")` → `¥2,500.00`; in `en` → `CN¥2,500.00`. */
export function formatMoney(amountMinor: bigint, currency: string, locale: string): string {
  assert(amountMinor >= 0n, "a displayed amount is never negative");
  const exponent = currencyExponent(currency);
  const scale = 10n ** BigInt(exponent);
  const fraction = (amountMinor % scale).toString().padStart(exponent, "0");
  let out = "";
  for (const part of numberFormat(locale, currency, exponent).formatToParts(amountMinor / scale)) {
    out += part.type === "fraction" ? fraction : part.value;
  }
  return out;
}
