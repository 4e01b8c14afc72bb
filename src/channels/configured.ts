// Builds the real connectors the configuration names (Alipay, WeChat Pay). A connector is on when
// its identifying setting is present; a half-configured one stops the start with a clear message
// instead of failing on the first payment.
import { readFileSync } from "node:fs";
import type { Channel } from "./channel.ts";
import { createAlipayChannel } from "./alipay/index.ts";
import { createWechatPayChannel } from "./wechat-pay/index.ts";

export class ChannelConfigError extends Error {
  override name = "ChannelConfigError";
}

function required(settings: Readonly<Record<string, string>>, name: string): string {
  const value = settings[name];
  if (!value) throw new ChannelConfigError(`${name} is required when its channel is configured`);
  return value;
}

function file(settings: Readonly<Record<string, string>>, name: string): string {
  const path = required(settings, name);
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new ChannelConfigError(`${name}: cannot read ${path} (${(error as Error).message})`);
  }
}

function int(settings: Readonly<Record<string, string>>, name: string): number | undefined {
  const raw = settings[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw new ChannelConfigError(`${name} must be a whole number`);
  return Number(raw);
}

/** `settings` holds the TALLY_ALIPAY_* and TALLY_WECHAT_* variables (config.ts collects them). */
export function configuredChannels(settings: Readonly<Record<string, string>>, nowMs: () => number): Channel[] {
  const channels: Channel[] = [];
  if (settings.TALLY_ALIPAY_APP_ID) {
    const seller = settings.TALLY_ALIPAY_HUABEI_SELLER_PERCENT;
    if (seller !== undefined && seller !== "0" && seller !== "100") throw new ChannelConfigError("TALLY_ALIPAY_HUABEI_SELLER_PERCENT must be 0 or 100");
    const timeoutMs = int(settings, "TALLY_ALIPAY_TIMEOUT_MS");
    const payWindowMs = int(settings, "TALLY_ALIPAY_PAY_WINDOW_MS");
    channels.push(
      createAlipayChannel(
        {
          appId: settings.TALLY_ALIPAY_APP_ID,
          privateKey: file(settings, "TALLY_ALIPAY_PRIVATE_KEY_FILE"),
          alipayPublicKey: file(settings, "TALLY_ALIPAY_PUBLIC_KEY_FILE"),
          ...(settings.TALLY_ALIPAY_GATEWAY ? { gatewayUrl: settings.TALLY_ALIPAY_GATEWAY } : {}),
          ...(settings.TALLY_ALIPAY_NOTIFY_URL ? { notifyUrl: settings.TALLY_ALIPAY_NOTIFY_URL } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(payWindowMs !== undefined ? { payWindowMs } : {}),
          ...(seller !== undefined ? { huabeiSellerPercent: Number(seller) as 0 | 100 } : {}),
        },
        nowMs,
      ),
    );
  }
  if (settings.TALLY_WECHAT_MCHID) {
    const keyPaths = required(settings, "TALLY_WECHAT_PLATFORM_PUBLIC_KEY_FILE").split(",");
    const serials = required(settings, "TALLY_WECHAT_PLATFORM_KEY_SERIAL").split(",");
    if (keyPaths.length !== serials.length) throw new ChannelConfigError("TALLY_WECHAT_PLATFORM_PUBLIC_KEY_FILE and TALLY_WECHAT_PLATFORM_KEY_SERIAL must list as many entries");
    const platformPublicKeys: Record<string, string> = {};
    keyPaths.forEach((path, i) => (platformPublicKeys[serials[i]!.trim()] = file({ key: path.trim() }, "key")));
    const timeoutMs = int(settings, "TALLY_WECHAT_TIMEOUT_MS");
    const payWindowMs = int(settings, "TALLY_WECHAT_PAY_WINDOW_MS");
    channels.push(
      createWechatPayChannel(
        {
          mchid: settings.TALLY_WECHAT_MCHID,
          appid: required(settings, "TALLY_WECHAT_APPID"),
          merchantPrivateKey: file(settings, "TALLY_WECHAT_PRIVATE_KEY_FILE"),
          merchantSerialNo: required(settings, "TALLY_WECHAT_CERT_SERIAL"),
          apiV3Key: file(settings, "TALLY_WECHAT_APIV3_KEY_FILE").trim(),
          platformPublicKeys,
          ...(settings.TALLY_WECHAT_BASE_URL ? { baseUrl: settings.TALLY_WECHAT_BASE_URL } : {}),
          ...(settings.TALLY_WECHAT_NOTIFY_URL ? { notifyUrl: settings.TALLY_WECHAT_NOTIFY_URL } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(payWindowMs !== undefined ? { payWindowMs } : {}),
          ...(settings.TALLY_WECHAT_JSAPI_PAGE_URL ? { jsapiPageUrl: settings.TALLY_WECHAT_JSAPI_PAGE_URL } : {}),
        },
        nowMs,
      ),
    );
  }
  return channels;
}
