// The cashier's HTTP routes: the page, its status JSON and its attempts. Each is authorised only
// by the payment's client secret (never a merchant key), compared in constant time; an unknown
// payment and a wrong or missing secret get the same 404, so payment ids cannot be probed.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Static } from "typebox";
import { errorBody } from "../http/errors.ts";
import { stringifyJson } from "../http/json.ts";
import type { Clock } from "../kernel/clock.ts";
import { AttemptCreate, attemptInput, attemptJson, type Payment, type PaymentService } from "../payments/index.ts";
import { formatMoney, newNonce, pageSecurityHeaders, safeHttpUrl } from "../web/index.ts";
import { pickLang, type Lang } from "./i18n.ts";
import { installmentPlansFor, type InstallmentPlan } from "./installments.ts";
import { renderCheckoutPage, renderNotFoundPage, type CheckoutStatus, type PlanView } from "./page.ts";

export interface CheckoutDeps {
  readonly payments: PaymentService;
  readonly clock: Clock;
}

/** Longest secret looked at; a client secret is `cs_` and 32 base64url characters. */
const SECRET_CHARS_MAX = 128;

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Constant-time equality of a presented secret and the payment's (hashing first evens out the lengths). */
export function secretMatches(presented: unknown, actual: string): boolean {
  if (typeof presented !== "string" || presented.length === 0 || presented.length > SECRET_CHARS_MAX) return false;
  return timingSafeEqual(digest(presented), digest(actual));
}

/**
 * What the payer is shown: a payment past `expires_at` that the expiry job has not reached yet
 * is already expired to the payer (an attempt on it would expire it first).
 */
export function checkoutStatus(payment: Payment, nowUs: bigint): CheckoutStatus {
  if ((payment.status === "requires_payment_method" || payment.status === "failed") && nowUs >= payment.expiresAt) return "expired";
  return payment.status;
}

function rateText(basisPoints: bigint): string {
  const whole = basisPoints / 100n;
  const fraction = (basisPoints % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${whole}${fraction ? `.${fraction}` : ""}%`;
}

function planView(plan: InstallmentPlan, currency: string, lang: Lang): PlanView {
  // The first period carries any leftover minor unit, so it is the one quoted.
  const first = plan.schedule[0]!;
  return {
    periods: plan.periods,
    perPeriodText: formatMoney(first.total, currency, lang),
    feePerPeriodText: formatMoney(first.fee, currency, lang),
    feeTotalText: formatMoney(plan.feeTotal, currency, lang),
    rateText: rateText(plan.rateBasisPoints),
  };
}

function deadlineText(expiresAtUs: bigint, lang: Lang): string {
  const text = new Intl.DateTimeFormat(lang, { timeZone: "Asia/Shanghai", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(
    new Date(Number(expiresAtUs / 1000n)),
  );
  return lang === "en" ? `${text} (UTC+8)` : text;
}

function query(request: FastifyRequest): Record<string, unknown> {
  return (request.query ?? {}) as Record<string, unknown>;
}

export function registerCheckoutRoutes(app: FastifyInstance, deps: CheckoutDeps): void {
  const { payments, clock } = deps;

  /** The payment if `secret` opens it; null for an unknown id and for a wrong secret alike. */
  async function authorised(request: FastifyRequest): Promise<Payment | null> {
    const { id } = request.params as { id: string };
    const secret = query(request).secret;
    if (typeof id !== "string" || id.length === 0 || id.length > 256) return null;
    const payment = await payments.reads.payment(id, null);
    // The comparison runs against a stand-in when there is no payment, so both paths cost the same.
    const matches = secretMatches(secret, payment?.clientSecret ?? "cs_no_payment_has_this_secret");
    return payment && matches ? payment : null;
  }

  const jsonNotFound = (request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).headers(pageSecurityHeaders(null)).type("application/json; charset=utf-8").send(stringifyJson(errorBody(request, "not_found", "no such checkout")));

  async function statusJson(payment: Payment) {
    const latest = payment.latestAttemptId ? await payments.reads.attempt(payment.latestAttemptId) : null;
    return {
      status: checkoutStatus(payment, clock.nowUs()),
      amount: payment.amount,
      currency: payment.currency,
      failure: payment.failure ? { code: payment.failure.code, user_caused: payment.failure.userCaused } : null,
      latest_attempt: latest ? attemptJson(latest) : null,
      return_url: safeHttpUrl(payment.returnUrl),
    };
  }

  app.get("/checkout/:id", { schema: { hide: true } }, async (request, reply) => {
    const q = query(request);
    const lang = pickLang(q.lang, request.headers["accept-language"]);
    const nonce = newNonce();
    reply.headers(pageSecurityHeaders(nonce)).type("text/html; charset=utf-8");
    const payment = await authorised(request);
    if (!payment) return reply.code(404).send(renderNotFoundPage(lang, nonce));

    const base = `/checkout/${encodeURIComponent(payment.id)}`;
    const secret = `secret=${encodeURIComponent(q.secret as string)}`;
    const status = await statusJson(payment);
    const html = renderCheckoutPage(
      {
        lang,
        paymentId: payment.id,
        description: payment.description,
        amountText: formatMoney(payment.amount, payment.currency, lang),
        status: status.status,
        failureCode: status.failure?.code ?? null,
        methods: payment.methods,
        plans: installmentPlansFor(payment.amount, payment.currency, payment.methods).map((p) => planView(p, payment.currency, lang)),
        returnUrl: status.return_url,
        expiresAtText: deadlineText(payment.expiresAt, lang),
        statusUrl: `${base}/status?${secret}`,
        attemptsUrl: `${base}/attempts?${secret}`,
        otherLangUrl: `${base}?${secret}&lang=${lang === "en" ? "zh-CN" : "en"}`,
        latestAttempt: status.latest_attempt,
      },
      nonce,
    );
    return reply.code(200).send(html);
  });

  app.get("/checkout/:id/status", { schema: { hide: true } }, async (request, reply) => {
    const payment = await authorised(request);
    if (!payment) return jsonNotFound(request, reply);
    return reply.code(200).headers(pageSecurityHeaders(null)).type("application/json; charset=utf-8").send(stringifyJson(await statusJson(payment)));
  });

  app.post(
    "/checkout/:id/attempts",
    {
      schema: { hide: true, body: AttemptCreate },
      // The secret is checked before the body is validated: without it, nothing about the
      // payment (not even that the body would be wrong for it) is answered.
      preValidation: async (request, reply) => {
        const payment = await authorised(request);
        if (!payment) return jsonNotFound(request, reply);
        reply.headers(pageSecurityHeaders(null));
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as Static<typeof AttemptCreate>;
      const attempt = await payments.startAttempt(id, null, attemptInput(body, request));
      return reply.code(201).type("application/json; charset=utf-8").send(stringifyJson(attemptJson(attempt)));
    },
  );
}
