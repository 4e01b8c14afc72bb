// The first-start demo: on an empty database, a demo merchant account and one payment, so a
// newcomer can open the cashier URL printed at start and pay it with the simulator.
import type { PaymentService } from "./service.ts";
import { checkoutUrl } from "./view.ts";

export const DEMO_MERCHANT = "demo";
export const DEMO_ACCOUNT = "wallet:demo-merchant";

/** Creates the demo when the database has no payment yet; returns the cashier URL, or null. */
export async function seedDemo(payments: PaymentService): Promise<string | null> {
  const any = await payments.ctx.db.read.selectFrom("payments").select("id").limit(1).executeTakeFirst();
  if (any) return null;
  const [account] = await payments.ctx.engine.createAccounts(DEMO_MERCHANT, [
    { id: DEMO_ACCOUNT, currency: "CNY", code: 0, normalBalance: "credit", flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false }, owner: "Demo merchant", metadata: null },
  ]);
  if (account!.result === "exists_with_different_fields") return null;
  const { payment } = await payments.createPayment(DEMO_MERCHANT, {
    amount: 250000n,
    currency: "CNY",
    merchantAccountId: DEMO_ACCOUNT,
    description: "定金 / Deposit — demo contract HT-2023-0042",
    capture: "automatic",
    expiresInSeconds: 7 * 24 * 3600,
    returnUrl: `${payments.ctx.baseUrl()}/docs`,
    methods: ["alipay", "wechat_pay", "simulator"],
    contractRef: "HT-2023-0042",
  });
  return checkoutUrl(payments.ctx.baseUrl(), payment);
}
