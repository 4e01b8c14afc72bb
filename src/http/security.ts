// The HTTP server's security layer (docs/security.md): response headers, rate limits and blocking
// by client address and API key, signed requests with replay protection, and security events with
// their admin route. server.ts calls into it from its hooks; this file holds the rules.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import { ApiError, UnavailableError } from "../kernel/errors.ts";
import type { Limits } from "../kernel/config.ts";
import type { Principal, Verification } from "./api-keys.ts";
import { ClientGuard, type Refusal } from "./client-guard.ts";
import { stringifyJson } from "./json.ts";
import { parseLimit } from "./params.ts";
import { checkSignature, NonceStoreFullError, type NonceStore } from "./request-signing.ts";
import { SECURITY_EVENT_TYPES, SecurityEventRecorder } from "./security-events.ts";

export interface SecurityOptions {
  readonly limits: Limits;
  readonly events: SecurityEventRecorder;
  readonly nonces: NonceStore;
  readonly nowMs: () => number;
  /** Strict-Transport-Security max-age; 0 = not sent. */
  readonly hstsMaxAgeSeconds: number;
}

const SIGNATURE_MESSAGES = {
  missing: "this key requires signed requests: send Tally-Timestamp, Tally-Nonce and Tally-Signature",
  malformed: "Tally-Timestamp must be unix seconds, Tally-Nonce 16-64 characters of [A-Za-z0-9_-], Tally-Signature v1=<64 hex digits>",
  stale: "Tally-Timestamp is outside the accepted window; check the client's clock",
  no_secret: "this key has no signing secret; create a new key to sign requests",
  mismatch: "the request signature does not match",
} as const;

export class HttpSecurity {
  readonly guard: ClientGuard;
  readonly events: SecurityEventRecorder;
  private readonly apiHeaders: Record<string, string>;
  private readonly pageHeaders: Record<string, string>;

  constructor(private readonly options: SecurityOptions) {
    this.events = options.events;
    this.guard = new ClientGuard(options.limits, options.events);
    const hsts: Record<string, string> = options.hstsMaxAgeSeconds > 0 ? { "strict-transport-security": `max-age=${options.hstsMaxAgeSeconds}; includeSubDomains` } : {};
    // API answers are JSON for programs: never sniffed, cached or framed.
    this.apiHeaders = { "x-content-type-options": "nosniff", "cache-control": "no-store", "x-frame-options": "DENY", ...hsts };
    // Swagger UI (/docs) is a page with its own scripts and cacheable assets.
    this.pageHeaders = { "x-content-type-options": "nosniff", ...hsts };
  }

  /**
   * Security headers and the address check, first thing for every request. The cashier
   * (/checkout) sets its own headers; health checks are never refused, so that a load balancer
   * behind one address cannot get itself blocked.
   */
  onRequest(request: FastifyRequest, reply: FastifyReply): void {
    this.setHeaders(request, reply);
    const url = request.url;
    if (url === "/healthz" || url === "/readyz") return;
    const refusal = this.guard.admitAddress(request.ip, this.options.nowMs());
    if (refusal !== null) throw refused(refusal);
  }

  /** The security headers of a response (the cashier, /checkout, sets its own). */
  setHeaders(request: FastifyRequest, reply: FastifyReply): void {
    const url = request.url;
    if (url.startsWith("/checkout/")) return;
    reply.headers(url.startsWith("/docs") ? this.pageHeaders : this.apiHeaders);
  }

  /** A presented key that is not valid: expired and revoked keys in use are security events. */
  keyRejected(request: FastifyRequest, verification: Exclude<Verification, { kind: "valid" }>): void {
    if (verification.kind === "expired") this.events.record({ type: "key_expired", clientAddress: request.ip, keyId: verification.keyId });
    else if (verification.kind === "revoked") this.events.record({ type: "key_revoked", clientAddress: request.ip, keyId: verification.keyId });
  }

