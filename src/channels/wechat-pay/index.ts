// The WeChat Pay (API v3) connector's public surface.
import { WechatPayChannel, type WechatPayConfig } from "./client.ts";

export { WechatPayChannel, WECHAT_BASE_URL, WECHAT_PAY_WINDOW_MS_DEFAULT, WECHAT_TIMEOUT_MS_DEFAULT, type WechatPayConfig } from "./client.ts";
export { WECHAT_CODES, TRADE_STATES as WECHAT_TRADE_STATES, REFUND_STATUSES as WECHAT_REFUND_STATUSES } from "./transform.ts";

/** A WeChat Pay channel (id `wechat_pay`, method `wechat_pay`; flows pay (Native, JSAPI), query, refund, notify). */
export function createWechatPayChannel(config: WechatPayConfig, nowMs: () => number = Date.now): WechatPayChannel {
  return new WechatPayChannel(config, nowMs);
}
