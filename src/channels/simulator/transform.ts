// The simulator's rules, pure: what an attempt's `simulator` options make the sandbox answer.
// Stateless on purpose: the options are stored with the attempt, so after a restart a re-query
// gives the same answer the first call would have.
import type { FailureCode, PayResult, PayoutResult, RefundResult } from "../channel.ts";
import { failure, mapFailure } from "../failures.ts";

export const PAY_OUTCOMES = ["succeeded", "declined", "channel_error", "timeout", "pending"] as const;
export type SimulatedPayOutcome = (typeof PAY_OUTCOMES)[number];
export const PAYOUT_OUTCOMES = ["paid", "failed", "returned"] as const;
export type SimulatedPayoutOutcome = (typeof PAYOUT_OUTCOMES)[number];
/** What a `timeout` or `pending` attempt finally becomes. */
export const FINAL_OUTCOMES = ["succeeded", "declined", "channel_error"] as const;
export type SimulatedFinalOutcome = (typeof FINAL_OUTCOMES)[number];

/** The simulator's own codes, mapped like any connector's. */
export const SIMULATOR_CODES: Readonly<Record<string, FailureCode>> = {
  SIM_DECLINED: "declined",
  SIM_CHANNEL_ERROR: "channel_error",
  SIM_PAYOUT_REJECTED: "invalid_account",
  SIM_EXPIRED: "expired",
};

export interface PayOptions {
  readonly outcome: SimulatedPayOutcome;
  readonly delayMs: number;
  readonly then: SimulatedFinalOutcome;
}

export function payOptions(options: Readonly<Record<string, unknown>> | undefined): PayOptions {
  const outcome = options?.outcome;
  const then = options?.then;
  const delay = options?.delay_ms;
  return {
    outcome: typeof outcome === "string" && (PAY_OUTCOMES as readonly string[]).includes(outcome) ? (outcome as SimulatedPayOutcome) : "succeeded",
    delayMs: typeof delay === "number" && Number.isInteger(delay) && delay > 0 ? delay : 0,
    then: typeof then === "string" && (FINAL_OUTCOMES as readonly string[]).includes(then) ? (then as SimulatedFinalOutcome) : "succeeded",
  };
}

export function channelRef(attemptId: string): string {
  return `sim_${attemptId}`;
}

/** The settled result of a final outcome. */
export function finalResult(outcome: SimulatedFinalOutcome, attemptId: string): PayResult {
  switch (outcome) {
    case "succeeded":
      return { status: "succeeded", channelRef: channelRef(attemptId), nextAction: { type: "none" } };
    case "declined":
      return { status: "failed", channelRef: channelRef(attemptId), failure: mapFailure(SIMULATOR_CODES, "SIM_DECLINED", "the simulated payer's bank declined") };
    case "channel_error":
      return { status: "failed", failure: mapFailure(SIMULATOR_CODES, "SIM_CHANNEL_ERROR", "the simulated channel failed") };
  }
}

/** What a query answers `elapsedMs` after the attempt was made. */
export function queryResult(options: PayOptions, attemptId: string, elapsedMs: number): PayResult {
  if (options.delayMs > 0 && elapsedMs < options.delayMs) return { status: "pending", channelRef: channelRef(attemptId) };
  switch (options.outcome) {
    case "pending":
      return { status: "pending", channelRef: channelRef(attemptId) };
    case "timeout":
      return finalResult(options.then, attemptId);
    default:
      return finalResult(options.outcome, attemptId);
  }
}

export function refundResult(): RefundResult {
  return { status: "succeeded" };
}

export function payoutOutcome(options: Readonly<Record<string, unknown>> | undefined): { outcome: SimulatedPayoutOutcome; delayMs: number } {
  const outcome = options?.outcome;
  const delay = options?.delay_ms;
  return {
    outcome: typeof outcome === "string" && (PAYOUT_OUTCOMES as readonly string[]).includes(outcome) ? (outcome as SimulatedPayoutOutcome) : "paid",
    delayMs: typeof delay === "number" && Number.isInteger(delay) && delay > 0 ? delay : 0,
  };
}

export function payoutResult(outcome: SimulatedPayoutOutcome, payoutId: string): PayoutResult {
  const ref = `sim_${payoutId}`;
  if (outcome === "failed") return { status: "failed", channelRef: ref, failure: failure("invalid_account", "SIM_PAYOUT_REJECTED", "the simulated bank rejected the account") };
  return { status: "paid", channelRef: ref };
}
