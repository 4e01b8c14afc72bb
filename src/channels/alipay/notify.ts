// Alipay's asynchronous notifications: a form-encoded POST, RSA2-signed by Alipay over the sorted
// parameters without sign and sign_type. Verified with the official SDK's checker, after checks it
// does not make: one value per name, RSA2 only (the SDK would accept the weaker RSA-SHA1 if the
// body asked for it), our app_id. The amount is returned, not judged: the inbox compares it.
import type { AlipaySdk } from "alipay-sdk";
import type { NotificationVerdict, NotifyAck, RawNotification } from "../channel.ts";
import { notificationChange } from "./transform.ts";

/** Alipay's notifications are a few hundred bytes; anything far larger is not one. */
export const ALIPAY_NOTIFICATION_BYTES_MAX = 64 * 1024;

/** Parses a form body; null when a name repeats or the body is not form-encoded text. */
export function parseForm(body: string): Record<string, string> | null {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  let search: URLSearchParams;
  try {
    search = new URLSearchParams(body);
  } catch {
    return null;
  }
  for (const [name, value] of search) {
    // A repeated name could make the signature cover one value and Tally read another.
    if (Object.hasOwn(params, name)) return null;
    params[name] = value;
  }
  return params;
}

export function verifyAlipayNotification(sdk: AlipaySdk, appId: string, notification: RawNotification): NotificationVerdict {
  if (Buffer.byteLength(notification.body) > ALIPAY_NOTIFICATION_BYTES_MAX) return { kind: "rejected", reason: "the body is too large" };
  const contentType = notification.contentType?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== undefined && contentType !== "application/x-www-form-urlencoded") return { kind: "rejected", reason: `content type ${contentType} is not a form` };
  const params = parseForm(notification.body);
  if (params === null) return { kind: "rejected", reason: "the body is not a form with one value per name" };
  if (!params.sign) return { kind: "rejected", reason: "sign is missing" };
  if (params.sign_type !== "RSA2") return { kind: "rejected", reason: `sign_type must be RSA2, not ${JSON.stringify(params.sign_type)}` };
  let authentic: boolean;
  try {
    // V2 checks the values as they arrived (already form-decoded once), not decoded a second time.
    authentic = sdk.checkNotifySignV2({ ...params });
  } catch {
    authentic = false;
  }
  if (!authentic) return { kind: "rejected", reason: "the RSA2 signature does not verify with the Alipay public key" };
  // Signed by Alipay, but for another application of ours (or someone else's): not ours to act on.
  if (params.app_id !== appId) return { kind: "rejected", reason: `app_id ${JSON.stringify(params.app_id)} is not this channel's` };
  const outcome = notificationChange(params);
  if ("reject" in outcome) return { kind: "rejected", reason: outcome.reject };
  if ("ignore" in outcome) return { kind: "ignored", dedupeKey: `alipay:${params.notify_id ?? params.out_trade_no}:${params.trade_status}`, reason: outcome.ignore };
  return { kind: "verified", dedupeKey: outcome.dedupeKey, change: outcome.change };
}

/** Alipay stops retrying on the exact text `success`; anything else (`fail`) makes it retry. */
export function acknowledgeAlipay(accepted: boolean): NotifyAck {
  return { status: 200, contentType: "text/plain; charset=utf-8", body: accepted ? "success" : "fail" };
}
