// Shared helpers of the pages Tally serves to people (the cashier; the console later).
export { escapeHtml, jsonForScript, newNonce, pageSecurityHeaders, safeHttpUrl } from "./html.ts";
export { formatMoney } from "./money-format.ts";
