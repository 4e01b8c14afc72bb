// The cashier page, rendered on the server: every merchant-supplied string is escaped here, the
// amounts arrive already formatted, and the page's one inline script and style carry the
// response's CSP nonce. What the script does is in assets/cashier.js.
import { readFileSync } from "node:fs";
import type { PaymentMethod } from "../channels/channel.ts";
import { escapeHtml, jsonForScript } from "../web/index.ts";
import { FAILURE_TEXT, METHOD_HINTS, METHOD_LABELS, TEXT, failureText, fill, type Lang } from "./i18n.ts";

const STYLE = readFileSync(new URL("./assets/cashier.css", import.meta.url), "utf8");
const SCRIPT = readFileSync(new URL("./assets/cashier.js", import.meta.url), "utf8");

/** Seconds the success view waits before it returns the payer to the merchant. */
export const AUTO_RETURN_SECONDS = 3;

export type CheckoutStatus = "requires_payment_method" | "processing" | "requires_capture" | "succeeded" | "failed" | "canceled" | "expired";

export interface PlanView {
  readonly periods: number;
  readonly perPeriodText: string;
  readonly feePerPeriodText: string;
  readonly feeTotalText: string;
  readonly rateText: string;
}

export interface CheckoutView {
  readonly lang: Lang;
  readonly paymentId: string;
  readonly description: string | null;
  readonly amountText: string;
  readonly status: CheckoutStatus;
  readonly failureCode: string | null;
  readonly methods: readonly PaymentMethod[];
  readonly plans: readonly PlanView[];
  /** Already checked to be http(s); null when there is none (or it was not safe). */
  readonly returnUrl: string | null;
  readonly expiresAtText: string;
  readonly statusUrl: string;
  readonly attemptsUrl: string;
  readonly otherLangUrl: string;
  readonly latestAttempt: unknown;
}

const BADGE: Readonly<Record<Lang, Readonly<Record<PaymentMethod, string>>>> = {
  "zh-CN": { alipay: "支", wechat_pay: "微", unionpay: "云", card: "卡", simulator: "模" },
  en: { alipay: "A", wechat_pay: "W", unionpay: "U", card: "C", simulator: "S" },
};

const SANDBOX_OUTCOMES = ["succeeded", "declined", "channel_error", "pending"] as const;

const LOCK_ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><rect x="4" y="10" width="16" height="11" rx="2"/><path d="M8 10V7a4 4 0 0 1 8 0v3"/></svg>';
const SHIELD_ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6l8-3z"/><path d="M8.5 12l2.5 2.5 4.5-5"/></svg>';
const ALERT_ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 7v6M12 16.5v.5"/></svg>';
const SUCCESS_ICON = '<svg class="icon-success" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="3" aria-hidden="true"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg>';
const CLOSED_ICON = '<svg class="icon-closed" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.5" aria-hidden="true"><circle cx="12" cy="12" r="8"/><path d="M12 8v4.5l3 2"/></svg>';

const SUCCESS_STATUSES: ReadonlySet<CheckoutStatus> = new Set(["succeeded", "requires_capture"]);
const PAYABLE_STATUSES: ReadonlySet<CheckoutStatus> = new Set(["requires_payment_method", "failed", "processing"]);

