// Routing: rules, weights (traffic shift), circuit breakers, failover only where no money can
// have moved, and a routing file that is re-read without a restart.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, type Channel, type PayRequest, type PayResult } from "../../src/channels/channel.ts";
import { CircuitBreaker } from "../../src/channels/circuit-breaker.ts";
import { Router, RoutingConfigError, parseRoutingConfig, type RouteContext } from "../../src/channels/routing.ts";
import { failure } from "../../src/channels/failures.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { account, createPayment } from "../support/payments.ts";

/** A channel whose next answers the test scripts; it counts its calls. */
class ScriptedChannel implements Channel {
  readonly methods = ["alipay", "wechat_pay", "card"] as const;
  readonly flows = new Set(["pay", "query"] as const);
  readonly calls: string[] = [];
  next: Array<"ok" | "unreachable" | "timeout" | "error" | "declined"> = [];
  constructor(readonly id: string) {}
  async pay(request: PayRequest): Promise<PayResult> {
    this.calls.push(request.attemptId);
    const step = this.next.shift() ?? "ok";
    if (step === "unreachable") throw new ChannelUnavailableError("connection refused");
    if (step === "timeout") throw new ChannelOutcomeUnknownError("no answer");
    if (step === "error") return { status: "failed", failure: failure("channel_error", "SYSTEM_ERROR") };
    if (step === "declined") return { status: "failed", failure: failure("insufficient_funds", "NOTENOUGH") };
    return { status: "succeeded", channelRef: `${this.id}-${request.attemptId}` };
  }
  async query(): Promise<PayResult> {
    return { status: "succeeded" };
  }
}

const ctx = (over: Partial<RouteContext> = {}): RouteContext => ({ flow: "pay_in", method: "alipay", currency: "CNY", amount: 1000n, merchantId: null, ...over });

describe("routing rules and weights", () => {
  const a = new ScriptedChannel("alipay_a");
  const b = new ScriptedChannel("alipay_b");
  const channels = new Map<string, Channel>([[a.id, a], [b.id, b]]);

  test("the first matching rule picks the channels; amount ranges, currencies and merchants narrow it", () => {
    const config = parseRoutingConfig(
      JSON.stringify({
        rules: [
          { methods: ["alipay"], merchants: ["m-vip"], channels: [{ channel: "alipay_b", weight: 1 }] },
          { methods: ["alipay"], amount_min: 1000000, channels: [{ channel: "alipay_b" }] },
          { methods: ["alipay"], currency: "CNY", channels: [{ channel: "alipay_a", weight: 1 }, { channel: "alipay_b", weight: 0 }] },
        ],
      }),
    );
    const router = new Router(channels, { config, random: () => 0.5 });
    assert.deepEqual(router.candidates(ctx({ merchantId: "m-vip" })), ["alipay_b"]);
    assert.deepEqual(router.candidates(ctx({ amount: 1000000n })), ["alipay_b"]);
    assert.deepEqual(router.candidates(ctx()), ["alipay_a", "alipay_b"], "weight 0 is a failover candidate only");
    assert.deepEqual(router.candidates(ctx({ currency: "USD" })), ["alipay_a", "alipay_b"], "no rule matches: any channel that serves the method");
    assert.deepEqual(router.candidates(ctx({ method: "unionpay" })), [], "nothing serves unionpay");
  });

  test("weights shift traffic in proportion (90/10)", () => {
    const config = parseRoutingConfig(JSON.stringify({ rules: [{ methods: ["alipay"], channels: [{ channel: "alipay_a", weight: 90 }, { channel: "alipay_b", weight: 10 }] }] }));
    let i = 0;
    const router = new Router(channels, { config, random: () => (i++ % 100) / 100 });
    const firsts = Array.from({ length: 1000 }, () => router.candidates(ctx())[0]);
    assert.equal(firsts.filter((c) => c === "alipay_a").length, 900);
    assert.equal(firsts.filter((c) => c === "alipay_b").length, 100);
  });

  test("a broken routing file is refused with a reason", () => {
    for (const [text, pattern] of [
      ["{", /not JSON/],
      ['{"rules": {}}', /rules must be an array/],
      ['{"rules": [{"channels": []}]}', /at least one channel/],
      ['{"rules": [{"channels": [{"channel": "x", "weight": -1}]}]}', /weight/],
      ['{"rules": [{"amount_min": 1.5, "channels": [{"channel": "x"}]}]}', /amount_min/],
      ['{"rules": [], "breaker": {"open_ms": 0}}', /open_ms/],
    ] as const) {
      assert.throws(() => parseRoutingConfig(text), (e: Error) => e instanceof RoutingConfigError && pattern.test(e.message), text);
    }
  });

  test("the routing file is re-read when it changes; a broken edit keeps the rules in force", () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-routing-"));
    const file = join(dir, "routing.json");
    writeFileSync(file, JSON.stringify({ rules: [{ methods: ["alipay"], channels: [{ channel: "alipay_a" }] }] }));
    const clock = new ManualClock();
    const router = new Router(channels, { file, nowMs: () => clock.nowMs() });
    assert.deepEqual(router.candidates(ctx()), ["alipay_a"]);
    writeFileSync(file, JSON.stringify({ rules: [{ methods: ["alipay"], channels: [{ channel: "alipay_b" }] }] }));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    clock.advanceMs(1500);
    assert.deepEqual(router.candidates(ctx()), ["alipay_b"], "shifted without a restart");
    writeFileSync(file, "{ not json");
    utimesSync(file, new Date(), new Date(Date.now() + 10000));
    clock.advanceMs(1500);
    assert.deepEqual(router.candidates(ctx()), ["alipay_b"]);
    writeFileSync(file, JSON.stringify({ rules: [{ methods: ["alipay"], channels: [{ channel: "no_such_channel" }] }] }));
    utimesSync(file, new Date(), new Date(Date.now() + 15000));
    clock.advanceMs(1500);
    assert.deepEqual(router.candidates(ctx()), ["alipay_b"], "a rule naming an unknown channel is refused");
  });
});

