// The Fastify server: JSON parsing with limits, authentication by API key and scope,
// idempotency keys, the error shape, discovery (OpenAPI, Swagger UI, health, metrics).
// Feature modules add their routes through `registerRoutes`.
import { createHash } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyServerOptions, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { Logger } from "pino";
import type { Kysely } from "kysely";
import type { Database } from "../db/database.ts";
import type { Tables } from "../db/schema.ts";
import type { IdempotencyStore, StoredResponse } from "../db/idempotency.ts";
import { ApiError, UnavailableError } from "../kernel/errors.ts";
import type { Limits } from "../kernel/config.ts";
import { ulid } from "../kernel/ids.ts";
import type { CoreMetrics, HistogramSeries, MetricsRegistry } from "../ops/metrics.ts";
import { hasScope, type ApiKeyStore, type Principal, type Scope, type Verification } from "./api-keys.ts";
import { errorBody, sendError } from "./errors.ts";
import type { HttpSecurity } from "./security.ts";
import { stringifyJson } from "./json.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    rawBody?: string;
    idempotency?: { principal: string; key: string; hash: string; completed: boolean };
    /** The response a unit of work rendered (and stored for idempotent replay). */
    rendered?: StoredResponse;
  }
  interface FastifyContextConfig {
    /** The scope a caller's key must carry; absent = public. */
    scope?: Scope;
    /** A key is required but the handler checks what it may do (custody banks' own credentials). */
    authenticated?: boolean;
  }
}

