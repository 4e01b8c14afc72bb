// The process logger: pino, with secrets and personal data redacted wherever they appear in a
// logged object (request headers, bodies, errors, payout destinations), up to four levels deep.
// Errors are logged through a serializer that keeps only their type, message, code, stack and
// cause: the other properties a driver or HTTP client hangs on an error (a PostgreSQL `detail`
// naming the values of a row, the request and response of a channel call) never reach a log. Long
// runs of digits in messages (card, account, ID and phone numbers) and single-quoted literals (the
// values of SQL text inside a driver's message) are masked as well. What no rule can find is a
// name in other free text; Tally's own messages never carry one.
import pino, { type Logger } from "pino";

/** Keys whose values are secrets or personal data, wherever they appear. */
export const SENSITIVE_KEYS = [
  // Credentials and secrets.
  "authorization",
  "cookie",
  "set-cookie",
  "tally-signature",
  "password",
  "secret",
  "signing_secret",
  "signingSecret",
  "key",
  "api_key",
  "apiKey",
  "adminKey",
  "token",
  "access_token",
  "private_key",
  "privateKey",
  // Personal data.
  "destination",
  "bank_account_number",
  "bankAccountNumber",
  "account_number",
  "accountNumber",
  "card_number",
  "cardNumber",
  "account_name",
  "accountName",
  "holder_name",
  "holderName",
  "payer_name",
  "payerName",
  "full_name",
  "fullName",
  "real_name",
  "realName",
  "id_number",
  "idNumber",
  "phone",
  "mobile",
  "email",
  // Whole bodies: they may hold any of the above.
  "body",
  "rawBody",
  "payload",
] as const;

/** pino redaction paths: each sensitive key at the top and up to three levels down. */
export const REDACT_PATHS: string[] = SENSITIVE_KEYS.flatMap((key) => {
  const k = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
  const dot = k.startsWith("[") ? "" : ".";
  return [k, `*${dot}${k}`, `*.*${dot}${k}`, `*.*.*${dot}${k}`];
});

// Card, account, ID and phone numbers: 8 or more digits, maybe in groups split by single spaces,
// maybe ending in the X of a resident ID number.
const LONG_NUMBER = /\d(?: ?\d){7,}[Xx]?/g;

// A single-quoted literal as SQL writes it ('' escapes a quote), on one line.
const QUOTED_LITERAL = /'(?:[^'\n]|'')*'/g;

export function maskNumbers(text: string): string {
  return text.replace(LONG_NUMBER, "[number]");
}

/** An error's message or stack as logged: long numbers and quoted literals masked. */
export function maskErrorText(text: string): string {
  return maskNumbers(text).replace(QUOTED_LITERAL, "'[value]'");
}

interface SafeError {
  type: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SafeError | string;
}

/** What of an error may be logged; the rest (detail, parameters, request, response...) is dropped. */
export function safeError(value: unknown, depth = 0): SafeError | string {
  if (!(value instanceof Error)) return maskErrorText(typeof value === "string" ? value : Object.prototype.toString.call(value));
  const code = (value as { code?: unknown }).code;
  const out: SafeError = { type: value.name, message: maskErrorText(value.message) };
  if (typeof code === "string" || typeof code === "number") out.code = String(code);
  if (value.stack) out.stack = maskErrorText(value.stack);
  if (value.cause !== undefined && depth < 3) out.cause = safeError(value.cause, depth + 1);
  return out;
}

/** A request as logged: method, path (no query: it may carry personal data) and client address. */
function safeRequest(value: unknown): unknown {
  const r = value as { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } } | null;
  if (!r || typeof r !== "object") return r;
  return { method: r.method, path: typeof r.url === "string" ? r.url.split("?")[0] : undefined, remoteAddress: r.ip ?? r.socket?.remoteAddress };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: safeError, error: safeError, req: safeRequest, request: safeRequest },
      base: { service: "tally" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
