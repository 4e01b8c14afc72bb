// Routing: which channel serves an attempt. Rules (method, currency, amount range, merchant)
// pick a list of channels with weights (traffic shift, 切量); a weighted draw picks the first,
// the rest follow as failover candidates; channels whose circuit is open are skipped. The rules
// live in a JSON file that is re-read when it changes, so a shift needs no restart.
import { readFileSync, statSync } from "node:fs";
import type { Logger } from "pino";
import type { Channel, PaymentMethod } from "./channel.ts";
import { CircuitBreaker, defaultBreakerSettings, type BreakerSettings, type BreakerState } from "./circuit-breaker.ts";

export interface RouteRule {
  readonly methods?: readonly string[];
  readonly currency?: string;
  readonly amountMin?: bigint;
  readonly amountMax?: bigint;
  readonly merchants?: readonly string[];
  readonly flow?: "pay_in" | "payout";
  readonly channels: ReadonlyArray<{ readonly channel: string; readonly weight: number }>;
}

export interface RoutingConfig {
  readonly rules: readonly RouteRule[];
  readonly breaker: BreakerSettings;
}

export interface RouteContext {
  readonly flow: "pay_in" | "payout";
  readonly method: PaymentMethod | "bank_transfer";
  readonly currency: string;
  readonly amount: bigint;
  readonly merchantId: string | null;
}

/** How often, at most, the routing file's modification time is checked. */
const FILE_CHECK_INTERVAL_MS = 1000;
const RULES_MAX = 1000;

export class RoutingConfigError extends Error {
  override name = "RoutingConfigError";
}