export interface HttpDeps {
  readonly db: Database;
  readonly logger: Logger;
  readonly limits: Limits;
  readonly keys: ApiKeyStore;
  readonly idempotency: IdempotencyStore;
  readonly metrics: MetricsRegistry;
  readonly core: CoreMetrics;
  readonly isShuttingDown: () => boolean;
  /** Why the ledger refuses writes right now (its writer thread is down), or null. */
  readonly ledgerProblem?: () => string | null;
  readonly security: HttpSecurity;
  /** Fastify's trustProxy: which proxies' X-Forwarded-For names the client address. */
  readonly trustProxy: boolean | number | string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const requestIdPrefix = ulid().slice(0, 16);
let requestCounter = 0;

export async function buildServer(deps: HttpDeps, registerRoutes: (app: FastifyInstance) => Promise<void> | void): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: deps.limits.bodyBytesMax,
    trustProxy: deps.trustProxy as FastifyServerOptions["trustProxy"],
    // URLs the router refuses before any hook runs (a path segment over maxParamLength, bad
    // percent-encoding) are answered in the error shape too, without echoing the URL.
    frameworkErrors: (error, request, anyReply) => {
      const reply = anyReply as FastifyReply;
      reply.header("X-Request-Id", String(request.id));
      deps.security.setHeaders(request, reply);
      if (error.code === "FST_ERR_MAX_PARAM_LENGTH") return reply.code(414).send(errorBody(request, "uri_too_long", "a path segment is longer than any id Tally accepts"));
      if (error.code === "FST_ERR_BAD_URL") return reply.code(400).send(errorBody(request, "validation_failed", "the URL is not valid (bad percent-encoding)"));
      return sendError(request, reply, error);
    },
    // Request ids: a random per-process prefix and a counter. Unique, cheap (no entropy per
    // request), and sortable within a process.
    genReqId: () => `req_${requestIdPrefix}${(++requestCounter).toString(36).padStart(8, "0")}`,
    // Requests log through the process logger with their id given explicitly where it matters
    // (errors): a child logger per request would cost more than a ledger transfer.
    childLoggerFactory: (logger) => logger,
    requestTimeout: deps.limits.requestTimeoutMs,
    // One log line per request would cost more than the request on the hot path; failures are
    // logged by the error handler and latency goes to /metrics.
    logController: new LogController({ disableRequestLogging: true }),
    // Tally answers requests that arrive while closing itself, in the contract's error shape.
    return503OnClosing: false,
    ajv: {
      // Strict validation: unknown fields are errors (not silently dropped), types are never coerced.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
  });

  // Bodies are JSON, kept raw for idempotency hashing before they are parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(/^application\/(.+\+)?json(\s*;.*)?$/i, { parseAs: "string" }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    if (text.length === 0) return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(new ApiError("validation_failed", "the request body is not valid JSON"), undefined);
    }
    // Keys that could reach an object's prototype when a body is merged somewhere are refused
    // outright (the check is a substring test unless such a key appears at all).
    if (text.includes("__proto__") || text.includes("constructor")) {
      const field = prototypePollutionField(parsed);
      if (field !== null) return done(new ApiError("validation_failed", `${field} holds a forbidden key (__proto__ or constructor.prototype)`, field), undefined);
    }
    done(null, parsed);
  });

  app.setReplySerializer((payload) => (typeof payload === "string" ? payload : stringifyJson(payload)));
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody(request, "not_found", `no route for ${request.method} ${shortPath(request.url)}`)));

  const security = deps.security;
  // The hooks run on every request, so each has a synchronous path for the common case (a cached
  // key, no signature, no Idempotency-Key) and awaits only when there is something to wait for:
  // an async hook costs a promise and a turn of the microtask queue per request, every time.
  const admit = (request: FastifyRequest, verification: Verification, scope: Scope | undefined): void => {
    if (verification.kind !== "valid") {
      security.keyRejected(request, verification);
      throw new ApiError("unauthenticated", "the API key is unknown, expired or revoked");
    }
    const principal = verification.principal;
    security.admitKey(request, principal);
    if (scope && !hasScope(principal, scope)) throw new ApiError("forbidden", `this key lacks the ${scope} scope`);
    request.principal = principal;
  };
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("X-Request-Id", String(request.id));
    security.onRequest(request, reply);
    if (deps.isShuttingDown() && request.url !== "/healthz") {
      reply.header("Connection", "close");
      throw new UnavailableError("the server is shutting down; retry against another instance", 1);
    }
    const config = request.routeOptions.config;
    const scope = config?.scope;
    if (!scope && config?.authenticated !== true) return done();
    const header = request.headers.authorization;
    const match = typeof header === "string" ? /^Bearer ([\x21-\x7e]+)$/.exec(header) : null;
    if (!match) throw new ApiError("unauthenticated", "send an API key: Authorization: Bearer <key>");
    const known = deps.keys.known(match[1]!);
    if (known !== null) {
      admit(request, known, scope);
      return done();
    }
    deps.keys.check(match[1]!).then((verification) => {
      try {
        admit(request, verification, scope);
      } catch (error) {
        return done(error as Error);
      }
      done();
    }, done);
  });

  // preValidation, not preHandler: a request that fails schema validation is answered (and its
  // 400 stored for replay) like any other. Signatures are checked here first: once the raw body
  // is read and before anything (an idempotency record) is written for the request.
  app.addHook("preValidation", (request, reply, done) => {
    const caller = request.principal;
    const signed = caller !== undefined && (caller.requireSignature || request.headers["tally-signature"] !== undefined);
    if (!signed && (request.method !== "POST" || request.headers["idempotency-key"] === undefined)) return done();
    preValidation(request, reply, signed).then(() => done(), done);
  });
  const preValidation = async (request: FastifyRequest, reply: FastifyReply, signed: boolean): Promise<void> => {
    if (signed) await security.checkSignature(request, request.principal!);
    if (request.method !== "POST") return;
    const key = request.headers["idempotency-key"];
    if (key === undefined) return;
    if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key)) {
      throw new ApiError("validation_failed", "Idempotency-Key must be 1-255 printable ASCII characters", "Idempotency-Key");
    }
    const principal = request.principal?.keyId ?? "anonymous";
    const hash = createHash("sha256").update(`${request.method} ${request.url}\n${request.rawBody ?? ""}`).digest("hex");
    const begun = await deps.idempotency.begin(principal, key, hash);
    switch (begun.kind) {
      case "proceed":
        request.idempotency = { principal, key, hash, completed: false };
        return;
      case "replay":
        reply.code(begun.status).header("Idempotent-Replayed", "true").type("application/json; charset=utf-8").send(begun.body);
        return;
      case "reused":
        throw new ApiError("idempotency_key_reused", "this Idempotency-Key was used with a different request");
      case "in_use":
        throw new ApiError("idempotency_key_in_use", "a request with this Idempotency-Key is still in progress; retry later");
    }
  };

  app.addHook("onSend", (request, reply, payload, done) => {
    const idem = request.idempotency;
    if (!idem) return done(null, payload);
    request.idempotency = undefined;
    completeIdempotency(request, reply, payload, idem).then(() => done(null, payload), done);
  });
  const completeIdempotency = async (request: FastifyRequest, reply: FastifyReply, payload: unknown, idem: NonNullable<FastifyRequest["idempotency"]>): Promise<void> => {
    const status = reply.statusCode;
    // The response a unit of work rendered was stored by its commit; a 5xx means it never committed.
    if (request.rendered !== undefined && status < 500) idem.completed = true;
    try {
      if (!idem.completed && status < 500 && typeof payload === "string") {
        // Responses with no unit of work of their own (validation errors, 404s) are stored here.
        await deps.db.transaction((tx) => deps.idempotency.complete(tx, idem.principal, idem.key, idem.hash, { status, body: payload }));
        idem.completed = true;
      }
    } finally {
      // A 5xx is not stored: the client may retry with the same key.
      await deps.idempotency.release(idem.principal, idem.key, idem.completed);
    }
  };

  // The duration histogram's series by route, method and status class, found without building a
  // label set per request (that showed as 2 % of a small request's time).
  const durationSeries = new Map<string, Map<string, Array<HistogramSeries | undefined>>>();
  app.addHook("onResponse", (request, reply, done) => {
    const status = reply.statusCode;
    if (status === 401 || status === 404) security.onResponse(request, status);
    const route = request.routeOptions.url ?? "unmatched";
    let byMethod = durationSeries.get(route);
    if (byMethod === undefined) durationSeries.set(route, (byMethod = new Map()));
    let byClass = byMethod.get(request.method);
    if (byClass === undefined) byMethod.set(request.method, (byClass = []));
    const statusClass = Math.floor(status / 100);
    let series = byClass[statusClass];
    if (series === undefined) {
      series = byClass[statusClass] = deps.core.httpDuration.labelled({ method: request.method, route, status: `${statusClass}xx` });
    }
    series.observe(reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Tally API", version: "1", description: "Payments and double-entry ledger. Amounts are integers in minor units." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  app.get("/openapi.json", { schema: { hide: true } }, async (_request, reply) => reply.type("application/json").send(JSON.stringify(app.swagger())));
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
    if (deps.isShuttingDown()) return reply.code(503).send({ status: "shutting_down" });
    // Not ready while writes are refused: a load balancer sends them to another instance meanwhile.
    if (deps.ledgerProblem?.() != null) return reply.code(503).send({ status: "ledger_unavailable" });
    const ok = await deps.db.ping();
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ready" : "database_unreachable" });
  });
  app.get("/metrics", { schema: { hide: true }, config: { scope: "metrics:read" } }, async (_request, reply) =>
    reply.type("text/plain; version=0.0.4").send(deps.metrics.render()),
  );

  await registerRoutes(app);
  return app;
}

