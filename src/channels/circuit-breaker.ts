// A circuit breaker per channel: after `failuresToOpen` consecutive system failures (channel
// errors, timeouts, unreachable) the channel is skipped for `openMs`; then one probe is let
// through (half-open) and its result closes or reopens the circuit.

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerSettings {
  readonly failuresToOpen: number;
  readonly openMs: number;
}

export const defaultBreakerSettings: BreakerSettings = { failuresToOpen: 5, openMs: 30_000 };

export class CircuitBreaker {
  private failures = 0;
  private openedAtMs: number | null = null;
  private probing = false;

  constructor(private readonly settings: BreakerSettings, private readonly nowMs: () => number) {}

  get state(): BreakerState {
    if (this.openedAtMs === null) return "closed";
    return this.nowMs() - this.openedAtMs >= this.settings.openMs ? "half_open" : "open";
  }

  /** True when a call may go through now; in half-open state only one probe at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open" || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Peeks without taking the probe (for listing candidates). */
  available(): boolean {
    const state = this.state;
    return state === "closed" || (state === "half_open" && !this.probing);
  }

  recordSuccess(): void {
    this.failures = 0;
    this.openedAtMs = null;
    this.probing = false;
  }

  recordSystemFailure(): void {
    this.failures++;
    if (this.probing || this.failures >= this.settings.failuresToOpen) this.openedAtMs = this.nowMs();
    this.probing = false;
  }

  /** A user-caused failure says nothing about the channel's health; it ends a probe as a success. */
  recordUserFailure(): void {
    this.recordSuccess();
  }
}
