// HTTP routes of the custody inbox (ESCROW.md "Arrival notices", "Bank profiles", "Statements and
// reconciliation"). Notices and statements take any content type up to 64 MiB, as bytes, and
// only with the bank's own credential (scope `custody:<bank>`) or the admin key.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import { stringifyJson } from "../http/json.ts";
import { IdParams, NO_NUL, parseLimit } from "../http/params.ts";
import { hasCustodyScope } from "../http/api-keys.ts";
import { sendRendered } from "../http/server.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import type { Limits } from "../kernel/config.ts";
import { ApiError } from "../kernel/errors.ts";
import type { Database } from "../db/database.ts";
import { arrivalJson } from "../escrow/view.ts";
import type { ReconciliationService } from "../reconciliation/service.ts";
import { parseDocument } from "./parsers/index.ts";
import type { ArrivalInbox } from "./service.ts";
import type { CustodyEntriesTable } from "../db/schema.ts";

/** The largest notice or statement (ESCROW.md). */
const DOCUMENT_BYTES_MAX = 64 * 1024 * 1024;
const BankParams = Type.Object({ bank: Type.String({ pattern: "^[a-z0-9-]{1,32}$" }) });
const DocList = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal("received"), Type.Literal("processed"), Type.Literal("quarantined")])),
    bank: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
const EntryList = Type.Object(
  {
    status: Type.Optional(Type.Union(["matched", "unmatched", "duplicate", "quarantined", "ignored"].map((s) => Type.Literal(s)))),
    bank: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
  },
  { additionalProperties: false },
);
const MatchBody = Type.Object({ agreement_id: Type.String({ minLength: 1, maxLength: 64 }), reason: Type.String({ minLength: 1, maxLength: 500, pattern: NO_NUL }) }, { additionalProperties: false });

export interface CustodyRouteDeps {
  readonly db: Database;
  readonly inbox: ArrivalInbox;
  readonly reconciliations: ReconciliationService;
  readonly limits: Limits;
  /** Records a refused custody request as a security event. */
  readonly securityEvent?: (request: FastifyRequest, kind: string) => void;
}

const json = (status: number, body: unknown) => ({ status, body: stringifyJson(body) });

function entryJson(e: CustodyEntriesTable) {
  return {
    id: e.id,
    notice_id: e.document_id,
    position: Number(e.position),
    status: e.status,
    reason: e.reason ? (JSON.parse(e.reason) as unknown) : null,
    bank: e.bank,
    bank_reference: e.bank_reference,
    account: e.account,
    amount: e.amount === null ? null : BigInt(e.amount),
    currency: e.currency,
    direction: e.direction,
    booked_at: e.booked_at === null ? null : formatTimestampUs(BigInt(e.booked_at)),
    arrival_id: e.arrival_id,
    agreement_id: e.agreement_id,
  };
}

