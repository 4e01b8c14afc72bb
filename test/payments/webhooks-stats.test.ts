// Webhooks out of the outbox (signed, retried with backoff, recorded, replayable, never slowing
// payments) and success rates from recorded attempts, through the HTTP API.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ManualClock } from "../../src/kernel/clock.ts";
import { verifySignature } from "../../src/webhooks/signing.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { account, attempt, createPayment } from "../support/payments.ts";

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A merchant's webhook receiver whose answer the test sets. */
class Receiver {
  readonly received: Received[] = [];
  status = 200;
  delayMs = 0;
  private server: Server | null = null;
  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        setTimeout(() => res.writeHead(this.status).end("ok"), this.delayMs);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }
  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
  ofType(type: string) {
    return this.received.map((r) => ({ ...r, json: JSON.parse(r.body) })).filter((r) => r.json.type === type);
  }
}

async function pump(app: TestApp) {
  await app.tally.runWebhookJobs();
  await app.tally.webhooks.idle();
}

describe("webhooks", () => {
  const clock = new ManualClock(BigInt(Date.now()) * 1000n);
  const receiver = new Receiver();
  const other = new Receiver();
  let app: TestApp;
  let secret = "";
  let url = "";

  before(async () => {
    url = await receiver.start();
    const otherUrl = await other.start();
    app = await startTestApp({ clock, label: "webhooks", limits: { webhookTimeoutMs: 300, webhookRetryBaseMs: 1000, webhookAttemptsMax: 3 } });
    await account(app, "wallet:store:17");
    const created = await app.request("POST", "/v1/webhook-endpoints", { url, events: ["payment.succeeded", "payment.failed", "refund.succeeded"] });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.secret, /^whsec_/);
    secret = created.body.secret;
    const listed = await app.request("GET", "/v1/webhook-endpoints");
    assert.equal(listed.body.data[0].secret, undefined, "the secret is shown once");
    // Another merchant's endpoint must never see this merchant's events.
    const { key } = await app.tally.keys.create({ merchantId: "m-other", scopes: ["webhooks:write", "payments:read"] });
    const mine = await app.request("POST", "/v1/webhook-endpoints", { url: otherUrl, events: ["*"] }, { key });
    assert.equal(mine.status, 201);
  });
  after(async () => {
    await app.close();
    await receiver.close();
    await other.close();
  });

  test("a state change is delivered once, signed, to the endpoints that subscribe to it", async () => {
    const p = await createPayment(app);
    await attempt(app, p.id, { outcome: "succeeded" });
    await pump(app);
    const got = receiver.ofType("payment.succeeded");
    assert.equal(got.length, 1);
    const [hook] = got;
    assert.equal(hook!.json.data.object.id, p.id);
    assert.equal(hook!.json.data.object.status, "succeeded");
    assert.equal(hook!.json.data.object.amount, 250000);
    assert.match(hook!.json.id, /^evt_/);
    const signature = String(hook!.headers["tally-signature"]);
    assert.ok(verifySignature(secret, signature, hook!.body, Math.floor(clock.nowMs() / 1000)), "the signature verifies over the raw body");
    assert.ok(!verifySignature(secret, signature, hook!.body.replace("250000", "250001"), Math.floor(clock.nowMs() / 1000)), "a changed body does not verify");
    assert.ok(!verifySignature("whsec_wrong", signature, hook!.body, Math.floor(clock.nowMs() / 1000)));
    assert.equal(other.received.length, 0, "another merchant's endpoint gets nothing");
    await pump(app);
    assert.equal(receiver.ofType("payment.succeeded").length, 1, "fanned out once");
    const deliveries = await app.request("GET", `/v1/events/${hook!.json.id}/deliveries`);
    assert.equal(deliveries.body.data.length, 1);
    assert.equal(deliveries.body.data[0].status, "delivered");
    assert.equal(deliveries.body.data[0].response_status, 200);
    const event = await app.request("GET", `/v1/events/${hook!.json.id}`);
    assert.equal(event.body.type, "payment.succeeded");
    const { key } = await app.tally.keys.create({ merchantId: "m-other", scopes: ["payments:read"] });
    assert.equal((await app.request("GET", `/v1/events/${hook!.json.id}`, undefined, { key })).status, 404);
  });

  test("a failing endpoint is retried with backoff, every attempt recorded, up to the limit", async () => {
    receiver.status = 500;
    const p = await createPayment(app);
    await attempt(app, p.id, { outcome: "declined" });
    await pump(app);
    const first = receiver.ofType("payment.failed").filter((h) => h.json.data.object.id === p.id);
    assert.equal(first.length, 1);
    const eventId = first[0]!.json.id;
    await pump(app);
    assert.equal(receiver.ofType("payment.failed").filter((h) => h.json.id === eventId).length, 1, "not retried before its time");
    clock.advanceMs(1000);
    await pump(app);
    clock.advanceMs(2000);
    await pump(app);
    clock.advanceMs(60_000);
    await pump(app);
    const all = receiver.ofType("payment.failed").filter((h) => h.json.id === eventId);
    assert.equal(all.length, 3, "three attempts, then given up");
    const deliveries = (await app.request("GET", `/v1/events/${eventId}/deliveries`)).body.data;
    assert.deepEqual(deliveries.map((d: { attempt: number; status: string }) => [d.attempt, d.status]), [[1, "failed"], [2, "failed"], [3, "failed"]]);
    assert.equal(deliveries[0].response_status, 500);

    receiver.status = 200;
    const again = await app.request("POST", `/v1/events/${eventId}/redeliver`, {});
    assert.equal(again.status, 202);
    assert.equal(again.body.deliveries_queued, 1);
    await pump(app);
    const last = receiver.ofType("payment.failed").filter((h) => h.json.id === eventId).at(-1)!;
    assert.ok(verifySignature(secret, String(last.headers["tally-signature"]), last.body, Math.floor(clock.nowMs() / 1000)), "a redelivery is signed afresh");
    const after = (await app.request("GET", `/v1/events/${eventId}/deliveries`)).body.data;
    assert.equal(after.at(-1).status, "delivered");
  });

  test("a slow endpoint does not slow payments; it times out and is retried", async () => {
    receiver.delayMs = 2000;
    const p = await createPayment(app);
    await attempt(app, p.id, { outcome: "succeeded" });
    await app.tally.runWebhookJobs(); // starts the slow delivery, does not wait for it
    const started = Date.now();
    const q = await createPayment(app);
    const paid = await attempt(app, q.id, { outcome: "succeeded" });
    assert.equal(paid.body.status, "succeeded");
    assert.ok(Date.now() - started < 1000, "payments went on while the webhook was in flight");
    await app.tally.webhooks.idle();
    receiver.delayMs = 0;
    const hooks = receiver.ofType("payment.succeeded").filter((h) => h.json.data.object.id === p.id);
    const deliveries = (await app.request("GET", `/v1/events/${hooks[0]!.json.id}/deliveries`)).body.data;
    assert.equal(deliveries[0].status, "failed");
    assert.match(deliveries[0].error, /no answer within 300 ms/);
    assert.equal(deliveries[1].status, "pending");
  });

  test("creating an endpoint validates its url and events", async () => {
    for (const body of [
      { url: "ftp://x.example/hook", events: ["payment.succeeded"] },
      { url, events: [] },
      { url, events: ["payment.exploded"] },
      { url, events: ["payment.succeeded"], extra: true },
    ]) {
      const res = await app.request("POST", "/v1/webhook-endpoints", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, "validation_failed");
    }
  });
});

