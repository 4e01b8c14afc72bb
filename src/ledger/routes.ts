// HTTP routes of the ledger (LEDGER.md). Schemas validate and document requests (the same
// schemas make /openapi.json); handlers parse into domain inputs and render outcomes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import { ApiError } from "../kernel/errors.ts";
import type { Clock } from "../kernel/clock.ts";
import { formatTimestampUs, parseTimestampUs } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ulid } from "../kernel/ids.ts";
import { isCurrency } from "../kernel/money.ts";
import { sendRendered, unitOfWorkHook, type HttpDeps } from "../http/server.ts";
import { stringifyJson } from "../http/json.ts";
import { Amount, Currency, ErrorResponse, Id, IdParams, Metadata, NO_NUL, amountOf, amountOutOfRange, metadataText, parseLimit } from "../http/params.ts";
import type { StoredResponse } from "../db/idempotency.ts";
import type { AccountOutcome, PostingEngine } from "./engine.ts";
import { type AccountInput, type TransferInput, type TransferOutcome } from "./model.ts";
import type { LedgerQueries } from "./queries.ts";
import { RESULT_MESSAGES, accountJson, balancesJson, transferJson, transferText } from "./view.ts";

const Code = Type.Integer({ minimum: 0, maximum: 2147483647 });

const AccountCreate = Type.Object(
  {
    id: Type.Optional(Id),
    currency: Currency,
    code: Type.Optional(Code),
    normal_balance: Type.Optional(Type.Union([Type.Literal("credit"), Type.Literal("debit")])),
    flags: Type.Optional(
      Type.Object(
        {
          debits_must_not_exceed_credits: Type.Optional(Type.Boolean()),
          credits_must_not_exceed_debits: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: NO_NUL })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const TransferCreate = Type.Object(
  {
    id: Id,
    debit_account_id: Type.Optional(Id),
    credit_account_id: Type.Optional(Id),
    amount: Type.Optional(Amount),
    currency: Type.Optional(Currency),
    code: Type.Optional(Code),
    pending: Type.Optional(Type.Boolean()),
    timeout_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 60 * 60 * 24 * 366 })),
    post_pending_id: Type.Optional(Id),
    void_pending_id: Type.Optional(Id),
    linked: Type.Optional(Type.Boolean()),
    reference: Type.Optional(Type.String({ maxLength: 128, pattern: NO_NUL })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const TransferBatch = Type.Object(
  { transfers: Type.Array(TransferCreate, { minItems: 1, maxItems: 8190 }) },
  { additionalProperties: false },
);

const BalanceQuery = Type.Object({ at: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);


export interface LedgerRouteDeps extends Pick<HttpDeps, "idempotency"> {
  readonly engine: PostingEngine;
  readonly queries: LedgerQueries;
  readonly clock: Clock;
  readonly limits: Limits;
}

/** A field's name in messages: `amount` of a single transfer, `transfers[3].amount` of a batch's. */
function fieldName(index: number | null, field: string): string {
  return index === null ? field : `transfers[${index}].${field}`;
}

/**
 * Turns a schema-valid body into a TransferInput, checking the rules that span fields. `index`
 * is the transfer's place in a batch (null for a single transfer), named in errors only: this
 * runs once per transfer of a batch, so no name is built unless a field is refused.
 */
export function parseTransfer(body: Static<typeof TransferCreate>, index: number | null, limits: Limits): TransferInput {
  // No closure here: under tsx every closure created is also named at run time (esbuild's
  // keepNames), which showed in profiles of batches.
  const p = fieldName;
  const isPost = body.post_pending_id !== undefined;
  const isVoid = body.void_pending_id !== undefined;
  if (isPost && isVoid) throw new ApiError("validation_failed", "post_pending_id and void_pending_id exclude each other", p(index, "void_pending_id"));
  if ((isPost || isVoid) && body.pending) {
    throw new ApiError("validation_failed", "a transfer that posts or voids a hold cannot itself be pending", p(index, "pending"));
  }
  if (body.timeout_seconds && !body.pending) throw new ApiError("validation_failed", "timeout_seconds needs pending: true", p(index, "timeout_seconds"));
  if (!isPost && !isVoid) {
    for (const field of ["debit_account_id", "credit_account_id", "amount", "currency"] as const) {
      if (body[field] === undefined) throw new ApiError("validation_failed", `${p(index, field)} is required`, p(index, field));
    }
  }
  if (body.currency !== undefined && !isCurrency(body.currency)) {
    throw new ApiError("validation_failed", `${p(index, "currency")} is not a currency Tally knows`, p(index, "currency"));
  }
  let amount: bigint | undefined;
  if (body.amount !== undefined) {
    const checked = amountOf(body.amount);
    if (checked === null) throw amountOutOfRange(p(index, "amount"));
    amount = checked;
  }
  return {
    id: body.id,
    debitAccountId: body.debit_account_id,
    creditAccountId: body.credit_account_id,
    amount,
    currency: body.currency,
    code: body.code,
    pending: body.pending ?? false,
    timeoutSeconds: body.timeout_seconds ?? 0,
    postPendingId: body.post_pending_id,
    voidPendingId: body.void_pending_id,
    linked: body.linked ?? false,
    reference: body.reference,
    metadata: body.metadata === undefined ? undefined : metadataText(body.metadata, p(index, "metadata"), limits),
  };
}

function json(status: number, body: unknown): StoredResponse {
  return { status, body: stringifyJson(body) };
}

function errorResponse(request: FastifyRequest, status: number, code: string, message: string): StoredResponse {
  return json(status, { error: { code, message, request_id: String(request.id) } });
}

export function registerLedgerRoutes(app: FastifyInstance, deps: LedgerRouteDeps): void {
  const { engine, queries, clock, limits } = deps;
  const merchantOf = (request: FastifyRequest) => request.principal?.merchantId ?? null;

  app.post(
    "/v1/ledger/accounts",
    {
      config: { scope: "ledger:write" },
      schema: { tags: ["ledger"], summary: "Create an account", body: AccountCreate, response: { 409: ErrorResponse } },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof AccountCreate>;
      if (!isCurrency(body.currency)) throw new ApiError("validation_failed", "currency is not a currency Tally knows", "currency");
      const input: AccountInput = {
        id: body.id ?? `acct_${ulid()}`,
        currency: body.currency,
        code: body.code ?? 0,
        normalBalance: body.normal_balance ?? "credit",
        flags: {
          debitsMustNotExceedCredits: body.flags?.debits_must_not_exceed_credits ?? false,
          creditsMustNotExceedDebits: body.flags?.credits_must_not_exceed_debits ?? false,
        },
        owner: body.owner ?? null,
        metadata: metadataText(body.metadata, "metadata", limits) ?? null,
      };
      const render = ([o]: AccountOutcome[]): StoredResponse => {
        if (o!.result === "exists_with_different_fields") {
          return errorResponse(request, 409, "exists_with_different_fields", "an account with this id exists with different fields");
        }
        return json(o!.result === "created" ? 201 : 200, accountJson(o!.account));
      };
      const outcomes = await engine.createAccounts(merchantOf(request), [input], unitOfWorkHook(deps, request, render));
      return sendRendered(reply, request.rendered ?? render(outcomes));
    },
  );

  app.get(
    "/v1/ledger/accounts/:id",
    { config: { scope: "ledger:read" }, schema: { tags: ["ledger"], summary: "Get an account", params: IdParams } },
    async (request) => {
      const { id } = request.params as Static<typeof IdParams>;
      const account = await queries.account(id, merchantOf(request));
      if (!account) throw new ApiError("not_found", `no account ${id}`, "id");
      return accountJson(account);
    },
  );

  app.get(
    "/v1/ledger/accounts/:id/balance",
    { config: { scope: "ledger:read" }, schema: { tags: ["ledger"], summary: "Balance now or at a moment", params: IdParams, querystring: BalanceQuery } },
    async (request) => {
      const { id } = request.params as Static<typeof IdParams>;
      const { at } = request.query as Static<typeof BalanceQuery>;
      let atUs: bigint | null = null;
      if (at !== undefined) {
        atUs = parseTimestampUs(at);
        if (atUs === null) throw new ApiError("validation_failed", "at must be an RFC 3339 timestamp with an offset", "at");
      }
      const account = await queries.account(id, merchantOf(request));
      if (!account) throw new ApiError("not_found", `no account ${id}`, "id");
      const balances = atUs === null ? account : await queries.balanceAt(account, atUs);
      return {
        account_id: account.id,
        currency: account.currency,
        at: atUs === null ? null : formatTimestampUs(atUs),
        ...balancesJson(account.normalBalance, balances),
      };
    },
  );

  app.get(
    "/v1/ledger/accounts/:id/transfers",
    { config: { scope: "ledger:read" }, schema: { tags: ["ledger"], summary: "Transfers touching an account, newest first", params: IdParams, querystring: ListQuery } },
    async (request) => {
      const { id } = request.params as Static<typeof IdParams>;
      const query = request.query as Static<typeof ListQuery>;
      const limit = parseLimit(query.limit, limits);
      const merchantId = merchantOf(request);
      const account = await queries.account(id, merchantId);
      if (!account) throw new ApiError("not_found", `no account ${id}`, "id");
      let after = null;
      if (query.starting_after !== undefined) {
        after = await queries.transfer(query.starting_after, merchantId);
        if (!after || (after.debitAccountId !== id && after.creditAccountId !== id)) {
          throw new ApiError("validation_failed", "starting_after must be the id of a transfer of this account", "starting_after");
        }
      }
      const page = await queries.history(account, limit, after);
      const nowUs = clock.nowUs();
      return {
        data: page.data.map((e) => ({ ...transferJson(e.transfer, nowUs), balance_after: balancesJson(account.normalBalance, e.balanceAfter) })),
        has_more: page.hasMore,
      };
    },
  );

  const renderSingle = (request: FastifyRequest) => ([o]: TransferOutcome[]): StoredResponse => {
    const nowUs = clock.nowUs();
    switch (o!.result) {
      case "created":
        return { status: 201, body: transferText(o!.transfer!, nowUs) };
      case "exists":
        return { status: 200, body: transferText(o!.transfer!, nowUs) };
      case "exists_with_different_fields":
        return errorResponse(request, 409, o!.result, RESULT_MESSAGES[o!.result]);
      default:
        return errorResponse(request, 422, o!.result, RESULT_MESSAGES[o!.result]);
    }
  };

  app.post(
    "/v1/ledger/transfers",
    { config: { scope: "ledger:write" }, schema: { tags: ["ledger"], summary: "Create one transfer", body: TransferCreate } },
    async (request, reply: FastifyReply) => {
      const input = parseTransfer(request.body as Static<typeof TransferCreate>, null, limits);
      const render = renderSingle(request);
      const outcomes = await engine.submitTransfers(merchantOf(request), [input], unitOfWorkHook(deps, request, render));
      return sendRendered(reply, request.rendered ?? render(outcomes));
    },
  );

  app.post(
    "/v1/ledger/transfers/batch",
    {
      bodyLimit: limits.batchBodyBytesMax,
      config: { scope: "ledger:write" },
      schema: { tags: ["ledger"], summary: "Create up to 8190 transfers, applied in order", body: TransferBatch },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof TransferBatch>;
      const inputs = body.transfers.map((t, i) => parseTransfer(t, i, limits));
      // Ids and result codes are strings only: written out directly, without the bigint-aware
      // replacer (called once per key, it was the largest part of answering a batch of 2000) and
      // without an object per transfer to stringify. The schema holds every id to
      // CLIENT_ID_PATTERN ([A-Za-z0-9_.:-]), which needs no escaping in JSON.
      const render = (outcomes: TransferOutcome[]): StoredResponse => {
        const parts = new Array<string>(outcomes.length);
        for (let i = 0; i < outcomes.length; i++) parts[i] = `{"id":"${inputs[i]!.id}","result":"${outcomes[i]!.result}"}`;
        return { status: 200, body: `{"results":[${parts.join(",")}]}` };
      };
      const outcomes = await engine.submitTransfers(merchantOf(request), inputs, unitOfWorkHook(deps, request, render));
      return sendRendered(reply, request.rendered ?? render(outcomes));
    },
  );

  app.get(
    "/v1/ledger/transfers/:id",
    { config: { scope: "ledger:read" }, schema: { tags: ["ledger"], summary: "Get a transfer (and a hold's current status)", params: IdParams } },
    async (request) => {
      const { id } = request.params as Static<typeof IdParams>;
      const transfer = await queries.transfer(id, merchantOf(request));
      if (!transfer) throw new ApiError("not_found", `no transfer ${id}`, "id");
      return transferJson(transfer, clock.nowUs());
    },
  );
}