export function registerCustodyRoutes(app: FastifyInstance, deps: CustodyRouteDeps): void {
  const { db, inbox, reconciliations, limits } = deps;
  const actorOf = (request: FastifyRequest) => request.principal?.keyId ?? "anonymous";

  // Bank documents: bytes of any type, stored before they are read.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: DOCUMENT_BYTES_MAX }, (_request, body, done) => done(null, body));
    const authorise = (request: FastifyRequest, bank: string) => {
      if (!request.principal || !hasCustodyScope(request.principal, bank)) {
        deps.securityEvent?.(request, "custody_scope_refused");
        throw new ApiError("forbidden", `this key may not send documents of bank ${bank}`);
      }
    };
    const bodyOf = (request: FastifyRequest) => {
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new ApiError("validation_failed", "the body is empty");
      return body;
    };
    scope.post(
      "/v1/custody/:bank/notices",
      { bodyLimit: DOCUMENT_BYTES_MAX, config: { authenticated: true }, schema: { tags: ["custody"], summary: "A bank's arrival notice (its own format); stored raw, processed asynchronously", params: BankParams } },
      async (request, reply) => {
        const { bank } = request.params as { bank: string };
        authorise(request, bank);
        const id = await inbox.receive(bank, bodyOf(request), request.headers["content-type"]);
        return sendRendered(reply, json(202, { notice_id: id, status: "received" }));
      },
    );
    scope.post(
      "/v1/custody/:bank/statements",
      { bodyLimit: DOCUMENT_BYTES_MAX, config: { authenticated: true }, schema: { tags: ["custody"], summary: "A bank's daily statement (camt.053 or MT940), reconciled at once", params: BankParams } },
      async (request, reply) => {
        const { bank } = request.params as { bank: string };
        authorise(request, bank);
        const { reconciliation, created } = await reconciliations.receive(bank, bodyOf(request), request.headers["content-type"]);
        return sendRendered(reply, json(created ? 201 : 200, { id: reconciliation.id, status: reconciliation.status, summary: reconciliation.summary }));
      },
    );
  });

  app.get("/v1/custody/notices", { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "Notices, newest first", querystring: DocList } }, async (request, reply) => {
    const q = request.query as Static<typeof DocList>;
    let query = db.read.selectFrom("custody_documents").select(["id", "bank", "status", "received_at", "errors"]).where("kind", "=", "notice");
    if (q.status) query = query.where("status", "=", q.status);
    if (q.bank) query = query.where("bank", "=", q.bank);
    if (q.starting_after) {
      const after = await db.read.selectFrom("custody_documents").select(["received_at", "id"]).where("id", "=", q.starting_after).executeTakeFirst();
      if (!after) throw new ApiError("validation_failed", "starting_after names no notice", "starting_after");
      query = query.where((eb) => eb.or([eb("received_at", "<", after.received_at), eb.and([eb("received_at", "=", after.received_at), eb("id", "<", after.id)])]));
    }
    const limit = parseLimit(q.limit, limits);
    const rows = await query.orderBy("received_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
    const data = rows.slice(0, limit).map((r) => ({ id: r.id, bank: r.bank, status: r.status, received_at: formatTimestampUs(BigInt(r.received_at)), errors: r.errors ? (JSON.parse(r.errors) as unknown) : [] }));
    return sendRendered(reply, json(200, { data, has_more: rows.length > limit }));
  });

  app.get("/v1/custody/notices/:id", { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "A notice: its raw body and entries", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const doc = await db.read.selectFrom("custody_documents").selectAll().where("id", "=", id).executeTakeFirst();
    if (!doc) throw new ApiError("not_found", `no notice ${id}`, "id");
    const entries = await db.read.selectFrom("custody_entries").selectAll().where("document_id", "=", id).orderBy("position").execute();
    const raw = await inbox.documentBody(doc);
    return sendRendered(
      reply,
      json(200, {
        id: doc.id,
        kind: doc.kind,
        bank: doc.bank,
        status: doc.status,
        received_at: formatTimestampUs(BigInt(doc.received_at)),
        content_type: doc.content_type,
        // Byte for byte: UTF-8 text as is; anything else (GB18030) as base64.
        raw_body: raw.toString("utf8"),
        raw_body_base64: raw.toString("base64"),
        errors: doc.errors ? (JSON.parse(doc.errors) as unknown) : [],
        entries: entries.map(entryJson),
      }),
    );
  });

  app.post("/v1/custody/notices/:id/replay", { config: { scope: "escrow:write" }, schema: { tags: ["custody"], summary: "Parse a notice again with the bank's current profile", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const result = await inbox.process(id);
    return sendRendered(reply, json(200, { notice_id: id, status: result.status, errors: result.errors }));
  });

  app.post(
    "/v1/custody/notices/replay",
    { config: { scope: "escrow:write" }, schema: { tags: ["custody"], summary: "Replay every quarantined notice of a bank", body: Type.Object({ bank: Type.String({ maxLength: 32 }), status: Type.Literal("quarantined") }, { additionalProperties: false }) } },
    async (request, reply) => {
      const { bank } = request.body as { bank: string };
      const rows = await db.read.selectFrom("custody_documents").select("id").where("kind", "=", "notice").where("bank", "=", bank).where("status", "=", "quarantined").orderBy("received_at").execute();
      const results = [];
      for (const r of rows) results.push({ notice_id: r.id, ...(await inbox.process(r.id)) });
      return sendRendered(reply, json(200, { replayed: results.length, processed: results.filter((r) => r.status === "processed").length, data: results }));
    },
  );

  app.get("/v1/custody/entries", { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "Entries (the manual queue: ?status=unmatched)", querystring: EntryList } }, async (request, reply) => {
    const q = request.query as Static<typeof EntryList>;
    let query = db.read.selectFrom("custody_entries").selectAll();
    if (q.status) query = query.where("status", "=", q.status as CustodyEntriesTable["status"]);
    if (q.bank) query = query.where("bank", "=", q.bank);
    const limit = parseLimit(q.limit, limits);
    const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
    return sendRendered(reply, json(200, { data: rows.slice(0, limit).map(entryJson), has_more: rows.length > limit }));
  });

  app.post("/v1/custody/entries/:id/match", { config: { scope: "escrow:write" }, schema: { tags: ["custody"], summary: "Match an unmatched entry by hand (audited)", params: IdParams, body: MatchBody } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = request.body as Static<typeof MatchBody>;
    const arrival = await inbox.matchEntryByHand(id, body.agreement_id, body.reason, actorOf(request));
    return sendRendered(reply, json(200, arrivalJson(arrival)));
  });

  app.put("/v1/custody/banks/:bank/profile", { config: { scope: "escrow:write" }, schema: { tags: ["custody"], summary: "How to read a bank's notices (versioned, audited)", params: BankParams } }, async (request, reply) => {
    const { bank } = request.params as { bank: string };
    const stored = await inbox.putProfile(bank, request.body, actorOf(request));
    return sendRendered(reply, json(200, { bank, version: stored.version, profile: stored.profile }));
  });

  app.get("/v1/custody/banks/:bank/profile", { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "A bank's current profile", params: BankParams } }, async (request, reply) => {
    const { bank } = request.params as { bank: string };
    const stored = await inbox.profile(bank);
    if (!stored) throw new ApiError("not_found", `no profile for bank ${bank}`);
    return sendRendered(reply, json(200, { bank, version: stored.version, profile: stored.profile }));
  });

  app.post(
    "/v1/custody/banks/:bank/profile/dry-run",
    { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "What a profile would make of stored notices (applies nothing)", params: BankParams, body: Type.Object({ profile: Type.Unknown(), notice_ids: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 100 }) }, { additionalProperties: false }) } },
    async (request, reply) => {
      const { bank } = request.params as { bank: string };
      const body = request.body as { profile: unknown; notice_ids: string[] };
      const { validateProfile } = await import("./parsers/index.ts");
      const checked = validateProfile(body.profile);
      if ("error" in checked) throw new ApiError("validation_failed", checked.error, `profile.${checked.field}`);
      const data = [];
      for (const id of body.notice_ids) {
        const doc = await db.read.selectFrom("custody_documents").selectAll().where("id", "=", id).where("bank", "=", bank).executeTakeFirst();
        if (!doc) throw new ApiError("validation_failed", `no notice ${id} of bank ${bank}`, "notice_ids");
        const parsed = parseDocument(await inbox.documentBody(doc), checked.profile);
        data.push({
          notice_id: id,
          errors: parsed.errors,
          entries: parsed.statements.flatMap((s) => s.entries).map((e) => ({ position: e.position, bank_reference: e.bankReference, account: e.account, amount: e.amount, currency: e.currency, booked_at: e.bookedAtUs === null ? null : formatTimestampUs(e.bookedAtUs), quarantine: e.quarantine })),
        });
      }
      return sendRendered(reply, json(200, { data }));
    },
  );

  app.get("/v1/custody/reconciliations/:id", { config: { scope: "escrow:read" }, schema: { tags: ["custody"], summary: "A reconciliation with every difference", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    return sendRendered(reply, json(200, await reconciliations.get(id)));
  });

  app.post(
    "/v1/custody/reconciliations/:id/lines/:line/match",
    { config: { scope: "escrow:write" }, schema: { tags: ["custody"], summary: "Fix a missing_in_tally line by matching it to an agreement (audited)", params: Type.Object({ id: Type.String({ maxLength: 64 }), line: Type.String({ pattern: "^[0-9]{1,6}$" }) }), body: MatchBody } },
    async (request, reply) => {
      const { id, line } = request.params as { id: string; line: string };
      const body = request.body as Static<typeof MatchBody>;
      const arrival = await reconciliations.matchLine(id, Number(line), body.agreement_id, body.reason, actorOf(request));
      return sendRendered(reply, json(200, arrivalJson(arrival)));
    },
  );
}
