// Notifications of the simulator: `{"attempt_id", "outcome"}` for pay-ins (PAYMENTS.md) and
// `{"payout_id", "outcome"}` for payouts, as JSON. The simulator is a sandbox, so there is no
// signature; what keeps a made-up notification from moving money is the inbox's checks (the
// attempt must exist, belong to this channel and still be open).
import type { NotificationVerdict, NotifyAck, RawNotification } from "../channel.ts";
import { FINAL_OUTCOMES, PAYOUT_OUTCOMES, finalResult, payoutResult, type SimulatedFinalOutcome, type SimulatedPayoutOutcome } from "./transform.ts";

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export function verifySimulatorNotification(notification: RawNotification): NotificationVerdict {
  let body: unknown;
  try {
    body = JSON.parse(notification.body);
  } catch {
    return { kind: "rejected", reason: "the body is not JSON" };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { kind: "rejected", reason: "the body is not a JSON object" };
  const { attempt_id: attemptId, payout_id: payoutId, outcome } = body as Record<string, unknown>;
  if (typeof attemptId === "string" && ID.test(attemptId)) {
    if (typeof outcome !== "string" || !(FINAL_OUTCOMES as readonly string[]).includes(outcome)) {
      return { kind: "rejected", reason: `outcome must be one of ${FINAL_OUTCOMES.join(", ")}` };
    }
    const result = finalResult(outcome as SimulatedFinalOutcome, attemptId);
    return {
      kind: "verified",
      dedupeKey: `attempt:${attemptId}:${outcome}`,
      change: { target: "attempt", attemptId, status: result.status, ...(result.channelRef ? { channelRef: result.channelRef } : {}), ...(result.failure ? { failure: result.failure } : {}) },
    };
  }
  if (typeof payoutId === "string" && ID.test(payoutId)) {
    if (typeof outcome !== "string" || !(PAYOUT_OUTCOMES as readonly string[]).includes(outcome)) {
      return { kind: "rejected", reason: `outcome must be one of ${PAYOUT_OUTCOMES.join(", ")}` };
    }
    const result = outcome === "returned" ? { status: "returned" as const, channelRef: `sim_${payoutId}` } : payoutResult(outcome as SimulatedPayoutOutcome, payoutId);
    return { kind: "verified", dedupeKey: `payout:${payoutId}:${outcome}`, change: { target: "payout", payoutId, ...result } };
  }
  return { kind: "rejected", reason: "attempt_id or payout_id is required" };
}

export function acknowledgeSimulator(accepted: boolean): NotifyAck {
  return accepted
    ? { status: 200, contentType: "application/json; charset=utf-8", body: '{"received":true}' }
    : { status: 400, contentType: "application/json; charset=utf-8", body: '{"received":false}' };
}
