// Huabei installment plans: the fee per plan, and periods that add up to the amount plus the fee
// to the fen (largest remainder), for amounts that divide evenly and amounts that do not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { INSTALLMENT_AMOUNT_MIN, installmentFee, installmentPlan, installmentPlansFor } from "../../src/checkout/installments.ts";

test("plans: fee, per-period principal and fee, for each rate", () => {
  const cases = [
    // amount (fen), periods, fee total, principals, fees
    { amount: 250_000n, periods: 3, feeTotal: 5_750n, principals: [83_334n, 83_333n, 83_333n], fees: [1_917n, 1_917n, 1_916n] },
    { amount: 250_000n, periods: 6, feeTotal: 11_250n, principals: [41_667n, 41_667n, 41_667n, 41_667n, 41_666n, 41_666n], fees: [1_875n, 1_875n, 1_875n, 1_875n, 1_875n, 1_875n] },
    { amount: 250_000n, periods: 12, feeTotal: 18_750n, principals: [20_834n, 20_834n, 20_834n, 20_834n, 20_833n, 20_833n, 20_833n, 20_833n, 20_833n, 20_833n, 20_833n, 20_833n], fees: [1_563n, 1_563n, 1_563n, 1_563n, 1_563n, 1_563n, 1_562n, 1_562n, 1_562n, 1_562n, 1_562n, 1_562n] },
    { amount: 30_000n, periods: 3, feeTotal: 690n, principals: [10_000n, 10_000n, 10_000n], fees: [230n, 230n, 230n] },
    // 10001 × 2.3% = 230.023 → 230; 10001 × 4.5% = 450.045 → 450; 10001 × 7.5% = 750.075 → 750
    { amount: 10_001n, periods: 3, feeTotal: 230n, principals: [3_334n, 3_334n, 3_333n], fees: [77n, 77n, 76n] },
    { amount: 10_001n, periods: 6, feeTotal: 450n, principals: [1_667n, 1_667n, 1_667n, 1_667n, 1_667n, 1_666n], fees: [75n, 75n, 75n, 75n, 75n, 75n] },
    { amount: 10_001n, periods: 12, feeTotal: 750n, principals: [834n, 834n, 834n, 834n, 834n, 833n, 833n, 833n, 833n, 833n, 833n, 833n], fees: [63n, 63n, 63n, 63n, 63n, 63n, 62n, 62n, 62n, 62n, 62n, 62n] },
  ] as const;
  for (const c of cases) {
    const plan = installmentPlan(c.amount, c.periods);
    const label = `${c.amount} in ${c.periods}`;
    assert.equal(plan.periods, c.periods, label);
    assert.equal(plan.feeTotal, c.feeTotal, label);
    assert.deepEqual(plan.schedule.map((p) => p.principal), c.principals, label);
    assert.deepEqual(plan.schedule.map((p) => p.fee), c.fees, label);
    assert.deepEqual(plan.schedule.map((p) => p.total), c.principals.map((p, i) => p + c.fees[i]!), label);
  }
});

test("the fee is rounded half up to the fen", () => {
  const cases: [bigint, bigint, bigint][] = [
    // amount, basis points, fee
    [100n, 230n, 2n], // 2.3 → 2
    [50n, 750n, 4n], // 3.75 → 4
    [20n, 750n, 2n], // 1.5 → 2 (half up)
    [60n, 750n, 5n], // 4.5 → 5
    [1n, 230n, 0n], // 0.023 → 0
    [0n, 450n, 0n],
    [99_999_999_999n, 750n, 7_500_000_000n], // 7,499,999,999.925 → 7,500,000,000
  ];
  for (const [amount, rate, fee] of cases) assert.equal(installmentFee(amount, rate), fee, `${amount} at ${rate} bp`);
});

test("no fen is lost: the periods always add up to amount + fee", () => {
  for (const amount of [10_000n, 10_001n, 10_007n, 99_999n, 123_457n, 250_000n, 100_000_000_000n]) {
    for (const periods of [3, 6, 12] as const) {
      const plan = installmentPlan(amount, periods);
      assert.equal(plan.schedule.length, periods);
      const principal = plan.schedule.reduce((sum, p) => sum + p.principal, 0n);
      const fee = plan.schedule.reduce((sum, p) => sum + p.fee, 0n);
      assert.equal(principal, amount, `principal of ${amount} in ${periods}`);
      assert.equal(fee, plan.feeTotal, `fee of ${amount} in ${periods}`);
      // Largest remainder: periods differ by at most one fen, earlier ones first.
      const totals = plan.schedule.map((p) => p.total);
      assert.ok(totals.every((t, i) => i === 0 || totals[i - 1]! >= t), `non-increasing ${totals}`);
      assert.ok(totals[0]! - totals[totals.length - 1]! <= 2n);
    }
  }
});

test("plans are offered for CNY payments with Alipay from the minimum amount", () => {
  const cases: [bigint, string, string[], number[]][] = [
    [250_000n, "CNY", ["alipay", "simulator"], [3, 6, 12]],
    [INSTALLMENT_AMOUNT_MIN, "CNY", ["alipay"], [3, 6, 12]],
    [INSTALLMENT_AMOUNT_MIN - 1n, "CNY", ["alipay"], []],
    [250_000n, "CNY", ["wechat_pay", "simulator"], []],
    [250_000n, "USD", ["alipay"], []],
  ];
  for (const [amount, currency, methods, periods] of cases) {
    assert.deepEqual(installmentPlansFor(amount, currency, methods).map((p) => p.periods), periods, `${amount} ${currency} ${methods}`);
  }
});
