// HTTP routes of payments, refunds and payouts (PAYMENTS.md). Handlers parse into domain inputs,
// call the services, and render; the response of a write is stored for idempotent replay inside
// the write's own unit of work.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import { PAYMENT_METHODS, type PaymentMethod } from "../channels/channel.ts";
import type { StoredResponse } from "../db/idempotency.ts";
import { stringifyJson } from "../http/json.ts";
import { Amount, Currency, ErrorResponse, Id, IdParams, Metadata, NO_NUL, metadataText, parseAmount, parseLimit } from "../http/params.ts";
import { sendRendered, unitOfWorkHook, type HttpDeps } from "../http/server.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import { isCurrency } from "../kernel/money.ts";
import { PAYMENT_STATUSES, PAYOUT_STATUSES, type Attempt, type Payment, type Payout, type Refund } from "./model.ts";
import type { PayoutService } from "./payouts.ts";
import type { RefundService } from "./refunds.ts";
import type { PaymentService } from "./service.ts";
import { payoutJson, refundJson } from "./view.ts";

const Method = Type.Union(PAYMENT_METHODS.map((m) => Type.Literal(m)));
const Url = Type.String({ minLength: 1, maxLength: 2048, pattern: "^https?://[^\\s]+$" });

const PaymentCreate = Type.Object(
  {
    id: Type.Optional(Id),
    amount: Amount,
    currency: Currency,
    merchant_account_id: Id,
    description: Type.Optional(Type.String({ maxLength: 256, pattern: NO_NUL })),
    capture: Type.Optional(Type.Union([Type.Literal("automatic"), Type.Literal("manual")])),
    expires_in_seconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 24 * 3600 })),
    return_url: Type.Optional(Url),
    methods: Type.Optional(Type.Array(Method, { minItems: 1, maxItems: PAYMENT_METHODS.length, uniqueItems: true })),
    contract_ref: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const SimulatorOptions = Type.Object(
  {
    outcome: Type.Optional(Type.String({ maxLength: 32 })),
    delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    then: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: false },
);

export const AttemptCreate = Type.Object(
  {
    method: Method,
    installments: Type.Optional(Type.Integer({ minimum: 1, maximum: 36 })),
    simulator: Type.Optional(SimulatorOptions),
    /** Channel-specific options (a WeChat JSAPI payer's openid, Alipay page or wap). */
    channel_options: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }), { maxProperties: 16 })),
  },
  { additionalProperties: false },
);

const Capture = Type.Object({ amount: Type.Optional(Amount) }, { additionalProperties: false });

/** A body that may be absent (capture, cancel): absent = {}; otherwise an object of known fields. */
function optionalBody(body: unknown, fields: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw new ApiError("validation_failed", "the body must be a JSON object");
  for (const key of Object.keys(body)) if (!fields.includes(key)) throw new ApiError("validation_failed", `unknown field "${key}"`, key);
  return body as Record<string, unknown>;
}

const RefundCreate = Type.Object(
  { id: Type.Optional(Id), amount: Amount, reason: Type.Optional(Type.String({ maxLength: 256, pattern: NO_NUL })) },
  { additionalProperties: false },
);

