// Rate limits and blocking, in memory. Each client address and each API key has a token bucket
// (refilled at a steady rate up to a burst); an address that fails authentication or asks for
// unknown paths too often within a window is blocked for a while. The per-request cost is one
// Map lookup per address and per key and a little arithmetic: no allocation once a client is
// known, no I/O. Every process keeps its own counts (a deployment of N processes allows N times
// the rate), which is the intended trade: the limits guard a process, not a global quota.
import type { Limits } from "../kernel/config.ts";
import { recordablePath, type SecurityEventRecorder } from "./security-events.ts";

interface Bucket {
  tokens: number;
  refilledMs: number;
}

interface AddressState extends Bucket {
  blockedUntilMs: number;
  windowStartMs: number;
  authFailures: number;
  unknownPaths: number;
}

/** Takes one token; 0 when granted, otherwise the milliseconds until one is available. */
function take(bucket: Bucket, nowMs: number, perMs: number, burst: number): number {
  const elapsed = nowMs - bucket.refilledMs;
  if (elapsed > 0) {
    bucket.tokens = Math.min(burst, bucket.tokens + elapsed * perMs);
    bucket.refilledMs = nowMs;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return Math.max(1, Math.ceil((1 - bucket.tokens) / perMs));
}

export type Refusal = { readonly kind: "blocked" | "rate_limited"; readonly retryAfterMs: number };

export type GuardLimits = Pick<
  Limits,
  | "rateLimitKeyPerSecond"
  | "rateLimitKeyBurst"
  | "rateLimitAddressPerSecond"
  | "rateLimitAddressBurst"
  | "blockWindowMs"
  | "blockAuthFailuresMax"
  | "blockUnknownPathsMax"
  | "blockDurationMs"
  | "clientAddressesTrackedMax"
>;

export class ClientGuard {
  private readonly addresses = new Map<string, AddressState>();
  private readonly keys = new Map<string, Bucket>();
  private readonly addressPerMs: number;
  private readonly keyPerMs: number;

  constructor(private readonly limits: GuardLimits, private readonly events: SecurityEventRecorder) {
    this.addressPerMs = limits.rateLimitAddressPerSecond / 1000;
    this.keyPerMs = limits.rateLimitKeyPerSecond / 1000;
  }

  /** Null when the address may send this request; otherwise why not and for how long. */
  admitAddress(address: string, nowMs: number): Refusal | null {
    let state = this.addresses.get(address);
    if (state === undefined) {
      if (this.addresses.size >= this.limits.clientAddressesTrackedMax) this.evictAddresses(nowMs);
      state = { tokens: this.limits.rateLimitAddressBurst, refilledMs: nowMs, blockedUntilMs: 0, windowStartMs: nowMs, authFailures: 0, unknownPaths: 0 };
      this.addresses.set(address, state);
    }
    if (state.blockedUntilMs > nowMs) return { kind: "blocked", retryAfterMs: state.blockedUntilMs - nowMs };
    const waitMs = take(state, nowMs, this.addressPerMs, this.limits.rateLimitAddressBurst);
    if (waitMs === 0) return null;
    this.events.record({ type: "rate_limited", clientAddress: address, keyId: null, detail: { reason: "address" } });
    return { kind: "rate_limited", retryAfterMs: waitMs };
  }

  /** Null when the key may send this request; otherwise how long to wait. */
  admitKey(keyId: string, address: string, nowMs: number): Refusal | null {
    let bucket = this.keys.get(keyId);
    if (bucket === undefined) {
      // Keys are few (they are rows in the database); the bound only guards against a bug.
      if (this.keys.size >= this.limits.clientAddressesTrackedMax) this.keys.clear();
      bucket = { tokens: this.limits.rateLimitKeyBurst, refilledMs: nowMs };
      this.keys.set(keyId, bucket);
    }
    const waitMs = take(bucket, nowMs, this.keyPerMs, this.limits.rateLimitKeyBurst);
    if (waitMs === 0) return null;
    this.events.record({ type: "rate_limited", clientAddress: address, keyId, detail: { reason: "key" } });
    return { kind: "rate_limited", retryAfterMs: waitMs };
  }

  /** A 401 was sent to this address. */
  authFailed(address: string, nowMs: number): void {
    const state = this.windowOf(address, nowMs);
    if (state && ++state.authFailures >= this.limits.blockAuthFailuresMax) this.block(address, state, nowMs, "auth_failures", state.authFailures, null);
  }

  /** A 404 on an unmatched route was sent to this address. */
  unknownPath(address: string, url: string, nowMs: number): void {
    const state = this.windowOf(address, nowMs);
    if (state && ++state.unknownPaths >= this.limits.blockUnknownPathsMax) this.block(address, state, nowMs, "unknown_paths", state.unknownPaths, url);
  }

  isBlocked(address: string, nowMs: number): boolean {
    return (this.addresses.get(address)?.blockedUntilMs ?? 0) > nowMs;
  }

  private windowOf(address: string, nowMs: number): AddressState | undefined {
    const state = this.addresses.get(address);
    if (state === undefined || state.blockedUntilMs > nowMs) return undefined;
    if (nowMs - state.windowStartMs >= this.limits.blockWindowMs) {
      state.windowStartMs = nowMs;
      state.authFailures = 0;
      state.unknownPaths = 0;
    }
    return state;
  }

  private block(address: string, state: AddressState, nowMs: number, reason: string, count: number, url: string | null): void {
    state.blockedUntilMs = nowMs + this.limits.blockDurationMs;
    state.authFailures = 0;
    state.unknownPaths = 0;
    this.events.record({
      type: "client_blocked",
      clientAddress: address,
      keyId: null,
      detail: { reason, count, window_ms: this.limits.blockWindowMs, blocked_ms: this.limits.blockDurationMs, ...(url ? { last_path: recordablePath(url) } : {}) },
    });
  }

  /**
   * Makes room for a new address: first drops addresses with nothing to remember (not blocked,
   * no failures in the window, bucket full again); if that is not enough, the oldest tenth that
   * is not blocked.
   */
  private evictAddresses(nowMs: number): void {
    const burst = this.limits.rateLimitAddressBurst;
    for (const [address, s] of this.addresses) {
      const idle = s.blockedUntilMs <= nowMs && s.authFailures === 0 && s.unknownPaths === 0;
      if (idle && s.tokens + (nowMs - s.refilledMs) * this.addressPerMs >= burst) this.addresses.delete(address);
    }
    if (this.addresses.size < this.limits.clientAddressesTrackedMax) return;
    let toDrop = Math.max(1, Math.floor(this.addresses.size / 10));
    for (const [address, s] of this.addresses) {
      if (toDrop === 0) break;
      if (s.blockedUntilMs > nowMs) continue;
      this.addresses.delete(address);
      toDrop--;
    }
  }
}
