// TEMPLATE — copy to `src/channels/<name>/notify.ts`. Verifies what the channel posts to
// `/v1/channels/<id>/notify` and answers in the channel's protocol. Order of checks: size, then
// the signature over the exact bytes received, then parsing, then that it is for us (merchant / app
// id), then the change. The amount is returned, not judged: the inbox compares it with the attempt.
import type { NotificationVerdict, NotifyAck, RawNotification } from "../channel.ts";

export const TEMPLATE_NOTIFICATION_BYTES_MAX = 64 * 1024;

export function verifyTemplateNotification(notification: RawNotification): NotificationVerdict {
  if (Buffer.byteLength(notification.body) > TEMPLATE_NOTIFICATION_BYTES_MAX) return { kind: "rejected", reason: "the body is too large" };
  // TODO: verify the channel's signature with its public key (node:crypto createVerify) and reject
  // stale timestamps; decrypt if the channel encrypts; check the merchant/app id is ours; then map
  // the status through transform.ts into `{ kind: "verified", dedupeKey, change }`. Until then,
  // nothing is trusted: a connector that verifies nothing must reject everything.
  return { kind: "rejected", reason: "notification verification is not written yet" };
}

/** TODO: the exact acknowledgement the channel expects (Alipay: text `success`; WeChat Pay: `{"code":"SUCCESS"}`). */
export function acknowledgeTemplate(accepted: boolean): NotifyAck {
  return accepted
    ? { status: 200, contentType: "text/plain; charset=utf-8", body: "success" }
    : { status: 500, contentType: "text/plain; charset=utf-8", body: "fail" };
}