function methodOption(view: CheckoutView, method: PaymentMethod, checked: boolean): string {
  const t = TEXT[view.lang];
  let html =
    `<label class="method" data-method="${method}"><input type="radio" name="method" value="${method}"${checked ? " checked" : ""}>` +
    `<span class="badge badge-${method}" aria-hidden="true">${BADGE[view.lang][method]}</span>` +
    `<span class="method-text"><span class="method-name">${escapeHtml(METHOD_LABELS[view.lang][method])}</span>` +
    `<span class="method-hint">${escapeHtml(METHOD_HINTS[view.lang][method])}</span></span><span class="radio" aria-hidden="true"></span></label>`;
  if (method === "alipay" && view.plans.length > 0) {
    html += `<div class="plans" data-for="alipay" id="plans" role="radiogroup" aria-label="${escapeHtml(t.installmentsTitle)}"><p class="plans-title">${escapeHtml(t.installmentsTitle)}</p><div class="plan-options">`;
    html += `<label class="plan"><input type="radio" name="installments" value="" checked><span class="plan-main">${escapeHtml(t.noInstallments)}</span><span class="plan-fee">${escapeHtml(view.amountText)}</span></label>`;
    for (const plan of view.plans) {
      html +=
        `<label class="plan" title="${escapeHtml(fill(t.installmentTotalFee, { rate: plan.rateText, feeTotal: plan.feeTotalText }))}"><input type="radio" name="installments" value="${plan.periods}">` +
        `<span class="plan-main">${escapeHtml(fill(t.installmentLine, { periods: String(plan.periods), perPeriod: plan.perPeriodText }))}</span>` +
        `<span class="plan-fee">${escapeHtml(fill(t.installmentFee, { fee: plan.feePerPeriodText }))}</span></label>`;
    }
    html += `</div><p class="plans-note">${escapeHtml(t.installmentNote)}</p></div>`;
  }
  if (method === "simulator") {
    const options = SANDBOX_OUTCOMES.map((o) => `<option value="${o}">${escapeHtml(t.outcomes[o])}</option>`).join("");
    html += `<div class="sandbox" data-for="simulator"><label for="sandbox-outcome">${escapeHtml(t.sandboxOutcome)}</label><select id="sandbox-outcome" name="outcome">${options}</select></div>`;
  }
  return html;
}

function paySection(view: CheckoutView): string {
  const t = TEXT[view.lang];
  const failed = view.status === "failed";
  const notice =
    `<div id="notice" class="notice" role="alert"${failed ? "" : " hidden"}>${ALERT_ICON}<div><strong>${escapeHtml(t.failedTitle)}</strong>` +
    `<span id="notice-text">${failed ? escapeHtml(failureText(view.lang, view.failureCode)) : ""}</span></div></div>`;
  const methods = view.methods.map((m, i) => methodOption(view, m, i === 0)).join("");
  return (
    `<section id="pay-section" class="pay-section"${view.status === "processing" ? " hidden" : ""}>${notice}` +
    `<form id="pay-form" novalidate><fieldset class="methods"><legend>${escapeHtml(t.chooseMethod)}</legend>${methods}</fieldset>` +
    `<button type="submit" id="pay-button" class="button primary"><span id="pay-label">${escapeHtml(failed ? t.payAgain : t.pay)}</span><span>${escapeHtml(view.amountText)}</span></button></form>` +
    (view.returnUrl ? `<a class="leave" href="${escapeHtml(view.returnUrl)}">${escapeHtml(t.returnToMerchant)}</a>` : "") +
    `</section>`
  );
}

function doneSection(view: CheckoutView): string {
  const t = TEXT[view.lang];
  let kind = "closed";
  let title = "";
  let detail = "";
  if (SUCCESS_STATUSES.has(view.status)) [kind, title, detail] = ["success", t.succeededTitle, t.succeededDetail];
  else if (view.status === "canceled") [title, detail] = [t.canceledTitle, t.canceledDetail];
  else if (view.status === "expired") [title, detail] = [t.expiredTitle, t.expiredDetail];
  const hidden = PAYABLE_STATUSES.has(view.status) ? " hidden" : "";
  return (
    `<section id="done-section" class="state" aria-live="polite"${hidden}><div class="state-icon" id="done-icon" data-kind="${kind}">${SUCCESS_ICON}${CLOSED_ICON}</div>` +
    `<h2 id="done-title">${escapeHtml(title)}</h2><p id="done-detail">${escapeHtml(detail)}</p><p id="countdown" hidden></p>` +
    (view.returnUrl ? `<a id="return-link" class="button primary" href="${escapeHtml(view.returnUrl)}">${escapeHtml(t.returnToMerchant)}</a>` : "") +
    `</section>`
  );
}

function waitingSection(view: CheckoutView): string {
  const t = TEXT[view.lang];
  return (
    `<section id="waiting-section" class="state" aria-live="polite"${view.status === "processing" ? "" : " hidden"}><div class="spinner" aria-hidden="true"></div>` +
    `<h2 id="waiting-title">${escapeHtml(t.waitingTitle)}</h2><p>${escapeHtml(t.waitingDetail)}</p>` +
    `<div id="qr" class="qr" hidden><div class="qr-box" aria-hidden="true"></div><p id="qr-text" class="qr-text"></p><a id="qr-link" hidden rel="noreferrer">${escapeHtml(t.qrOpen)}</a></div></section>`
  );
}

