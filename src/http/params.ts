// Request schemas and parsers shared by every module's routes: ids, currencies, amounts in minor
// units, metadata, pagination. One definition, so every endpoint validates the same way.
import { Type } from "typebox";
import { ApiError } from "../kernel/errors.ts";
import type { Limits } from "../kernel/config.ts";
import { CLIENT_ID_PATTERN } from "../kernel/ids.ts";
import { JSON_DEPTH_MAX, JsonTooDeepError, canonicalJson } from "../ledger/model.ts";

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Free text may hold any character but NUL, which PostgreSQL cannot store in text. */
export const NO_NUL = "^[^\\u0000]*$";

export const Id = Type.String({ pattern: CLIENT_ID_PATTERN, description: "1-64 characters of [A-Za-z0-9_.:-]" });
export const Currency = Type.String({ pattern: "^[A-Z]{3}$", description: "ISO 4217 code, e.g. CNY" });
export const Amount = Type.Union(
  [
    Type.Integer({ minimum: 1, maximum: MAX_SAFE }),
    Type.String({ pattern: "^[1-9][0-9]{0,15}$" }),
  ],
  { description: "Integer in minor units (fen for CNY), 1 to 2^53 - 1; a string of digits is accepted" },
);
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const ErrorResponse = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), param: Type.Optional(Type.String()), request_id: Type.String() }),
});
export const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: "JSON object, at most 4 KiB" });

export function metadataText(value: Record<string, unknown> | undefined, param: string, limits: Limits): string | undefined {
  if (value === undefined) return undefined;
  let text: string;
  try {
    text = canonicalJson(value);
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw new ApiError("validation_failed", `${param} is nested more than ${JSON_DEPTH_MAX} levels deep`, param);
    throw error;
  }
  if (Buffer.byteLength(text) > limits.metadataBytesMax) {
    throw new ApiError("validation_failed", `${param} must be at most ${limits.metadataBytesMax} bytes of JSON`, param);
  }
  return text === "{}" ? undefined : text;
}

const MAX_SAFE_BIGINT = BigInt(MAX_SAFE);

/** A schema-valid amount in minor units, or null when it is out of range. */
export function amountOf(value: number | string): bigint | null {
  const amount = BigInt(value);
  return amount < 1n || amount > MAX_SAFE_BIGINT ? null : amount;
}

export function amountOutOfRange(param: string): ApiError {
  return new ApiError("validation_failed", `${param} must be between 1 and 2^53 - 1 minor units`, param);
}

export function parseAmount(value: number | string | undefined, param: string): bigint | undefined {
  if (value === undefined) return undefined;
  const amount = amountOf(value);
  if (amount === null) throw amountOutOfRange(param);
  return amount;
}

export function parseLimit(raw: string | undefined, limits: Limits): number {
  if (raw === undefined) return limits.pageSizeDefault;
  const n = Number(raw);
  if (n < 1 || n > limits.pageSizeMax) throw new ApiError("validation_failed", `limit must be between 1 and ${limits.pageSizeMax}`, "limit");
  return n;
}

