// WeChat Pay v3 notifications: JSON signed by the platform key (Wechatpay-* headers, refused beyond
// 5 minutes of age), carrying an AES-256-GCM encrypted resource. The resource's mchid and appid
// must be ours. The amount is returned, not judged: the inbox compares it with the attempt.
import type { NotificationVerdict, NotifyAck, RawNotification } from "../channel.ts";
import { decryptResource, signatureProblem, type PlatformKeys } from "./crypto.ts";
import { notificationChange } from "./transform.ts";

/** WeChat's notifications are about a kilobyte; anything far larger is not one. */
export const WECHAT_NOTIFICATION_BYTES_MAX = 64 * 1024;

export interface NotifyKeys {
  readonly mchid: string;
  readonly appid: string;
  readonly apiV3Key: Buffer;
  readonly platformKeys: PlatformKeys;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function verifyWechatNotification(keys: NotifyKeys, notification: RawNotification, nowMs: number): NotificationVerdict {
  if (Buffer.byteLength(notification.body) > WECHAT_NOTIFICATION_BYTES_MAX) return { kind: "rejected", reason: "the body is too large" };
  // The signature covers the body's exact bytes, so it is checked before anything is parsed.
  const problem = signatureProblem(notification.headers, notification.body, keys.platformKeys, nowMs);
  if (problem !== null) return { kind: "rejected", reason: problem };
  let envelope: unknown;
  try {
    envelope = JSON.parse(notification.body);
  } catch {
    return { kind: "rejected", reason: "the body is not JSON" };
  }
  if (!isObject(envelope) || !isObject(envelope.resource)) return { kind: "rejected", reason: "resource is missing" };
  const { resource } = envelope;
  const eventType = typeof envelope.event_type === "string" ? envelope.event_type : "";
  if (resource.algorithm !== "AEAD_AES_256_GCM" || typeof resource.ciphertext !== "string" || typeof resource.nonce !== "string") {
    return { kind: "rejected", reason: "resource is not AEAD_AES_256_GCM with ciphertext and nonce" };
  }
  let plain: unknown;
  try {
    plain = JSON.parse(
      decryptResource(keys.apiV3Key, {
        ciphertext: resource.ciphertext,
        nonce: resource.nonce,
        ...(typeof resource.associated_data === "string" ? { associated_data: resource.associated_data } : {}),
      }),
    );
  } catch {
    return { kind: "rejected", reason: "resource does not decrypt with the APIv3 key" };
  }
  if (!isObject(plain)) return { kind: "rejected", reason: "the decrypted resource is not a JSON object" };
  if (plain.mchid !== keys.mchid) return { kind: "rejected", reason: `mchid ${JSON.stringify(plain.mchid)} is not this channel's` };
  // Refund resources carry no appid; transaction resources must carry ours.
  if (eventType.startsWith("TRANSACTION.") && plain.appid !== keys.appid) return { kind: "rejected", reason: `appid ${JSON.stringify(plain.appid)} is not this channel's` };
  const outcome = notificationChange(eventType, plain);
  if ("reject" in outcome) return { kind: "rejected", reason: outcome.reject };
  if ("ignore" in outcome) return { kind: "ignored", dedupeKey: `wechat_pay:${String(envelope.id)}`, reason: outcome.ignore };
  return { kind: "verified", dedupeKey: outcome.dedupeKey, change: outcome.change };
}

/** 200 `{"code":"SUCCESS"}` stops WeChat's retries; a 5xx `FAIL` makes it send again later. */
export function acknowledgeWechat(accepted: boolean): NotifyAck {
  return accepted
    ? { status: 200, contentType: "application/json; charset=utf-8", body: '{"code":"SUCCESS"}' }
    : { status: 500, contentType: "application/json; charset=utf-8", body: '{"code":"FAIL","message":"not accepted"}' };
}
