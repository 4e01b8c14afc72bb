// The channels module's public surface.
export * from "./channel.ts";
export { failure, mapFailure, USER_CAUSED } from "./failures.ts";
export { Router, parseRoutingConfig, RoutingConfigError, type RouteContext, type RoutingConfig, type RouteRule } from "./routing.ts";
export { CircuitBreaker, type BreakerState } from "./circuit-breaker.ts";
export { SimulatorChannel, defaultSimulatorSettings, type SimulatorSettings } from "./simulator/index.ts";
export { AlipayChannel, createAlipayChannel, type AlipayConfig } from "./alipay/index.ts";
export { WechatPayChannel, createWechatPayChannel, type WechatPayConfig } from "./wechat-pay/index.ts";