const PayoutCreate = Type.Object(
  {
    id: Type.Optional(Id),
    amount: Amount,
    currency: Currency,
    source_account_id: Id,
    destination: Type.Object(
      {
        bank_account_number: Type.String({ minLength: 8, maxLength: 40, pattern: "^[0-9 ]+$" }),
        account_name: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }),
        bank_code: Type.Optional(Type.String({ minLength: 1, maxLength: 32, pattern: "^[A-Za-z0-9_-]+$" })),
      },
      { additionalProperties: false },
    ),
    channel: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    simulator: Type.Optional(Type.Object({ outcome: Type.Optional(Type.String({ maxLength: 32 })), delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })) }, { additionalProperties: false })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const PaymentList = Type.Object(
  {
    status: Type.Optional(Type.Union(PAYMENT_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
const PayoutList = Type.Object(
  {
    status: Type.Optional(Type.Union(PAYOUT_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export interface PaymentRouteDeps extends Pick<HttpDeps, "idempotency"> {
  readonly payments: PaymentService;
  readonly refunds: RefundService;
  readonly payouts: PayoutService;
  readonly limits: Limits;
}

const json = (status: number, body: unknown): StoredResponse => ({ status, body: stringifyJson(body) });

function checkCurrency(currency: string): void {
  if (!isCurrency(currency)) throw new ApiError("validation_failed", "currency is not a currency Tally knows", "currency");
}

export function attemptInput(body: Static<typeof AttemptCreate>, request: FastifyRequest) {
  const options: Record<string, unknown> = { ...body.channel_options };
  if (body.simulator) Object.assign(options, body.simulator);
  return {
    method: body.method as PaymentMethod,
    ...(body.installments !== undefined ? { installments: body.installments } : {}),
    ...(Object.keys(options).length > 0 ? { options } : {}),
    payer: { clientIp: request.ip, ...(typeof request.headers["user-agent"] === "string" ? { userAgent: request.headers["user-agent"].slice(0, 256) } : {}) },
  };
}

export function registerPaymentRoutes(app: FastifyInstance, deps: PaymentRouteDeps): void {
  const { payments, refunds, payouts, limits } = deps;
  const merchantOf = (request: FastifyRequest) => request.principal?.merchantId ?? null;
  /** Runs a write whose response is rendered (and stored for replay) inside its unit of work. */
  async function respond<T>(request: FastifyRequest, reply: FastifyReply, render: (value: T) => Promise<StoredResponse> | StoredResponse, work: (extra?: (tx: any, value: T) => Promise<void>) => Promise<T>) {
    let rendered: StoredResponse | undefined;
    // Rendering needs reads (the payment's attempts) that a hook cannot do: render before the
    // hook stores it. The hook stores what was rendered for this exact value.
    const hook = unitOfWorkHook<StoredResponse>(deps, request, (r) => r);
    const value = await work(async (tx, v) => {
      rendered = await render(v);
      if (hook) await hook(tx, rendered);
    });
    return sendRendered(reply, rendered ?? (await render(value)));
  }

  app.post(
    "/v1/payments",
    { config: { scope: "payments:write" }, schema: { tags: ["payments"], summary: "Create a payment (pay-in)", body: PaymentCreate, response: { 409: ErrorResponse, 422: ErrorResponse } } },
    async (request, reply) => {
      const body = request.body as Static<typeof PaymentCreate>;
      checkCurrency(body.currency);
      const input = {
        ...(body.id !== undefined ? { id: body.id } : {}),
        amount: parseAmount(body.amount, "amount")!,
        currency: body.currency,
        merchantAccountId: body.merchant_account_id,
        ...(body.description !== undefined ? { description: body.description } : {}),
        capture: body.capture ?? "automatic",
        expiresInSeconds: body.expires_in_seconds ?? 1800,
        ...(body.return_url !== undefined ? { returnUrl: body.return_url } : {}),
        ...(body.methods !== undefined ? { methods: body.methods as PaymentMethod[] } : {}),
        ...(body.contract_ref !== undefined ? { contractRef: body.contract_ref } : {}),
        ...(metadataText(body.metadata, "metadata", limits) !== undefined ? { metadata: metadataText(body.metadata, "metadata", limits)! } : {}),
      } as const;
      let created = true;
      return respond<Payment>(
        request,
        reply,
        async (p) => json(created ? 201 : 200, await payments.paymentView(p)),
        async (extra) => {
          const result = await payments.createPayment(merchantOf(request), input, extra);
          created = result.created;
          return result.payment;
        },
      );
    },
  );

  app.get(
    "/v1/payments/:id",
    { config: { scope: "payments:read" }, schema: { tags: ["payments"], summary: "Retrieve a payment", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const payment = await payments.getPayment(id, merchantOf(request));
      return sendRendered(reply, json(200, await payments.paymentView(payment)));
    },
  );

  app.get(
    "/v1/payments",
    { config: { scope: "payments:read" }, schema: { tags: ["payments"], summary: "List payments, newest first", querystring: PaymentList } },
    async (request, reply) => {
      const q = request.query as Static<typeof PaymentList>;
      const merchantId = merchantOf(request);
      const limit = parseLimit(q.limit, limits);
      let startingAfter: Payment | undefined;
      if (q.starting_after !== undefined) {
        startingAfter = (await payments.reads.payment(q.starting_after, merchantId)) ?? undefined;
        if (!startingAfter) throw new ApiError("validation_failed", "starting_after names no payment", "starting_after");
      }
      const page = await payments.reads.listPayments(merchantId, { ...(q.status ? { status: q.status } : {}), limit, ...(startingAfter ? { startingAfter } : {}) });
      const data = [];
      for (const p of page.data) data.push(await payments.paymentView(p));
      return sendRendered(reply, json(200, { data, has_more: page.hasMore }));
    },
  );

  app.post(
    "/v1/payments/:id/attempts",
    { config: { scope: "payments:write" }, schema: { tags: ["payments"], summary: "Pay with a method (start an attempt)", params: IdParams, body: AttemptCreate } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as Static<typeof AttemptCreate>;
      return respond<Attempt>(request, reply, (a) => json(201, payments.attemptView(a)), (extra) => payments.startAttempt(id, merchantOf(request), attemptInput(body, request), extra));
    },
  );

  app.post(
    "/v1/payments/:id/capture",
    { config: { scope: "payments:write" }, schema: { tags: ["payments"], summary: "Capture a held (manual) payment; body optional", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = optionalBody(request.body, ["amount"]) as Static<typeof Capture>;
      if (body.amount !== undefined && !((typeof body.amount === "number" && Number.isSafeInteger(body.amount)) || (typeof body.amount === "string" && /^[1-9][0-9]{0,15}$/.test(body.amount)))) {
        throw new ApiError("validation_failed", "amount must be a positive integer in minor units", "amount");
      }
      return respond<Payment>(request, reply, async (p) => json(200, await payments.paymentView(p)), (extra) =>
        payments.capture(id, merchantOf(request), parseAmount(body.amount, "amount"), extra),
      );
    },
  );

  app.post(
    "/v1/payments/:id/cancel",
    { config: { scope: "payments:write" }, schema: { tags: ["payments"], summary: "Cancel a payment; body `{}` or none", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      optionalBody(request.body, []);
      return respond<Payment>(request, reply, async (p) => json(200, await payments.paymentView(p)), (extra) => payments.cancel(id, merchantOf(request), extra));
    },
  );

  app.post(
    "/v1/payments/:id/refunds",
    { config: { scope: "payments:write" }, schema: { tags: ["refunds"], summary: "Refund a payment", params: IdParams, body: RefundCreate } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as Static<typeof RefundCreate>;
      let created = true;
      return respond<Refund>(
        request,
        reply,
        (r) => json(created ? 201 : 200, refundJson(r)),
        async (extra) => {
          const result = await refunds.create(id, merchantOf(request), { ...(body.id ? { id: body.id } : {}), amount: parseAmount(body.amount, "amount")!, ...(body.reason ? { reason: body.reason } : {}) }, extra);
          created = result.created;
          return result.refund;
        },
      );
    },
  );

  app.get(
    "/v1/refunds/:id",
    { config: { scope: "payments:read" }, schema: { tags: ["refunds"], summary: "Retrieve a refund", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      return sendRendered(reply, json(200, refundJson(await refunds.get(id, merchantOf(request)))));
    },
  );

  app.post(
    "/v1/payouts",
    { config: { scope: "payments:write" }, schema: { tags: ["payouts"], summary: "Pay out to a bank account", body: PayoutCreate } },
    async (request, reply) => {
      const body = request.body as Static<typeof PayoutCreate>;
      checkCurrency(body.currency);
      const metadata = metadataText(body.metadata, "metadata", limits);
      let created = true;
      return respond<Payout>(
        request,
        reply,
        (p) => json(created ? 201 : 200, payoutJson(p)),
        async (extra) => {
          const result = await payouts.create(
            merchantOf(request),
            {
              ...(body.id ? { id: body.id } : {}),
              amount: parseAmount(body.amount, "amount")!,
              currency: body.currency,
              sourceAccountId: body.source_account_id,
              destination: {
                bankAccountNumber: body.destination.bank_account_number,
                accountName: body.destination.account_name,
                ...(body.destination.bank_code ? { bankCode: body.destination.bank_code } : {}),
              },
              ...(body.channel ? { channel: body.channel } : {}),
              ...(body.simulator ? { options: body.simulator } : {}),
              ...(metadata ? { metadata } : {}),
            },
            extra,
          );
          created = result.created;
          return result.payout;
        },
      );
    },
  );

  app.get(
    "/v1/payouts/:id",
    { config: { scope: "payments:read" }, schema: { tags: ["payouts"], summary: "Retrieve a payout", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      return sendRendered(reply, json(200, payoutJson(await payouts.get(id, merchantOf(request)))));
    },
  );

  app.get(
    "/v1/payouts",
    { config: { scope: "payments:read" }, schema: { tags: ["payouts"], summary: "List payouts, newest first", querystring: PayoutList } },
    async (request, reply) => {
      const q = request.query as Static<typeof PayoutList>;
      const merchantId = merchantOf(request);
      let startingAfter: Payout | undefined;
      if (q.starting_after !== undefined) {
        startingAfter = (await payouts.get(q.starting_after, merchantId).catch(() => undefined)) ?? undefined;
        if (!startingAfter) throw new ApiError("validation_failed", "starting_after names no payout", "starting_after");
      }
      const page = await payments.reads.listPayouts(merchantId, { ...(q.status ? { status: q.status } : {}), limit: parseLimit(q.limit, limits), ...(startingAfter ? { startingAfter } : {}) });
      return sendRendered(reply, json(200, { data: page.data.map(payoutJson), has_more: page.hasMore }));
    },
  );
}
