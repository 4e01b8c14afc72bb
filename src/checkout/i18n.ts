// The cashier's languages and every word it shows a payer. zh-CN is the default; English by
// `?lang=en`, else by the browser's Accept-Language. Failure codes are told in words a payer
// understands, never the channel's own code.
import type { PaymentMethod } from "../channels/channel.ts";

export const LANGS = ["zh-CN", "en"] as const;
export type Lang = (typeof LANGS)[number];

/** Longest Accept-Language header read; anything longer is cut (browsers send under 200). */
const ACCEPT_LANGUAGE_CHARS_MAX = 512;

function langOf(tag: string): Lang | null {
  const t = tag.trim().toLowerCase();
  if (t === "zh" || t.startsWith("zh-")) return "zh-CN";
  if (t === "en" || t.startsWith("en-")) return "en";
  return null;
}

/** `?lang=` first, then Accept-Language by q-value, else zh-CN. */
export function pickLang(query: unknown, acceptLanguage: unknown): Lang {
  if (typeof query === "string") {
    const chosen = langOf(query);
    if (chosen) return chosen;
  }
  if (typeof acceptLanguage === "string") {
    const ranked = acceptLanguage
      .slice(0, ACCEPT_LANGUAGE_CHARS_MAX)
      .split(",")
      .map((entry, index) => {
        const [tag = "", ...params] = entry.split(";");
        const q = params.map((p) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p)).find(Boolean);
        return { lang: langOf(tag), q: q ? Number(q[1]) : 1, index };
      })
      .filter((e) => e.lang !== null && e.q > 0)
      .sort((a, b) => b.q - a.q || a.index - b.index);
    if (ranked[0]) return ranked[0].lang!;
  }
  return "zh-CN";
}

export const METHOD_LABELS: Readonly<Record<Lang, Readonly<Record<PaymentMethod, string>>>> = {
  "zh-CN": { alipay: "支付宝", wechat_pay: "微信支付", unionpay: "云闪付", card: "银行卡", simulator: "模拟支付" },
  en: { alipay: "Alipay", wechat_pay: "WeChat Pay", unionpay: "UnionPay", card: "Bank card", simulator: "Simulator" },
};

/** A short line under each method's name. */
export const METHOD_HINTS: Readonly<Record<Lang, Readonly<Record<PaymentMethod, string>>>> = {
  "zh-CN": { alipay: "支持花呗分期", wechat_pay: "使用微信扫码或在微信内支付", unionpay: "银联云闪付 App", card: "借记卡 / 信用卡", simulator: "沙箱环境，不会产生真实扣款" },
  en: { alipay: "Huabei installments available", wechat_pay: "Scan with WeChat or pay inside WeChat", unionpay: "UnionPay QuickPass app", card: "Debit or credit card", simulator: "Sandbox: no real money moves" },
};

/** Friendly text per unified failure code; `default` covers codes a payer can do nothing about. */
export const FAILURE_TEXT: Readonly<Record<Lang, Readonly<Record<string, string>>>> = {
  "zh-CN": {
    declined: "银行或支付机构拒绝了这笔付款，请换一种支付方式，或联系发卡银行。",
    insufficient_funds: "账户余额不足，请换一张卡或其他支付方式。",
    wrong_password: "支付密码不正确，请重试。",
    canceled_by_payer: "您已取消本次支付，可以重新选择支付方式。",
    expired: "本次支付已超时，请重新支付。",
    invalid_account: "付款账户无法使用，请换一种支付方式。",
    limit_exceeded: "超出了该支付方式的限额，请换一种支付方式。",
    identity_check_failed: "身份验证未通过，请换一种支付方式。",
    channel_error: "支付服务暂时出现问题，本次未扣款，请稍后重试。",
    timeout: "支付服务响应超时，请稍后重试。",
    default: "支付未能完成，本次未扣款，请重试或换一种支付方式。",
  },
  en: {
    declined: "Your bank or wallet declined this payment. Try another method or contact your bank.",
    insufficient_funds: "There isn't enough balance. Try another card or payment method.",
    wrong_password: "The payment password was incorrect. Please try again.",
    canceled_by_payer: "You canceled this payment. You can choose a method and pay again.",
    expired: "This payment attempt timed out. Please try again.",
    invalid_account: "This account can't be used. Try another payment method.",
    limit_exceeded: "This is over the limit of that payment method. Try another method.",
    identity_check_failed: "Identity verification failed. Try another payment method.",
    channel_error: "The payment service had a problem and you were not charged. Please try again shortly.",
    timeout: "The payment service did not respond in time. Please try again shortly.",
    default: "The payment didn't go through and you were not charged. Try again or use another method.",
  },
};

export function failureText(lang: Lang, code: string | null | undefined): string {
  const table = FAILURE_TEXT[lang];
  return (code && Object.hasOwn(table, code) ? table[code] : table.default)!;
}

