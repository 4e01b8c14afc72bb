// One function maps every failure to the public error shape
// {"error": {code, message, param, request_id}}. A 5xx never carries internals.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ApiError, UnavailableError, type ErrorCode } from "../kernel/errors.ts";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; param?: string; request_id: string };
}

export function errorBody(request: FastifyRequest, code: ErrorCode, message: string, param?: string): ErrorBody {
  return { error: { code, message, ...(param !== undefined ? { param } : {}), request_id: String(request.id) } };
}

/** "/transfers/3/amount" → "transfers[3].amount" */
export function paramFromPath(path: string): string | undefined {
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return undefined;
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

function validationMessage(e: AjvError, param: string | undefined): { param: string | undefined; message: string } {
  const field = param ?? "body";
  switch (e.keyword) {
    case "additionalProperties": {
      const extra = String(e.params.additionalProperty);
      const full = param ? `${param}.${extra}` : extra;
      return { param: full, message: `unknown field "${full}"` };
    }
    case "required": {
      const missing = String(e.params.missingProperty);
      const full = param ? `${param}.${missing}` : missing;
      return { param: full, message: `${full} is required` };
    }
    case "anyOf":
      if (/amount$/.test(field)) return { param, message: `${field} must be a positive integer in minor units (at most 2^53 - 1), or a string of digits` };
      return { param, message: `${field} has an invalid value` };
    default:
      return { param, message: `${field} ${e.message ?? "is invalid"}` };
  }
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof ApiError) {
    if (error.headers) reply.headers(error.headers);
    return reply.code(error.status).send(errorBody(request, error.code, error.message, error.param));
  }
  if (error instanceof UnavailableError) {
    reply.header("Retry-After", String(error.retryAfterSeconds));
    if (error.cause) request.log.warn({ err: error.cause, request_id: request.id }, error.message);
    return reply.code(503).send(errorBody(request, "unavailable", error.message));
  }
  const fe = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation && fe.validation.length > 0) {
    // The most specific error first: anyOf wraps the branch errors that explain less.
    const e = fe.validation.find((v) => v.keyword === "anyOf") ?? fe.validation[0]!;
    const context = fe.validationContext === "querystring" ? "" : "";
    const { param, message } = validationMessage(e, paramFromPath(e.instancePath));
    return reply.code(400).send(errorBody(request, "validation_failed", message, param ? context + param : undefined));
  }
  switch (fe.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return reply.code(413).send(errorBody(request, "payload_too_large", "the request body is larger than this endpoint accepts"));
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return reply.code(415).send(errorBody(request, "unsupported_media_type", "send JSON with Content-Type: application/json"));
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return reply.code(400).send(errorBody(request, "validation_failed", "the request body is empty; send a JSON object"));
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return reply.code(400).send(errorBody(request, "validation_failed", "the Content-Length does not match the body"));
  }
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code: ErrorCode = status === 404 ? "not_found" : status === 413 ? "payload_too_large" : status === 415 ? "unsupported_media_type" : "validation_failed";
    return reply.code(status).send(errorBody(request, code, status === 400 ? `bad request: ${fe.message}` : fe.message));
  }
  request.log.error({ err: error, request_id: request.id, route: request.routeOptions.url }, "request failed");
  return reply.code(500).send(errorBody(request, "internal_error", "something went wrong on our side; it has been logged"));
}
