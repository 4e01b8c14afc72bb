// The process logger: pino, with secrets and personal data redacted wherever they appear in a
// logged object (request headers, bodies, errors).
import pino, { type Logger } from "pino";

export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers[\"idempotency-key\"]",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "password",
  "*.password",
  "secret",
  "*.secret",
  "key",
  "*.key",
  "api_key",
  "*.api_key",
  "adminKey",
  "*.adminKey",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { service: "tally" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
