// Alipay Huabei (花呗) installment plans as the cashier shows them: the payer pays a fee on top
// of the amount, a fixed rate of the amount per plan. The total fee is rounded to the minor unit
// once, then split over the periods by largest remainder (as is the principal), so the periods
// always add up to exactly the amount plus the fee: no fen is lost or invented.
import { allocate } from "../kernel/money.ts";
import { INSTALLMENT_PERIODS } from "../payments/index.ts";

export { INSTALLMENT_PERIODS };
export type InstallmentPeriods = (typeof INSTALLMENT_PERIODS)[number];

/** Payer-borne Huabei fee rates in basis points (1/100 of a percent): 3期 2.3%, 6期 4.5%, 12期 7.5%. */
export const HUABEI_FEE_RATE_BASIS_POINTS: Readonly<Record<InstallmentPeriods, bigint>> = { 3: 230n, 6: 450n, 12: 750n };

/** Plans are offered from this amount (CNY fen) up: below it a period would be a few yuan. */
export const INSTALLMENT_AMOUNT_MIN = 10_000n;

export interface InstallmentPeriod {
  readonly principal: bigint;
  readonly fee: bigint;
  /** principal + fee: what the payer pays in this period. */
  readonly total: bigint;
}

export interface InstallmentPlan {
  readonly periods: InstallmentPeriods;
  readonly rateBasisPoints: bigint;
  readonly feeTotal: bigint;
  /** One entry per period, in order; earlier periods carry the leftover minor units. */
  readonly schedule: readonly InstallmentPeriod[];
}

/** The fee for `amountMinor` at `rateBasisPoints`, rounded half up to the minor unit. */
export function installmentFee(amountMinor: bigint, rateBasisPoints: bigint): bigint {
  return (amountMinor * rateBasisPoints + 5_000n) / 10_000n;
}

export function installmentPlan(amountMinor: bigint, periods: InstallmentPeriods): InstallmentPlan {
  if (amountMinor < 0n) throw new RangeError("an installment plan needs a non-negative amount");
  const rateBasisPoints = HUABEI_FEE_RATE_BASIS_POINTS[periods];
  const feeTotal = installmentFee(amountMinor, rateBasisPoints);
  const equal = Array.from({ length: periods }, () => 1n);
  const principals = allocate(amountMinor, equal);
  const fees = allocate(feeTotal, equal);
  const schedule = principals.map((principal, i) => ({ principal, fee: fees[i]!, total: principal + fees[i]! }));
  return { periods, rateBasisPoints, feeTotal, schedule };
}

/** The plans a payment may offer: CNY, Alipay among its methods, and at least the minimum amount. */
export function installmentPlansFor(amountMinor: bigint, currency: string, methods: readonly string[]): InstallmentPlan[] {
  if (currency !== "CNY" || !methods.includes("alipay") || amountMinor < INSTALLMENT_AMOUNT_MIN) return [];
  return INSTALLMENT_PERIODS.map((periods) => installmentPlan(amountMinor, periods));
}