describe("success rates", () => {
  const clock = new ManualClock(BigInt(Date.UTC(2026, 10, 25, 12)) * 1000n);
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ clock, label: "rates" });
    await account(app, "wallet:store:17");
    for (const outcome of ["succeeded", "succeeded", "succeeded", "declined", "channel_error"]) {
      const p = await createPayment(app);
      await attempt(app, p.id, { outcome });
    }
    const pending = await createPayment(app);
    await attempt(app, pending.id, { outcome: "pending" });
    const destination = { bank_account_number: "6222021234567893445", account_name: "张三" };
    for (const outcome of ["paid", "failed"]) {
      await app.request("POST", "/v1/payouts", { amount: 100, currency: "CNY", source_account_id: "wallet:store:17", destination, simulator: { outcome } });
    }
  });
  after(async () => app.close());

  test("by channel: settled attempts only, user-caused failures out of the denominator", async () => {
    const res = await app.request("GET", "/v1/stats/success-rates");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.pay_in, [{ key: "simulator", attempts: 5, succeeded: 3, user_caused_failures: 1, system_failures: 1, effective_success_rate: 0.75 }]);
    assert.deepEqual(res.body.payout, [{ key: "simulator", attempts: 2, succeeded: 1, user_caused_failures: 1, system_failures: 0, effective_success_rate: 1 }]);
  });

  test("by method and by day, within [from, to)", async () => {
    const byMethod = await app.request("GET", "/v1/stats/success-rates?group_by=method");
    assert.equal(byMethod.body.pay_in[0].key, "simulator");
    assert.equal(byMethod.body.payout[0].key, "bank_transfer");
    const byDay = await app.request("GET", "/v1/stats/success-rates?group_by=day&from=2026-11-25T00:00:00%2B08:00&to=2026-11-26T00:00:00Z");
    assert.deepEqual(byDay.body.pay_in.map((r: { key: string; attempts: number }) => [r.key, r.attempts]), [["2026-11-25", 5]]);
    const before = await app.request("GET", "/v1/stats/success-rates?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z");
    assert.deepEqual(before.body, { pay_in: [], payout: [] });
  });

  test("only user-caused failures: the rate is null, not a division by zero", async () => {
    const { effectiveRate } = await import("../../src/ops/success-rates.ts");
    assert.equal(effectiveRate(0, 2, 2), null);
    assert.equal(effectiveRate(999, 1000, 0), 0.999);
  });

  test("bad windows are refused", async () => {
    for (const q of ["from=yesterday", "to=2026-13-01T00:00:00Z", "from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z", "group_by=hour", "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"]) {
      const res = await app.request("GET", `/v1/stats/success-rates?${q}`);
      assert.equal(res.status, 400, q);
    }
  });

  test("the same figures are exported at /metrics", async () => {
    await app.tally.runPaymentJobs();
    const text = (await app.request("GET", "/metrics")).text;
    assert.match(text, /tally_effective_success_rate_24h\{channel="simulator",flow="pay_in"\} 0\.75/);
    assert.match(text, /tally_channel_attempts_24h\{channel="simulator",flow="pay_in",outcome="system_failure"\} 1/);
  });
});
