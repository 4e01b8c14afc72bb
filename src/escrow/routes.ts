// HTTP routes of agreements (ESCROW.md "Agreements"), their arrivals and manual arrivals, and the
// simulated banks' controls (`/v1/simulators/{bank}/...`, admin key only).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import type { StoredResponse } from "../db/idempotency.ts";
import { stringifyJson } from "../http/json.ts";
import { Amount, Currency, Id, IdParams, Metadata, NO_NUL, metadataText, parseAmount, parseLimit } from "../http/params.ts";
import { sendRendered, unitOfWorkHook, type HttpDeps } from "../http/server.ts";
import { parseTimestampUs } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import { isCurrency } from "../kernel/money.ts";
import type { ArrivalInbox } from "../arrivals/service.ts";
import type { ReconciliationService } from "../reconciliation/service.ts";
import { CustodyBanks, DEMO_BANK, DEMO_DEFAULT_PROFILE } from "./banks.ts";
import { AGREEMENT_STATUSES, type Agreement } from "./model.ts";
import type { AgreementService } from "./service.ts";
import { agreementJson, arrivalJson } from "./view.ts";

const BankCode = Type.String({ pattern: "^[a-z0-9-]{1,32}$" });
const Name = Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL });

const AgreementCreate = Type.Object(
  {
    id: Type.Optional(Id),
    contract_ref: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_.:-]+$" })),
    amount_due: Amount,
    currency: Currency,
    custody_bank: BankCode,
    payer: Type.Object(
      {
        name: Name,
        id_number: Type.Optional(Type.String({ pattern: "^[0-9]{17}[0-9Xx]$" })),
        phone: Type.Optional(Type.String({ pattern: "^1[3-9][0-9]{9}$" })),
      },
      { additionalProperties: false },
    ),
    payee: Type.Object(
      {
        name: Name,
        bank_account_number: Type.String({ minLength: 8, maxLength: 40, pattern: "^[0-9 ]+$" }),
        account_name: Type.Optional(Name),
      },
      { additionalProperties: false },
    ),
    agent_account_id: Type.Optional(Id),
    expires_at: Type.Optional(Type.String({ maxLength: 64 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const PayOutBody = Type.Object({ id: Type.Optional(Id), amount: Type.Optional(Amount) }, { additionalProperties: false });
const CommissionBody = Type.Object({ event_id: Id, amount: Amount, commission_account_id: Type.Optional(Id) }, { additionalProperties: false });
const ManualArrival = Type.Object(
  {
    amount: Amount,
    currency: Currency,
    bank_reference: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }),
    booked_at: Type.Optional(Type.String({ maxLength: 64 })),
    reason: Type.String({ minLength: 1, maxLength: 500, pattern: NO_NUL }),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(AGREEMENT_STATUSES.map((s) => Type.Literal(s)))),
    contract_ref: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

const Behaviour = Type.Object(
  {
    accounts: Type.Optional(Type.Union([Type.Literal("ok"), Type.Literal("down"), Type.Literal("refuse_identity")])),
    payouts: Type.Optional(Type.Union([Type.Literal("paid"), Type.Literal("failed"), Type.Literal("hold")])),
    notice: Type.Optional(
      Type.Object(
        {
          format: Type.Union([Type.Literal("json"), Type.Literal("csv"), Type.Literal("camt054"), Type.Literal("mt940")]),
          date_format: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const SimTransfer = Type.Object(
  {
    account_number: Type.String({ minLength: 1, maxLength: 34 }),
    amount: Amount,
    currency: Type.Optional(Currency),
    payer_name: Name,
    payer_account: Type.Optional(Type.String({ minLength: 1, maxLength: 34 })),
    remittance: Type.Optional(Type.String({ maxLength: 140, pattern: NO_NUL })),
    bank_reference: Type.Optional(Type.String({ minLength: 1, maxLength: 35, pattern: "^[A-Za-z0-9/._:-]+$" })),
    copies: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
    delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
  },
  { additionalProperties: false },
);
const SimStatement = Type.Object(
  { date: Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$" }), format: Type.Union([Type.Literal("camt053"), Type.Literal("mt940")]) },
  { additionalProperties: false },
);

export interface EscrowRouteDeps extends Pick<HttpDeps, "idempotency"> {
  readonly agreements: AgreementService;
  readonly inbox: ArrivalInbox;
  readonly reconciliations: ReconciliationService;
  readonly banks: CustodyBanks;
  readonly limits: Limits;
}

const json = (status: number, body: unknown): StoredResponse => ({ status, body: stringifyJson(body) });

function timestamp(value: string, param: string): bigint {
  const us = parseTimestampUs(value);
  if (us === null) throw new ApiError("validation_failed", `${param} must be an RFC 3339 timestamp with an offset`, param);
  return us;
}

export function registerEscrowRoutes(app: FastifyInstance, deps: EscrowRouteDeps): void {
  const { agreements, inbox, banks, limits } = deps;
  const merchantOf = (request: FastifyRequest) => request.principal?.merchantId ?? null;
  const actorOf = (request: FastifyRequest) => request.principal?.keyId ?? "anonymous";
  const respond = async <T>(request: FastifyRequest, reply: FastifyReply, render: (v: T) => StoredResponse, work: (extra?: (tx: any, v: T) => Promise<void>) => Promise<T>) => {
    const hook = unitOfWorkHook<T>(deps, request, render);
    const value = await work(hook);
    return sendRendered(reply, render(value));
  };
  /** A simulated bank gets its default profile when first used, so its first notice funds. */
  const prepareBank = async (code: string) => {
    if (DEMO_BANK.test(code) && !(await inbox.profile(code))) await inbox.putProfile(code, DEMO_DEFAULT_PROFILE, "system");
  };

  app.post(
    "/v1/agreements",
    { config: { scope: "escrow:write" }, schema: { tags: ["escrow"], summary: "Create a fulfilment agreement and its custody account", body: AgreementCreate } },
    async (request, reply) => {
      const body = request.body as Static<typeof AgreementCreate>;
      if (!isCurrency(body.currency)) throw new ApiError("validation_failed", "currency is not a currency Tally knows", "currency");
      if (!banks.get(body.custody_bank)) throw new ApiError("validation_failed", `no custody bank ${body.custody_bank}`, "custody_bank");
      await prepareBank(body.custody_bank);
      const metadata = metadataText(body.metadata, "metadata", limits);
      let created = true;
      return respond<Agreement>(request, reply, (a) => json(created ? 201 : 200, agreementJson(a)), async (extra) => {
        const result = await agreements.create(
          merchantOf(request),
          {
            ...(body.id ? { id: body.id } : {}),
            ...(body.contract_ref ? { contractRef: body.contract_ref } : {}),
            amountDue: parseAmount(body.amount_due, "amount_due")!,
            currency: body.currency,
            custodyBank: body.custody_bank,
            payer: { name: body.payer.name, ...(body.payer.id_number ? { id_number: body.payer.id_number.toUpperCase() } : {}), ...(body.payer.phone ? { phone: body.payer.phone } : {}) },
            payee: { name: body.payee.name, bank_account_number: body.payee.bank_account_number, ...(body.payee.account_name ? { account_name: body.payee.account_name } : {}) },
            ...(body.agent_account_id ? { agentAccountId: body.agent_account_id } : {}),
            ...(body.expires_at ? { expiresAt: timestamp(body.expires_at, "expires_at") } : {}),
            ...(metadata ? { metadata } : {}),
          },
          extra,
        );
        created = result.created;
        return result.agreement;
      });
    },
  );

  app.get("/v1/agreements/:id", { config: { scope: "escrow:read" }, schema: { tags: ["escrow"], summary: "Retrieve an agreement", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    return sendRendered(reply, json(200, agreementJson(await agreements.get(id, merchantOf(request)))));
  });

  app.get("/v1/agreements", { config: { scope: "escrow:read" }, schema: { tags: ["escrow"], summary: "List agreements, newest first", querystring: ListQuery } }, async (request, reply) => {
    const q = request.query as Static<typeof ListQuery>;
    const merchantId = merchantOf(request);
    let startingAfter: Agreement | undefined;
    if (q.starting_after) {
      startingAfter = (await agreements.find(q.starting_after, merchantId)) ?? undefined;
      if (!startingAfter) throw new ApiError("validation_failed", "starting_after names no agreement", "starting_after");
    }
    const page = await agreements.list(merchantId, { ...(q.status ? { status: q.status } : {}), ...(q.contract_ref ? { contractRef: q.contract_ref } : {}), limit: parseLimit(q.limit, limits), ...(startingAfter ? { startingAfter } : {}) });
    return sendRendered(reply, json(200, { data: page.data.map(agreementJson), has_more: page.hasMore }));
  });

  app.get("/v1/agreements/:id/arrivals", { config: { scope: "escrow:read" }, schema: { tags: ["escrow"], summary: "Arrivals of an agreement", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const a = await agreements.get(id, merchantOf(request));
    return sendRendered(reply, json(200, { data: (await inbox.arrivalsOf(a.id)).map(arrivalJson), has_more: false }));
  });

  for (const kind of ["release", "refund"] as const) {
    app.post(
      `/v1/agreements/:id/${kind}`,
      { config: { scope: "escrow:write" }, schema: { tags: ["escrow"], summary: kind === "release" ? "Release money to the payee" : "Refund money to the payer", params: IdParams, body: PayOutBody } },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const body = request.body as Static<typeof PayOutBody>;
        return respond<unknown>(request, reply, (p) => json(201, p), (extra) =>
          agreements.payOut(kind, id, merchantOf(request), { ...(body.id ? { id: body.id } : {}), ...(body.amount !== undefined ? { amount: parseAmount(body.amount, "amount")! } : {}) }, extra),
        );
      },
    );
  }

  app.post(
    "/v1/agreements/:id/commission",
    { config: { scope: "escrow:write" }, schema: { tags: ["escrow"], summary: "Deposit to commission (定转佣), idempotent by event_id", params: IdParams, body: CommissionBody } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as Static<typeof CommissionBody>;
      return respond<Agreement>(request, reply, (a) => json(200, agreementJson(a)), (extra) =>
        agreements.commission(id, merchantOf(request), { eventId: body.event_id, amount: parseAmount(body.amount, "amount")!, ...(body.commission_account_id ? { accountId: body.commission_account_id } : {}) }, extra),
      );
    },
  );

  app.post("/v1/agreements/:id/cancel", { config: { scope: "escrow:write" }, schema: { tags: ["escrow"], summary: "Cancel an agreement before any money arrived", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    return respond<Agreement>(request, reply, (a) => json(200, agreementJson(a)), (extra) => agreements.cancel(id, merchantOf(request), extra));
  });

  app.post(
    "/v1/agreements/:id/manual-arrivals",
    { config: { scope: "escrow:write" }, schema: { tags: ["escrow"], summary: "Record money the bank confirmed by other means (手动到账, audited)", params: IdParams, body: ManualArrival } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as Static<typeof ManualArrival>;
      const { arrival, created } = await inbox.manualArrival(
        id,
        merchantOf(request),
        { amount: parseAmount(body.amount, "amount")!, currency: body.currency, bankReference: body.bank_reference, ...(body.booked_at ? { bookedAtUs: timestamp(body.booked_at, "booked_at") } : {}), reason: body.reason },
        actorOf(request),
      );
      return sendRendered(reply, json(created ? 201 : 200, arrivalJson(arrival)));
    },
  );

  // Simulated banks: admin only (keys:write stands for the platform's operators).
  const demo = (code: string) => {
    const bank = banks.demo(code);
    if (!bank) throw new ApiError("not_found", `no simulated bank ${code} (codes start with demo-)`);
    return bank;
  };
  const BankParams = Type.Object({ bank: BankCode });

  app.put("/v1/simulators/:bank/behaviour", { config: { scope: "keys:write" }, schema: { tags: ["simulators"], summary: "How the simulated bank behaves", params: BankParams, body: Behaviour } }, async (request, reply) => {
    const { bank } = request.params as { bank: string };
    const body = request.body as Static<typeof Behaviour>;
    const b = demo(bank);
    await prepareBank(bank);
    b.behaviour = {
      accounts: body.accounts ?? b.behaviour.accounts,
      payouts: body.payouts ?? b.behaviour.payouts,
      notice: body.notice ? { format: body.notice.format, date_format: body.notice.date_format ?? b.behaviour.notice.date_format } : b.behaviour.notice,
    };
    return sendRendered(reply, json(200, b.behaviour));
  });

  app.post("/v1/simulators/:bank/transfers", { config: { scope: "keys:write" }, schema: { tags: ["simulators"], summary: "Money arrives at the simulated bank", params: BankParams, body: SimTransfer } }, async (request, reply) => {
    const { bank } = request.params as { bank: string };
    const body = request.body as Static<typeof SimTransfer>;
    await prepareBank(bank);
    const result = await demo(bank).transfer({ ...body, amount: parseAmount(body.amount, "amount")! });
    return sendRendered(reply, json(201, result));
  });

  app.post(
    "/v1/simulators/:bank/payouts/:id/settle",
    { config: { scope: "keys:write" }, schema: { tags: ["simulators"], summary: "Settle a held payout at the simulated bank", params: Type.Object({ bank: BankCode, id: Type.String({ maxLength: 64 }) }), body: Type.Object({ outcome: Type.Union([Type.Literal("paid"), Type.Literal("failed")]) }, { additionalProperties: false }) } },
    async (request, reply) => {
      const { bank, id } = request.params as { bank: string; id: string };
      const { outcome } = request.body as { outcome: "paid" | "failed" };
      const result = demo(bank).settle(id, outcome);
      if (!result) throw new ApiError("not_found", `no payout ${id} at ${bank}`);
      const settled = await agreements.settlePayout(id, result);
      return sendRendered(reply, json(200, settled));
    },
  );

  app.post("/v1/simulators/:bank/statements", { config: { scope: "keys:write" }, schema: { tags: ["simulators"], summary: "The simulated bank's statement of a day, sent to Tally", params: BankParams, body: SimStatement } }, async (request, reply) => {
    const { bank } = request.params as { bank: string };
    const body = request.body as Static<typeof SimStatement>;
    const text = demo(bank).statement(body.date, body.format);
    const { reconciliation } = await deps.reconciliations.receive(bank, Buffer.from(text, "utf8"), body.format === "camt053" ? "application/xml" : "text/plain");
    return sendRendered(reply, json(201, { body: text, reconciliation_id: reconciliation.id, summary: reconciliation.summary }));
  });
}
