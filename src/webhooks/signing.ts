// Webhook signatures (CONVENTIONS.md): `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<raw body>">`, keyed with the UTF-8 bytes of the endpoint's secret. Receivers check the
// HMAC and that `t` is recent; every redelivery is signed afresh.
import { createHmac, timingSafeEqual } from "node:crypto";

export function signatureHeader(secret: string, timestampS: number, body: string): string {
  const mac = createHmac("sha256", Buffer.from(secret, "utf8")).update(`${timestampS}.${body}`).digest("hex");
  return `t=${timestampS},v1=${mac}`;
}

/** What a merchant's receiver does: true when the header signs `body` and is at most `toleranceS` old. */
export function verifySignature(secret: string, header: string, body: string, nowS: number, toleranceS = 300): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS || typeof parts.v1 !== "string") return false;
  const expected = Buffer.from(signatureHeader(secret, t, body).split("v1=")[1]!, "hex");
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