/**
 * The top-level field under which `value` holds a `__proto__` key or a `constructor` key with a
 * `prototype` inside (the shapes that pollute prototypes when merged naively, here or in a
 * merchant's webhook consumer); null when there is none. Iterative: nesting depth cannot
 * overflow the stack.
 */
function prototypePollutionField(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return null;
  const stack: Array<[unknown, string | null]> = [[value, null]];
  while (stack.length > 0) {
    const [node, field] = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key];
      const here = field ?? key;
      if (key === "__proto__") return here;
      if (key === "constructor" && typeof child === "object" && child !== null && Object.prototype.hasOwnProperty.call(child, "prototype")) return here;
      if (typeof child === "object" && child !== null) stack.push([child, here]);
    }
  }
  return null;
}

/**
 * A hook for the engine's unit of work: renders the response inside the transaction and, when
 * the request carries an Idempotency-Key, stores it there, so the record commits with the change.
 */
export function unitOfWorkHook<R>(
  deps: Pick<HttpDeps, "idempotency">,
  request: FastifyRequest,
  render: (outcome: R) => StoredResponse,
): ((tx: Kysely<Tables>, outcome: R) => Promise<void>) | undefined {
  const idem = request.idempotency;
  if (!idem) return undefined;
  return async (tx, outcome) => {
    // The engine may run this more than once (a batch redone); the attempt that commits wins.
    const response = render(outcome);
    request.rendered = response;
    await deps.idempotency.complete(tx, idem.principal, idem.key, idem.hash, response);
  };
}

export function sendRendered(reply: FastifyReply, response: StoredResponse): FastifyReply {
  return reply.code(response.status).type("application/json; charset=utf-8").send(response.body);
}

/** A path for a message: without the query, cut to a length that never floods a response. */
function shortPath(url: string): string {
  const path = url.split("?")[0]!;
  return path.length > 120 ? `${path.slice(0, 120)}…` : path;
}
