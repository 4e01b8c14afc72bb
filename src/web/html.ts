// Helpers for the pages Tally serves to people (the cashier, later the console): escaping of
// every string that reaches HTML or an inline script, and the security headers such pages carry.
import { randomBytes } from "node:crypto";

const HTML_ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON that is safe inside `<script type="application/json">`: no `</script>`, no `<!--`, and no
 * line separators that old parsers treat as newlines. Bigints are written as digit strings.
 */
export function jsonForScript(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A URL a page may link to or navigate to: absolute http(s) only, never `javascript:` or `data:`. */
export function safeHttpUrl(text: string | null | undefined): string | null {
  if (typeof text !== "string" || text.length === 0 || text.length > 2048) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  return url.href;
}

/** A fresh nonce for one response's inline script and style. */
export function newNonce(): string {
  return randomBytes(18).toString("base64");
}

/** Headers every page for payers carries: never cached, never framed, no referrer leaks the secret. */
export function pageSecurityHeaders(nonce: string | null): Record<string, string> {
  const csp = nonce
    ? [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src 'nonce-${nonce}'`,
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ].join("; ")
    : "default-src 'none'; frame-ancestors 'none'";
  return {
    "Content-Security-Policy": csp,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
  };
}
