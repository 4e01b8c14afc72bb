// HTTP routes of the vault: reveals (the clear value of a personal field, for a key with the
// pii:reveal scope and a stated reason, each one audited before the value is sent), the coverage
// report, and the audit log. A reveal is a GET (nothing is created but the audit row), so no
// Idempotency-Key record can store a clear value; responses say `Cache-Control: no-store`.
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "typebox";
import { stringifyJson } from "../http/json.ts";
import { IdParams, NO_NUL } from "../http/params.ts";
import { sendRendered } from "../http/server.ts";
import { ApiError } from "../kernel/errors.ts";
import type { AuditLog } from "./audit.ts";
import { coverageReport } from "./coverage.ts";
import type { Database } from "../db/database.ts";
import type { Vault } from "./vault.ts";

/** One revealable object field: `GET {path}?reason=` returns what `read` returns. */
export interface Revealer {
  /** e.g. `/v1/payouts/:id/destination` */
  readonly path: string;
  readonly objectType: string;
  readonly field: string;
  readonly summary: string;
  readonly tag: string;
  /** The clear value as a JSON object, or null when the caller's merchant has no such object. */
  read(id: string, merchantId: string | null): Promise<Record<string, unknown> | null>;
}

const RevealQuery = Type.Object({ reason: Type.String({ minLength: 5, maxLength: 500, pattern: NO_NUL }) }, { additionalProperties: false });
const AuditQuery = Type.Object(
  {
    object_type: Type.Optional(Type.String({ maxLength: 64 })),
    object_id: Type.Optional(Type.String({ maxLength: 128 })),
    limit: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,2}$" })),
  },
  { additionalProperties: false },
);

export function registerVaultRoutes(app: FastifyInstance, deps: { db: Database; vault: Vault; audit: AuditLog; revealers: readonly Revealer[] }): void {
  for (const r of deps.revealers) {
    app.get(
      r.path,
      { config: { scope: "pii:reveal" }, schema: { tags: [r.tag], summary: r.summary, description: "Audited: the key id, object, field, time and reason are appended to the vault's audit log before the value is sent.", params: IdParams, querystring: RevealQuery } },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const { reason } = request.query as Static<typeof RevealQuery>;
        const principal = request.principal!;
        const value = await r.read(id, principal.merchantId);
        if (value === null) throw new ApiError("not_found", `no ${r.objectType} ${id}`, "id");
        const entry = await deps.audit.append({ actor: principal.keyId, action: "reveal", objectType: r.objectType, objectId: id, field: r.field, reason: reason.trim() });
        reply.header("Cache-Control", "no-store");
        return sendRendered(reply, { status: 200, body: stringifyJson({ object: `${r.objectType}_${r.field}`, [`${r.objectType}_id`]: id, ...value, audit_id: entry.id }) });
      },
    );
  }

  app.get(
    "/v1/admin/vault/coverage",
    { config: { scope: "vault:admin" }, schema: { tags: ["vault"], summary: "Share of rows of each sensitive column held encrypted" } },
    async (request, reply) => {
      if (request.principal!.merchantId !== null) throw new ApiError("forbidden", "the coverage report is the platform's; a merchant key cannot read it");
      return sendRendered(reply, { status: 200, body: stringifyJson(await coverageReport(deps.db, deps.vault)) });
    },
  );

  app.get(
    "/v1/admin/vault/audit",
    { config: { scope: "vault:admin" }, schema: { tags: ["vault"], summary: "Reveal audit entries, newest first", querystring: AuditQuery } },
    async (request, reply) => {
      if (request.principal!.merchantId !== null) throw new ApiError("forbidden", "the audit log is the platform's; a merchant key cannot read it");
      const q = request.query as Static<typeof AuditQuery>;
      const entries = await deps.audit.list({ ...(q.object_type ? { objectType: q.object_type } : {}), ...(q.object_id ? { objectId: q.object_id } : {}), limit: q.limit ? Number(q.limit) : 20 });
      const data = entries.map((e) => ({ id: e.id, position: e.position.toString(), at: new Date(Number(e.at / 1000n)).toISOString(), actor: e.actor, action: e.action, object_type: e.objectType, object_id: e.objectId, field: e.field, reason: e.reason, hash: e.hash }));
      return sendRendered(reply, { status: 200, body: stringifyJson({ data }) });
    },
  );
}
