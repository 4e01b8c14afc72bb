// The simulator channel: a sandbox that behaves like a real one. It answers after a configurable
// latency, can time out, leaves attempts pending until a notification, and delivers its own
// notifications (also duplicated or late, when asked) through the same inbox a real channel's go.
import type { Channel, ChannelFlow, PayRequest, PayResult, PayoutRequest, PayoutResult, QueryRequest, RawNotification, RefundRequest, RefundResult } from "../channel.ts";
import { ChannelOutcomeUnknownError } from "../channel.ts";
import { acknowledgeSimulator, verifySimulatorNotification } from "./notify.ts";
import { finalResult, payOptions, payoutOutcome, payoutResult, queryResult, refundResult } from "./transform.ts";

export interface SimulatorSettings {
  /** Added to every call, like a channel's network round trip. */
  readonly latencyMs: number;
  /** Copies of every notification the simulator sends (1 = once; more tests de-duplication). */
  readonly notificationCopies: number;
  /** Extra delay before the simulator's notifications (tests late notifications). */
  readonly notificationDelayMs: number;
}

export const defaultSimulatorSettings: SimulatorSettings = { latencyMs: 0, notificationCopies: 1, notificationDelayMs: 0 };

export type NotificationSink = (notification: RawNotification) => Promise<unknown>;

const FLOWS: ReadonlySet<ChannelFlow> = new Set(["pay", "query", "refund", "payout", "notify"]);

export class SimulatorChannel implements Channel {
  readonly id = "simulator";
  readonly methods = ["simulator", "card", "alipay", "wechat_pay", "unionpay"] as const;
  readonly flows = FLOWS;
  private sink: NotificationSink | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly settings: SimulatorSettings = defaultSimulatorSettings, private readonly nowMs: () => number = Date.now) {}

  /** Where the simulator's own notifications go (the inbox), like a channel's notify URL. */
  connect(sink: NotificationSink): void {
    this.sink = sink;
  }

  /** Cancels notifications not yet sent (shutdown). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  async pay(request: PayRequest): Promise<PayResult> {
    await this.latency();
    const options = payOptions(request.options);
    if (options.delayMs > 0) {
      if (options.outcome !== "pending" && options.outcome !== "timeout") {
        this.notifyLater(options.delayMs, { attempt_id: request.attemptId, outcome: options.outcome });
      }
      return { status: "pending", channelRef: `sim_${request.attemptId}`, nextAction: { type: "none" } };
    }
    switch (options.outcome) {
      case "timeout":
        throw new ChannelOutcomeUnknownError("the simulated channel did not answer in time");
      case "pending":
        return { status: "pending", channelRef: `sim_${request.attemptId}`, nextAction: { type: "none" } };
      default:
        return finalResult(options.outcome, request.attemptId);
    }
  }

  async query(request: QueryRequest): Promise<PayResult> {
    await this.latency();
    const elapsed = this.nowMs() - Number(request.createdAtUs / 1000n);
    return queryResult(payOptions(request.options), request.attemptId, elapsed);
  }

  async refund(_request: RefundRequest): Promise<RefundResult> {
    await this.latency();
    return refundResult();
  }

  async payout(request: PayoutRequest): Promise<PayoutResult> {
    await this.latency();
    const { outcome, delayMs } = payoutOutcome(request.options);
    if (delayMs > 0) {
      this.notifyLater(delayMs, { payout_id: request.payoutId, outcome: outcome === "returned" ? "paid" : outcome });
      if (outcome === "returned") this.notifyLater(delayMs * 2, { payout_id: request.payoutId, outcome: "returned" });
      return { status: "in_transit", channelRef: `sim_${request.payoutId}` };
    }
    if (outcome === "returned") {
      // Paid now; the bank sends the money back a moment later.
      this.notifyLater(1, { payout_id: request.payoutId, outcome: "returned" });
      return payoutResult("paid", request.payoutId);
    }
    return payoutResult(outcome, request.payoutId);
  }

  async queryPayout(request: { readonly payoutId: string; readonly options?: Readonly<Record<string, unknown>> }): Promise<PayoutResult> {
    await this.latency();
    const { outcome } = payoutOutcome(request.options);
    return payoutResult(outcome === "returned" ? "paid" : outcome, request.payoutId);
  }

  async verifyNotification(notification: RawNotification) {
    return verifySimulatorNotification(notification);
  }

  acknowledge(accepted: boolean) {
    return acknowledgeSimulator(accepted);
  }

  private notifyLater(delayMs: number, body: Record<string, string>): void {
    const text = JSON.stringify(body);
    for (let copy = 0; copy < this.settings.notificationCopies; copy++) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.sink?.({ contentType: "application/json", headers: { "content-type": "application/json" }, body: text }).catch(() => {});
      }, delayMs + this.settings.notificationDelayMs + copy);
      timer.unref();
      this.timers.add(timer);
    }
  }

  private async latency(): Promise<void> {
    if (this.settings.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.settings.latencyMs));
  }
}