describe("circuit breaker", () => {
  test("opens after consecutive system failures, half-opens for one probe, closes on success", () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failuresToOpen: 3, openMs: 1000 }, () => clock.nowMs());
    breaker.recordSystemFailure();
    breaker.recordSystemFailure();
    assert.equal(breaker.state, "closed");
    breaker.recordUserFailure();
    breaker.recordSystemFailure();
    breaker.recordSystemFailure();
    assert.equal(breaker.state, "closed", "a user-caused failure resets the count");
    breaker.recordSystemFailure();
    assert.equal(breaker.state, "open");
    assert.equal(breaker.available(), false);
    clock.advanceMs(1000);
    assert.equal(breaker.state, "half_open");
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), false, "one probe at a time");
    breaker.recordSystemFailure();
    assert.equal(breaker.state, "open", "a failed probe reopens");
    clock.advanceMs(1000);
    assert.equal(breaker.tryAcquire(), true);
    breaker.recordSuccess();
    assert.equal(breaker.state, "closed");
  });
});

describe("failover through the payments API", () => {
  const a = new ScriptedChannel("alipay_a");
  const b = new ScriptedChannel("alipay_b");
  let app: TestApp;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-routing-"));
    const file = join(dir, "routing.json");
    writeFileSync(file, JSON.stringify({ rules: [{ methods: ["alipay"], channels: [{ channel: "alipay_a", weight: 1 }, { channel: "alipay_b", weight: 0 }] }], breaker: { failures_to_open: 2, open_ms: 60000 } }));
    app = await startTestApp({ label: "failover", config: { routingFile: file }, options: { channels: [a, b] } });
    await account(app, "wallet:store:17");
  });
  after(async () => app.close());

  test("an unreachable channel fails over to the next; the attempt records where it went", async () => {
    a.next = ["unreachable"];
    const p = await createPayment(app, { methods: ["alipay"] });
    const res = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
    assert.equal(res.body.status, "succeeded", res.text);
    assert.equal(res.body.channel, "alipay_b");
    assert.equal(a.calls.length, 1);
    assert.equal(b.calls.length, 1);
  });

  test("a timeout never fails over: the attempt is unknown and no second channel is asked", async () => {
    a.next = ["timeout"];
    const before = b.calls.length;
    const p = await createPayment(app, { methods: ["alipay"] });
    const res = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
    assert.equal(res.body.status, "unknown");
    assert.equal(res.body.channel, "alipay_a");
    assert.equal(b.calls.length, before);
  });

  test("a channel error is a failure, not a failover; enough of them open the circuit and traffic moves", async () => {
    app.tally.router.breaker("alipay_a").recordSuccess();
    a.next = ["error", "error"];
    const before = b.calls.length;
    for (let i = 0; i < 2; i++) {
      const p = await createPayment(app, { methods: ["alipay"] });
      const res = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
      assert.equal(res.body.status, "failed");
      assert.equal(res.body.channel, "alipay_a");
      assert.equal(res.body.failure.code, "channel_error");
    }
    assert.equal(b.calls.length, before, "no failover after a channel error");
    assert.equal(app.tally.router.breaker("alipay_a").state, "open");
    const q = await createPayment(app, { methods: ["alipay"] });
    const next = await app.request("POST", `/v1/payments/${q.id}/attempts`, { method: "alipay" });
    assert.equal(next.body.channel, "alipay_b", "the open circuit is skipped");
  });

  test("every channel down → 503 no_available_channel, safe to retry", async () => {
    for (let i = 0; i < 2; i++) app.tally.router.breaker("alipay_b").recordSystemFailure();
    const p = await createPayment(app, { methods: ["alipay"] });
    const res = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, "no_available_channel");
    assert.ok(res.headers["retry-after"]);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "requires_payment_method", "nothing was attempted");
  });
});