/** Parses and validates a routing file's JSON text; throws RoutingConfigError naming the problem. */
export function parseRoutingConfig(text: string): RoutingConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new RoutingConfigError(`routing file is not JSON: ${(error as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null) throw new RoutingConfigError("routing file must hold a JSON object");
  const { rules, breaker } = doc as { rules?: unknown; breaker?: unknown };
  if (!Array.isArray(rules) || rules.length > RULES_MAX) throw new RoutingConfigError(`rules must be an array of at most ${RULES_MAX}`);
  const parsed = rules.map((rule, i): RouteRule => {
    const at = `rules[${i}]`;
    if (typeof rule !== "object" || rule === null) throw new RoutingConfigError(`${at} must be an object`);
    const r = rule as Record<string, unknown>;
    const strings = (name: string) => {
      const v = r[name];
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new RoutingConfigError(`${at}.${name} must be an array of strings`);
      return v as string[];
    };
    const amount = (name: string) => {
      const v = r[name];
      if (v === undefined) return undefined;
      if (!(typeof v === "number" && Number.isSafeInteger(v) && v >= 0) && !(typeof v === "string" && /^\d{1,16}$/.test(v))) {
        throw new RoutingConfigError(`${at}.${name} must be a whole number of minor units`);
      }
      return BigInt(v as number | string);
    };
    if (!Array.isArray(r.channels) || r.channels.length === 0) throw new RoutingConfigError(`${at}.channels must list at least one channel`);
    const channels = r.channels.map((c, j) => {
      const e = c as { channel?: unknown; weight?: unknown };
      if (typeof e?.channel !== "string") throw new RoutingConfigError(`${at}.channels[${j}].channel must be a channel id`);
      const weight = e.weight ?? 1;
      if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 1_000_000) {
        throw new RoutingConfigError(`${at}.channels[${j}].weight must be a whole number from 0 to 1000000`);
      }
      return { channel: e.channel, weight };
    });
    if (r.flow !== undefined && r.flow !== "pay_in" && r.flow !== "payout") throw new RoutingConfigError(`${at}.flow must be pay_in or payout`);
    if (r.currency !== undefined && (typeof r.currency !== "string" || !/^[A-Z]{3}$/.test(r.currency))) throw new RoutingConfigError(`${at}.currency must be an ISO 4217 code`);
    const methods = strings("methods");
    const merchants = strings("merchants");
    const amountMin = amount("amount_min");
    const amountMax = amount("amount_max");
    return {
      channels,
      ...(methods ? { methods } : {}),
      ...(merchants ? { merchants } : {}),
      ...(r.currency !== undefined ? { currency: r.currency as string } : {}),
      ...(amountMin !== undefined ? { amountMin } : {}),
      ...(amountMax !== undefined ? { amountMax } : {}),
      ...(r.flow !== undefined ? { flow: r.flow as "pay_in" | "payout" } : {}),
    };
  });
  const b = (breaker ?? {}) as Record<string, unknown>;
  const int = (v: unknown, fallback: number, name: string) => {
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new RoutingConfigError(`breaker.${name} must be a positive whole number`);
    return v;
  };
  return {
    rules: parsed,
    breaker: { failuresToOpen: int(b.failures_to_open, defaultBreakerSettings.failuresToOpen, "failures_to_open"), openMs: int(b.open_ms, defaultBreakerSettings.openMs, "open_ms") },
  };
}

function matches(rule: RouteRule, ctx: RouteContext): boolean {
  if (rule.flow !== undefined && rule.flow !== ctx.flow) return false;
  if (rule.methods && !rule.methods.includes(ctx.method)) return false;
  if (rule.currency !== undefined && rule.currency !== ctx.currency) return false;
  if (rule.amountMin !== undefined && ctx.amount < rule.amountMin) return false;
  if (rule.amountMax !== undefined && ctx.amount > rule.amountMax) return false;
  if (rule.merchants && (ctx.merchantId === null || !rule.merchants.includes(ctx.merchantId))) return false;
  return true;
}

export class Router {
  private config: RoutingConfig;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private fileMtimeMs = 0;
  private lastCheckMs = 0;

  constructor(
    private readonly channels: ReadonlyMap<string, Channel>,
    private readonly options: { file?: string; config?: RoutingConfig; logger?: Logger; nowMs?: () => number; random?: () => number } = {},
  ) {
    this.config = options.config ?? { rules: [], breaker: defaultBreakerSettings };
    if (options.file) this.reload();
  }

  private get nowMs(): number {
    return (this.options.nowMs ?? Date.now)();
  }

  /** Re-reads the routing file; a broken file keeps the previous rules and is logged. */
  reload(): boolean {
    const file = this.options.file;
    if (!file) return false;
    try {
      const mtime = statSync(file).mtimeMs;
      const next = parseRoutingConfig(readFileSync(file, "utf8"));
      for (const rule of next.rules) {
        for (const c of rule.channels) if (!this.channels.has(c.channel)) throw new RoutingConfigError(`unknown channel "${c.channel}" in the routing file`);
      }
      this.config = next;
      this.fileMtimeMs = mtime;
      this.breakers.clear();
      this.options.logger?.info({ file, rules: next.rules.length }, "routing rules loaded");
      return true;
    } catch (error) {
      this.options.logger?.error({ file, err: error }, "routing file rejected; the previous rules stay in force");
      // Remember the broken file's time so it is not re-read (and re-logged) until it changes again.
      try {
        this.fileMtimeMs = statSync(file).mtimeMs;
      } catch {
        // The file is gone: keep the rules.
      }
      return false;
    }
  }

  private checkFile(): void {
    const file = this.options.file;
    if (!file || this.nowMs - this.lastCheckMs < FILE_CHECK_INTERVAL_MS) return;
    this.lastCheckMs = this.nowMs;
    try {
      if (statSync(file).mtimeMs !== this.fileMtimeMs) this.reload();
    } catch {
      // A file that vanished keeps the rules last read.
    }
  }

  breaker(channelId: string): CircuitBreaker {
    let b = this.breakers.get(channelId);
    if (!b) {
      b = new CircuitBreaker(this.config.breaker, () => this.nowMs);
      this.breakers.set(channelId, b);
    }
    return b;
  }

  breakerStates(): Array<{ channel: string; state: BreakerState }> {
    return [...this.channels.keys()].map((channel) => ({ channel, state: this.breakers.get(channel)?.state ?? "closed" }));
  }

  /**
   * The channels to try for `ctx`, in order: a weighted draw first, then failover candidates by
   * weight. Channels whose circuit is open are left out. Empty when none can serve.
   */
  candidates(ctx: RouteContext): string[] {
    this.checkFile();
    const flowOk = (id: string) => {
      const channel = this.channels.get(id);
      if (!channel) return false;
      if (ctx.flow === "payout") return channel.flows.has("payout");
      return channel.flows.has("pay") && (channel.methods as readonly string[]).includes(ctx.method);
    };
    const rule = this.config.rules.find((r) => matches(r, ctx));
    let weighted: Array<{ channel: string; weight: number }>;
    if (rule) {
      weighted = rule.channels.filter((c) => flowOk(c.channel)).map((c) => ({ ...c }));
    } else {
      // No rule: the channel named like the method alone (no silent failover to another
      // provider); where no such channel is configured, any channel that serves the method
      // (a fresh install's simulator serves every method, so the whole flow can be tried).
      const ids = [...this.channels.keys()].filter(flowOk);
      const named = ids.filter((id) => id === ctx.method);
      weighted = (named.length > 0 ? named : ids).map((channel, i) => ({ channel, weight: i === 0 ? 1 : 0 }));
    }
    const healthy = weighted.filter((c) => this.breaker(c.channel).available());
    if (healthy.length === 0) return [];
    const total = healthy.reduce((sum, c) => sum + c.weight, 0);
    let firstIndex = 0;
    if (total > 0) {
      let draw = (this.options.random ?? Math.random)() * total;
      firstIndex = healthy.findIndex((c) => (draw -= c.weight) < 0);
      if (firstIndex < 0) firstIndex = healthy.length - 1;
    }
    const first = healthy[firstIndex]!;
    const rest = healthy.filter((_, i) => i !== firstIndex).sort((a, b) => b.weight - a.weight);
    return [first.channel, ...rest.map((c) => c.channel)];
  }
}