export interface CashierText {
  readonly title: string;
  readonly brand: string;
  readonly otherLang: string;
  readonly orderLabel: string;
  readonly orderNumber: string;
  readonly amountLabel: string;
  readonly payBefore: string;
  readonly chooseMethod: string;
  readonly noInstallments: string;
  readonly installmentsTitle: string;
  /** {periods} {perPeriod} */
  readonly installmentLine: string;
  /** {fee} */
  readonly installmentFee: string;
  /** {rate} {feeTotal} */
  readonly installmentTotalFee: string;
  readonly installmentNote: string;
  readonly sandboxOutcome: string;
  readonly outcomes: Readonly<Record<"succeeded" | "declined" | "channel_error" | "pending", string>>;
  readonly pay: string;
  readonly payAgain: string;
  readonly paying: string;
  readonly failedTitle: string;
  readonly waitingTitle: string;
  readonly waitingDetail: string;
  readonly qrTitle: string;
  readonly qrOpen: string;
  readonly redirecting: string;
  readonly succeededTitle: string;
  readonly succeededDetail: string;
  /** {seconds} */
  readonly returningIn: string;
  readonly returnToMerchant: string;
  readonly canceledTitle: string;
  readonly canceledDetail: string;
  readonly expiredTitle: string;
  readonly expiredDetail: string;
  readonly trust: string;
  readonly poweredBy: string;
  readonly noscript: string;
  readonly networkError: string;
  readonly methodNotAllowed: string;
  readonly noChannel: string;
  readonly notFoundTitle: string;
  readonly notFoundDetail: string;
}

export const TEXT: Readonly<Record<Lang, CashierText>> = {
  "zh-CN": {
    title: "收银台",
    brand: "收银台",
    otherLang: "English",
    orderLabel: "订单信息",
    orderNumber: "订单号",
    amountLabel: "应付金额",
    payBefore: "请在 {time} 前完成支付",
    chooseMethod: "选择支付方式",
    noInstallments: "不分期",
    installmentsTitle: "花呗分期",
    installmentLine: "{perPeriod} × {periods}期",
    installmentFee: "手续费 {fee}/期",
    installmentTotalFee: "费率 {rate}，总手续费 {feeTotal}",
    installmentNote: "分期手续费由花呗向您收取，以支付宝页面为准。",
    sandboxOutcome: "沙箱结果",
    outcomes: { succeeded: "支付成功", declined: "被拒绝", channel_error: "渠道故障", pending: "等待通知" },
    pay: "确认支付",
    payAgain: "重新支付",
    paying: "正在提交…",
    failedTitle: "支付未成功",
    waitingTitle: "正在确认支付结果",
    waitingDetail: "请在支付应用中完成付款，完成后本页面会自动更新，请勿重复支付。",
    qrTitle: "请扫码完成支付",
    qrOpen: "打开支付链接",
    redirecting: "正在跳转到支付页面…",
    succeededTitle: "支付成功",
    succeededDetail: "商户已收到您的付款。",
    returningIn: "{seconds} 秒后自动返回商户",
    returnToMerchant: "返回商户",
    canceledTitle: "订单已取消",
    canceledDetail: "这笔订单已被商户取消，无需支付。",
    expiredTitle: "订单已过期",
    expiredDetail: "这笔订单已超过支付时间，请返回商户重新下单。",
    trust: "安全支付 · 本页面不会要求您输入银行卡密码或支付密码",
    poweredBy: "由 Tally 提供支付服务",
    noscript: "请开启浏览器的 JavaScript 后再支付。",
    networkError: "网络连接异常，请检查网络后重试。",
    methodNotAllowed: "这笔订单不支持该支付方式，请换一种支付方式。",
    noChannel: "该支付方式暂时不可用，请稍后重试或换一种支付方式。",
    notFoundTitle: "找不到这笔订单",
    notFoundDetail: "支付链接无效或已失效，请返回商户重新发起支付。",
  },
  en: {
    title: "Checkout",
    brand: "Checkout",
    otherLang: "中文",
    orderLabel: "Order",
    orderNumber: "Order no.",
    amountLabel: "Amount due",
    payBefore: "Please pay before {time}",
    chooseMethod: "Choose a payment method",
    noInstallments: "Pay in full",
    installmentsTitle: "Huabei installments",
    installmentLine: "{periods} × {perPeriod}",
    installmentFee: "fee {fee}/mo",
    installmentTotalFee: "rate {rate}, total fee {feeTotal}",
    installmentNote: "Huabei charges the installment fee to you; Alipay shows the final terms.",
    sandboxOutcome: "Sandbox outcome",
    outcomes: { succeeded: "Succeeds", declined: "Declined", channel_error: "Channel error", pending: "Pending (await notification)" },
    pay: "Pay",
    payAgain: "Try again",
    paying: "Submitting…",
    failedTitle: "Payment not completed",
    waitingTitle: "Confirming your payment",
    waitingDetail: "Finish paying in your payment app. This page updates by itself; please don't pay twice.",
    qrTitle: "Scan to pay",
    qrOpen: "Open the payment link",
    redirecting: "Taking you to the payment page…",
    succeededTitle: "Payment successful",
    succeededDetail: "The merchant has received your payment.",
    returningIn: "Returning to the merchant in {seconds} s",
    returnToMerchant: "Back to merchant",
    canceledTitle: "Payment canceled",
    canceledDetail: "The merchant canceled this payment. There is nothing to pay.",
    expiredTitle: "Payment expired",
    expiredDetail: "The time to pay has run out. Please return to the merchant and start again.",
    trust: "Secure payment · we never ask for your card PIN or password",
    poweredBy: "Payments by Tally",
    noscript: "Please turn on JavaScript to pay.",
    networkError: "Network problem. Check your connection and try again.",
    methodNotAllowed: "This payment can't be made with that method. Please choose another.",
    noChannel: "That payment method is unavailable right now. Try again shortly or choose another.",
    notFoundTitle: "Payment not found",
    notFoundDetail: "This payment link is invalid or no longer works. Please return to the merchant and start again.",
  },
};

/** Fills `{name}` placeholders. */
export function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? values[name]! : whole));
}