/** The page's client-side data: URLs, the state it was rendered in, and the words it may show. */
function clientData(view: CheckoutView) {
  const t = TEXT[view.lang];
  return {
    status: view.status,
    failure: view.failureCode ? { code: view.failureCode } : null,
    latestAttempt: view.latestAttempt,
    statusUrl: view.statusUrl,
    attemptsUrl: view.attemptsUrl,
    returnUrl: view.returnUrl,
    autoReturnSeconds: AUTO_RETURN_SECONDS,
    failureText: FAILURE_TEXT[view.lang],
    text: {
      pay: t.pay, payAgain: t.payAgain, paying: t.paying, waitingTitle: t.waitingTitle, qrTitle: t.qrTitle, redirecting: t.redirecting,
      succeededTitle: t.succeededTitle, succeededDetail: t.succeededDetail, returningIn: t.returningIn, canceledTitle: t.canceledTitle,
      canceledDetail: t.canceledDetail, expiredTitle: t.expiredTitle, expiredDetail: t.expiredDetail, networkError: t.networkError,
      methodNotAllowed: t.methodNotAllowed, noChannel: t.noChannel,
    },
  };
}

function layout(lang: Lang, nonce: string, title: string, otherLangUrl: string | null, main: string, script: string): string {
  const t = TEXT[lang];
  const other = lang === "en" ? "zh-CN" : "en";
  return (
    `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex, nofollow"><link rel="icon" href="data:,"><title>${escapeHtml(title)}</title>` +
    `<style nonce="${nonce}">${STYLE}</style></head><body><div class="page">` +
    `<header class="topbar"><span class="brand">${LOCK_ICON}${escapeHtml(t.brand)}</span>` +
    (otherLangUrl ? `<a class="lang" href="${escapeHtml(otherLangUrl)}" hreflang="${other}" lang="${other}">${escapeHtml(t.otherLang)}</a>` : "") +
    `</header><main class="card">${main}</main>` +
    `<footer class="trust"><p>${SHIELD_ICON}<span>${escapeHtml(t.trust)}</span></p><p>${escapeHtml(t.poweredBy)}</p></footer></div>${script}</body></html>`
  );
}

export function renderCheckoutPage(view: CheckoutView, nonce: string): string {
  const t = TEXT[view.lang];
  const description = view.description ?? t.title;
  const summary =
    `<section class="summary"><p class="eyebrow">${escapeHtml(t.amountLabel)}</p><p class="amount" id="amount">${escapeHtml(view.amountText)}</p>` +
    `<h1 class="description" id="description">${escapeHtml(description)}</h1>` +
    `<p class="meta"><span class="meta-line">${escapeHtml(t.orderNumber)} <span class="order-id">${escapeHtml(view.paymentId)}</span></span>` +
    (PAYABLE_STATUSES.has(view.status) ? `<span class="meta-line">${escapeHtml(fill(t.payBefore, { time: view.expiresAtText }))}</span>` : "") +
    `</p></section>`;
  const pay = PAYABLE_STATUSES.has(view.status) ? paySection(view) : "";
  const noscript = PAYABLE_STATUSES.has(view.status) ? `<noscript><p class="noscript">${escapeHtml(t.noscript)}</p></noscript>` : "";
  const script = `<script type="application/json" id="cashier-data">${jsonForScript(clientData(view))}</script><script nonce="${nonce}">${SCRIPT}</script>`;
  return layout(view.lang, nonce, `${t.title} · ${view.amountText}`, view.otherLangUrl, summary + noscript + pay + waitingSection(view) + doneSection(view), script);
}

export function renderNotFoundPage(lang: Lang, nonce: string): string {
  const t = TEXT[lang];
  const main =
    `<section class="state"><div class="state-icon" data-kind="closed">${CLOSED_ICON}</div>` +
    `<h2>${escapeHtml(t.notFoundTitle)}</h2><p>${escapeHtml(t.notFoundDetail)}</p></section>`;
  return layout(lang, nonce, t.notFoundTitle, null, main, "");
}