  admitKey(request: FastifyRequest, principal: Principal): void {
    const refusal = this.guard.admitKey(principal.keyId, request.ip, this.options.nowMs());
    if (refusal !== null) throw refused(refusal);
  }

  /** Checks a request's signature when its key requires one or the caller sent one. */
  async checkSignature(request: FastifyRequest, principal: Principal): Promise<void> {
    const headers = request.headers;
    const signature = headers["tally-signature"];
    if (signature === undefined && !principal.requireSignature) return;
    const nowMs = this.options.nowMs();
    const windowMs = this.options.limits.signatureWindowMs;
    const failure = checkSignature(
      principal.signingSecret,
      { method: request.method, url: request.url, body: request.rawBody ?? "", timestamp: headers["tally-timestamp"], nonce: headers["tally-nonce"], signature },
      nowMs,
      windowMs,
    );
    if (failure !== null) {
      this.events.record({ type: "signature_invalid", clientAddress: request.ip, keyId: principal.keyId, detail: { reason: failure } });
      throw new ApiError("unauthenticated", SIGNATURE_MESSAGES[failure], failure === "malformed" || failure === "missing" ? "Tally-Signature" : undefined);
    }
    // Only a verified request may spend a nonce, so nobody can burn a client's nonces.
    const timestampMs = Number(headers["tally-timestamp"]) * 1000;
    let fresh: boolean;
    try {
      fresh = await this.options.nonces.remember(principal.keyId, headers["tally-nonce"] as string, timestampMs + windowMs, nowMs);
    } catch (error) {
      if (error instanceof NonceStoreFullError) throw new UnavailableError(error.message, 1);
      throw new UnavailableError("signed requests cannot be checked for replay right now", 1, { cause: error });
    }
    if (!fresh) {
      this.events.record({ type: "nonce_replayed", clientAddress: request.ip, keyId: principal.keyId });
      throw new ApiError("unauthenticated", "this Tally-Nonce was already used; sign every request with a new nonce");
    }
  }

  /** Counts failures that lead to a block: 401s, and 404s on paths no route matches. */
  onResponse(request: FastifyRequest, status: number): void {
    if (status === 401) this.guard.authFailed(request.ip, this.options.nowMs());
    else if (status === 404 && request.routeOptions.url === undefined) this.guard.unknownPath(request.ip, request.url, this.options.nowMs());
  }
}

function refused(refusal: Refusal): ApiError {
  const seconds = String(Math.max(1, Math.ceil(refusal.retryAfterMs / 1000)));
  return refusal.kind === "blocked"
    ? new ApiError("rate_limited", "this client address is blocked for a while after repeated failed authentication or requests for unknown paths", undefined, { "retry-after": seconds })
    : new ApiError("rate_limited", "too many requests; retry after the time in Retry-After", undefined, { "retry-after": seconds });
}

const EventsQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
    starting_after: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    type: Type.Optional(Type.Union(SECURITY_EVENT_TYPES.map((t) => Type.Literal(t)))),
  },
  { additionalProperties: false },
);

export function registerSecurityRoutes(app: FastifyInstance, deps: { events: SecurityEventRecorder; limits: Limits }): void {
  app.get(
    "/v1/admin/security-events",
    {
      config: { scope: "security:read" },
      schema: { tags: ["security"], summary: "Security events (blocked clients, rejected keys and signatures, rate limit trips), newest first", querystring: EventsQuery },
    },
    async (request, reply) => {
      const q = request.query as Static<typeof EventsQuery>;
      const page = await deps.events.list({
        limit: parseLimit(q.limit, deps.limits),
        ...(q.starting_after !== undefined ? { startingAfter: q.starting_after } : {}),
        ...(q.type !== undefined ? { type: q.type } : {}),
      });
      return reply.code(200).type("application/json; charset=utf-8").send(stringifyJson(page));
    },
  );
}
