// The Alipay connector's public surface.
import { AlipayChannel, type AlipayConfig } from "./client.ts";

export { AlipayChannel, ALIPAY_GATEWAY_URL, ALIPAY_PAY_WINDOW_MS_DEFAULT, ALIPAY_TIMEOUT_MS_DEFAULT, type AlipayConfig } from "./client.ts";
export { ALIPAY_SUB_CODES, TRADE_STATUSES as ALIPAY_TRADE_STATUSES, HUABEI_PERIODS, toYuan, fromYuan } from "./transform.ts";

/** An Alipay channel (id `alipay`, method `alipay`; flows pay, query, refund, notify). */
export function createAlipayChannel(config: AlipayConfig, nowMs: () => number = Date.now): AlipayChannel {
  return new AlipayChannel(config, nowMs);
}
