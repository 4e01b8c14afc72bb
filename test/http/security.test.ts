// API security as an attacker and an operator meet it (docs/security.md): keys that expired or
// were revoked, scopes, merchant isolation, signed requests (replay, tampering, stale clocks),
// rate limits, blocking of brute-force and scanning clients with security events, security
// headers, and hostile input (oversized, malformed, deeply nested, prototype keys, header
// injection, very long URLs). Every refusal is checked for the one error shape.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { ManualClock } from "../../src/kernel/clock.ts";
import { signRequest } from "../../src/http/request-signing.ts";
import { DIALECTS } from "../support/databases.ts";
import { ADMIN_KEY, startTestApp, type TestApp, type TestResponse } from "../support/app.ts";
import { account } from "../support/payments.ts";

const STACK_TRACE = /\n\s+at \S|\bat \S+ \(.*:\d+:\d+\)|node_modules|\/src\/[\w/.-]+\.ts/;

function expectError(res: TestResponse, status: number, code: string, param?: string): void {
  assert.equal(res.status, status, res.text.slice(0, 300));
  assert.deepEqual(Object.keys(res.body), ["error"], res.text.slice(0, 300));
  assert.equal(res.body.error.code, code, res.text.slice(0, 300));
  assert.equal(res.body.error.request_id, res.headers["x-request-id"]);
  if (param !== undefined) assert.equal(res.body.error.param, param, res.text.slice(0, 300));
  assert.doesNotMatch(res.text, STACK_TRACE);
}

function retryAfter(res: TestResponse): number {
  const value = Number(res.headers["retry-after"]);
  assert.ok(Number.isInteger(value) && value >= 1, `Retry-After is whole seconds, got ${res.headers["retry-after"]}`);
  return value;
}

async function events(app: TestApp, query = ""): Promise<Array<Record<string, any>>> {
  const res = await app.request("GET", `/v1/admin/security-events${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body.data;
}

/** Headers of a signed request. */
function signed(secret: string, method: string, url: string, body: string, nowMs: number, nonce = randomBytes(12).toString("base64url")): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { "tally-timestamp": timestamp, "tally-nonce": nonce, "tally-signature": signRequest(secret, timestamp, nonce, method, url, body) };
}

// ---------------------------------------------------------------------------------------------

describe("keys: expiry, revocation, scopes, isolation (sqlite)", () => {
  let app: TestApp;
  const clock = new ManualClock();
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", clock, label: "sec-keys" });
    await account(app, "wallet:a");
  });
  after(async () => app.close());

  test("an expired key is 401 and its use is a key_expired event", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read"], expiresInDays: 1 });
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key })).status, 200);
    clock.advanceMs(86_400_000 + 1);
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key, remoteAddress: "198.51.100.7" }), 401, "unauthenticated");
    const [event] = await events(app, "?type=key_expired");
    assert.deepEqual([event!.key_id, event!.client_address, event!.count], [key.id, "198.51.100.7", 1]);
  });

  test("a key revoked through this process is refused at once; its use is a key_revoked event", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read"] });
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key })).status, 200, "cached now");
    assert.equal(await app.tally.keys.revoke(key.id), true);
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key }), 401, "unauthenticated");
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key }), 401, "unauthenticated");
    const revoked = (await events(app, "?type=key_revoked")).filter((e) => e.key_id === key.id);
    assert.equal(revoked.length, 1, "two refusals in one flush make one aggregated event");
    assert.equal(revoked[0]!.count, 2);
  });

  test("a key revoked by another process (the CLI) is refused within the cache TTL (1 s)", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read"] });
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key })).status, 200);
    // What `tally keys revoke` does from its own process: a row update this process does not see.
    await app.tally.db.kysely.updateTable("api_keys").set({ revoked_at: clock.nowUs() }).where("id", "=", key.id).execute();
    clock.advanceMs(app.tally.config.limits.apiKeyCacheTtlMs);
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet:a", undefined, { key: key.key }), 401, "unauthenticated");
  });

  test("a key without the scope is 403; security events need security:read", async () => {
    const ledger = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write", "keys:write"] });
    expectError(await app.request("GET", "/v1/admin/security-events", undefined, { key: ledger.key }), 403, "forbidden");
    expectError(await app.request("POST", "/v1/payouts", {}, { key: ledger.key }), 403, "forbidden");
    const auditor = await app.tally.keys.create({ scopes: ["security:read"] });
    assert.equal((await app.request("GET", "/v1/admin/security-events", undefined, { key: auditor.key })).status, 200);
    expectError(await app.request("GET", "/v1/admin/security-events", undefined, { key: null }), 401, "unauthenticated");
  });

  test("another merchant's payout answers 404, as if it did not exist", async () => {
    const a = await app.tally.keys.create({ scopes: ["payments:read", "payments:write", "ledger:write", "ledger:read"], merchantId: "m-a" });
    const b = await app.tally.keys.create({ scopes: ["payments:read", "payments:write"], merchantId: "m-b" });
    assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: "wallet:m-a", currency: "CNY" }, { key: a.key })).status, 201);
    assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: "bank:m-a", currency: "CNY", normal_balance: "debit" }, { key: a.key })).status, 201);
    const fund = await app.request("POST", "/v1/ledger/transfers", { id: "fund-m-a", debit_account_id: "bank:m-a", credit_account_id: "wallet:m-a", amount: 10_000, currency: "CNY" }, { key: a.key });
    assert.equal(fund.status, 201, fund.text);
    const payout = await app.request(
      "POST",
      "/v1/payouts",
      { id: "po-iso", amount: 100, currency: "CNY", source_account_id: "wallet:m-a", destination: { bank_account_number: "6222021234567893445", account_name: "张三" } },
      { key: a.key },
    );
    assert.equal(payout.status, 201, payout.text);
    assert.equal((await app.request("GET", "/v1/payouts/po-iso", undefined, { key: a.key })).status, 200);
    expectError(await app.request("GET", "/v1/payouts/po-iso", undefined, { key: b.key }), 404, "not_found");
    const list = await app.request("GET", "/v1/payouts", undefined, { key: b.key });
    assert.deepEqual(list.body.data, []);
  });
});

// ---------------------------------------------------------------------------------------------

for (const dialect of DIALECTS) {
  describe(`signed requests on ${dialect}`, () => {
    let app: TestApp;
    const clock = new ManualClock(BigInt(Date.UTC(2026, 0, 5)) * 1000n);
    let required: Awaited<ReturnType<TestApp["tally"]["keys"]["create"]>>;
    let optional: typeof required;
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "sec-sign" });
      await account(app, "bank", { normal_balance: "debit" });
      await account(app, "wallet");
      required = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"], requireSignature: true });
      optional = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"] });
    });
    after(async () => app.close());

    const transferBody = (id: string) => JSON.stringify({ id, debit_account_id: "bank", credit_account_id: "wallet", amount: 5, currency: "CNY" });

    test("the signing secret is shown once and stored only encrypted", async () => {
      assert.match(required.signingSecret, /^tally_ss_[A-Za-z0-9_-]{43}$/);
      const row = await app.tally.db.read.selectFrom("api_keys").selectAll().where("id", "=", required.id).executeTakeFirstOrThrow();
      assert.ok(row.signing_secret && !row.signing_secret.includes(required.signingSecret.slice(9)), "not in clear");
      assert.equal(row.key_hash.includes(required.key), false);
      assert.equal(Number(row.require_signature), 1);
    });

    test("a key that requires signing refuses unsigned requests", async () => {
      const res = await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: required.key });
      expectError(res, 401, "unauthenticated", "Tally-Signature");
      assert.match(res.body.error.message, /requires signed requests/);
    });

    test("a correctly signed GET and POST pass; the signature covers method, path, query and body", async () => {
      const url = "/v1/ledger/accounts/wallet/transfers?limit=5";
      const get = await app.request("GET", url, undefined, { key: required.key, headers: signed(required.signingSecret, "GET", url, "", clock.nowMs()) });
      assert.equal(get.status, 200, get.text);
      const body = transferBody("signed-1");
      const post = await app.request("POST", "/v1/ledger/transfers", undefined, {
        key: required.key,
        rawBody: body,
        headers: signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, clock.nowMs()),
      });
      assert.equal(post.status, 201, post.text);
    });

    test("a replayed signed request is refused, even with its Idempotency-Key; a nonce_replayed event is recorded", async () => {
      const body = transferBody("signed-replay");
      const headers = { ...signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, clock.nowMs()), "idempotency-key": "sig-idem-1" };
      const first = await app.request("POST", "/v1/ledger/transfers", undefined, { key: required.key, rawBody: body, headers });
      assert.equal(first.status, 201, first.text);
      clock.advanceMs(30_000);
      const replay = await app.request("POST", "/v1/ledger/transfers", undefined, { key: required.key, rawBody: body, headers });
      expectError(replay, 401, "unauthenticated");
      assert.match(replay.body.error.message, /already used/);
      assert.equal(replay.headers["idempotent-replayed"], undefined);
      const [event] = await events(app, "?type=nonce_replayed");
      assert.equal(event!.key_id, required.id);
      // A retry signed afresh with the same Idempotency-Key gets the stored answer.
      const retry = await app.request("POST", "/v1/ledger/transfers", undefined, {
        key: required.key,
        rawBody: body,
        headers: { ...signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, clock.nowMs()), "idempotency-key": "sig-idem-1" },
      });
      assert.equal(retry.status, 201);
      assert.equal(retry.headers["idempotent-replayed"], "true");
    });

    test("bad signatures: tampered body, other path, other method, wrong secret, malformed headers", async () => {
      const body = transferBody("signed-tamper");
      const now = clock.nowMs();
      const cases: Array<[string, string, string, Record<string, string>, string | undefined]> = [
        ["tampered body", "POST", "/v1/ledger/transfers", signed(required.signingSecret, "POST", "/v1/ledger/transfers", body.replace('"amount":5', '"amount":6'), now), undefined],
        ["other path", "POST", "/v1/ledger/transfers", signed(required.signingSecret, "POST", "/v1/ledger/accounts", body, now), undefined],
        ["other method", "POST", "/v1/ledger/transfers", signed(required.signingSecret, "PUT", "/v1/ledger/transfers", body, now), undefined],
        ["wrong secret", "POST", "/v1/ledger/transfers", signed(optional.signingSecret, "POST", "/v1/ledger/transfers", body, now), undefined],
        ["short nonce", "POST", "/v1/ledger/transfers", signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, now, "abc"), "Tally-Signature"],
        ["no v1=", "POST", "/v1/ledger/transfers", { ...signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, now), "tally-signature": "deadbeef" }, "Tally-Signature"],
        ["text timestamp", "POST", "/v1/ledger/transfers", { ...signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, now), "tally-timestamp": "yesterday" }, "Tally-Signature"],
      ];
      for (const [what, method, url, headers, param] of cases) {
        const res = await app.request(method, url, undefined, { key: required.key, rawBody: body, headers });
        expectError(res, 401, "unauthenticated", param);
        assert.ok(res.body.error.message.length > 0, what);
      }
      assert.equal((await app.request("GET", "/v1/ledger/transfers/signed-tamper")).status, 404, "nothing was posted");
      const reasons = new Set((await events(app, "?type=signature_invalid")).map((e) => e.detail.reason));
      for (const reason of ["mismatch", "malformed", "missing"]) assert.ok(reasons.has(reason), `a signature_invalid event with reason ${reason}`);
    });

    test("a timestamp outside the 5-minute window is refused, before or after the server's clock", async () => {
      const body = transferBody("signed-stale");
      for (const offsetMs of [-301_000, 301_000]) {
        const res = await app.request("POST", "/v1/ledger/transfers", undefined, {
          key: required.key,
          rawBody: body,
          headers: signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, clock.nowMs() + offsetMs),
        });
        expectError(res, 401, "unauthenticated");
        assert.match(res.body.error.message, /window/);
      }
      const ok = await app.request("POST", "/v1/ledger/transfers", undefined, {
        key: required.key,
        rawBody: body,
        headers: signed(required.signingSecret, "POST", "/v1/ledger/transfers", body, clock.nowMs() - 290_000),
      });
      assert.equal(ok.status, 201, "within the window");
    });

    test("a key that does not require signing may opt in: a good signature passes, a bad one is refused", async () => {
      assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: optional.key })).status, 200, "unsigned is fine");
      const url = "/v1/ledger/accounts/wallet";
      assert.equal((await app.request("GET", url, undefined, { key: optional.key, headers: signed(optional.signingSecret, "GET", url, "", clock.nowMs()) })).status, 200);
      expectError(await app.request("GET", url, undefined, { key: optional.key, headers: signed(required.signingSecret, "GET", url, "", clock.nowMs()) }), 401, "unauthenticated");
      const adminSigned = await app.request("GET", url, undefined, { key: ADMIN_KEY, headers: signed("anything", "GET", url, "", clock.nowMs()) });
      expectError(adminSigned, 401, "unauthenticated");
      assert.match(adminSigned.body.error.message, /no signing secret/);
    });

    test("a nonce is per key: the same nonce under two keys is two requests", async () => {
      const url = "/v1/ledger/accounts/bank";
      const nonce = "shared-nonce-0123456789";
      assert.equal((await app.request("GET", url, undefined, { key: required.key, headers: signed(required.signingSecret, "GET", url, "", clock.nowMs(), nonce) })).status, 200);
      assert.equal((await app.request("GET", url, undefined, { key: optional.key, headers: signed(optional.signingSecret, "GET", url, "", clock.nowMs(), nonce) })).status, 200);
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe("rate limits (sqlite)", () => {
  let app: TestApp;
  const clock = new ManualClock(BigInt(Date.UTC(2026, 0, 5)) * 1000n);
  before(async () => {
    app = await startTestApp({
      dialect: "sqlite",
      clock,
      label: "sec-rates",
      limits: { rateLimitKeyPerSecond: 5, rateLimitKeyBurst: 5, rateLimitAddressPerSecond: 20, rateLimitAddressBurst: 20 },
    });
    await account(app, "wallet");
  });
  after(async () => app.close());

  test("a key over its rate gets 429 rate_limited with Retry-After; one aggregated event; it recovers", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read"] });
    for (let i = 0; i < 5; i++) assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: key.key, remoteAddress: `192.0.2.${i}` })).status, 200);
    for (let i = 0; i < 3; i++) {
      const res = await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: key.key, remoteAddress: "192.0.2.99" });
      expectError(res, 429, "rate_limited");
      assert.equal(retryAfter(res), 1);
    }
    clock.advanceMs(2_000); // the admin key that reads the events has a bucket of 5 too
    const trips = (await events(app, "?type=rate_limited")).filter((e) => e.key_id === key.id);
    assert.equal(trips.length, 1, "aggregated, not one row per refused request");
    assert.deepEqual([trips[0]!.count, trips[0]!.detail.reason], [3, "key"]);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: key.key, remoteAddress: "192.0.2.99" })).status, 200, "refilled");
  });

  test("an address over its rate gets 429 whatever key it uses; other addresses are unaffected", async () => {
    const address = "203.0.113.50";
    let refused: TestResponse | undefined;
    for (let i = 0; i < 25 && !refused; i++) {
      const res = await app.request("GET", "/no-such-route", undefined, { key: null, remoteAddress: address });
      if (res.status === 429) refused = res;
    }
    assert.ok(refused, "refused within 25 requests");
    expectError(refused!, 429, "rate_limited");
    retryAfter(refused!);
    assert.equal((await app.request("GET", "/no-such-route", undefined, { key: null, remoteAddress: "203.0.113.51" })).status, 404);
    assert.equal((await app.request("GET", "/healthz", undefined, { remoteAddress: address })).status, 200, "health checks are never refused");
    clock.advanceMs(2_000);
    const [trip] = (await events(app, "?type=rate_limited")).filter((e) => e.client_address === address);
    assert.equal(trip!.detail.reason, "address");
  });
});

describe("blocking and security events (sqlite)", () => {
  let app: TestApp;
  const clock = new ManualClock(BigInt(Date.UTC(2026, 0, 5)) * 1000n);
  before(async () => {
    app = await startTestApp({
      dialect: "sqlite",
      clock,
      label: "sec-block",
      limits: { blockAuthFailuresMax: 5, blockUnknownPathsMax: 8, blockWindowMs: 60_000, blockDurationMs: 600_000 },
    });
    await account(app, "wallet");
  });
  after(async () => app.close());

  test("brute-forcing keys gets the address blocked (429, Retry-After) and a client_blocked event", async () => {
    const address = "198.51.100.23";
    for (let i = 0; i < 5; i++) {
      expectError(await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: `tally_sk_guess${i}`, remoteAddress: address }), 401, "unauthenticated");
    }
    // Blocked now, even with the right key; another address is not.
    const blocked = await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address });
    expectError(blocked, 429, "rate_limited");
    assert.match(blocked.body.error.message, /blocked/);
    assert.equal(retryAfter(blocked), 600);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: "198.51.100.24" })).status, 200);
    const event = (await events(app, "?type=client_blocked")).find((e) => e.client_address === address);
    assert.ok(event, "a client_blocked event");
    assert.deepEqual([event.detail.reason, event.detail.count], ["auth_failures", 5]);
    // X-Forwarded-For is not trusted unless configured: it cannot unblock an address.
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address, headers: { "x-forwarded-for": "10.9.8.7" } }), 429, "rate_limited");
    clock.advanceMs(600_000);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address })).status, 200, "the block ends");
  });

  test("failures spread over more than the window do not block", async () => {
    const address = "198.51.100.77";
    for (let i = 0; i < 12; i++) {
      expectError(await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: "tally_sk_typo", remoteAddress: address }), 401, "unauthenticated");
      clock.advanceMs(15_000);
    }
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address })).status, 200);
  });

  test("scanning unknown paths gets the address blocked; 404s of real routes do not count", async () => {
    const address = "198.51.100.40";
    for (let i = 0; i < 20; i++) {
      expectError(await app.request("GET", `/v1/payouts/po-missing-${i}`, undefined, { remoteAddress: address }), 404, "not_found");
    }
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address })).status, 200, "not blocked by 404s of a real route");
    clock.advanceMs(1_000);
    const probes = ["/.env", "/wp-admin/", "/.git/config", "/admin", "/phpmyadmin/", "/v1/../../etc/passwd", "/server-status", "/v2/\r\nx"];
    for (const path of probes) {
      const res = await app.request("GET", encodeURI(path), undefined, { key: null, remoteAddress: address });
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
    }
    expectError(await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { remoteAddress: address }), 429, "rate_limited");
    const event = (await events(app, "?type=client_blocked")).find((e) => e.client_address === address);
    assert.ok(event);
    assert.equal(event.detail.reason, "unknown_paths");
    assert.equal(typeof event.detail.last_path, "string");
    assert.doesNotMatch(event.detail.last_path, /[\r\n]/);
    clock.advanceMs(600_000);
  });

  test("the events list is newest first and pages with limit and starting_after", async () => {
    for (let i = 0; i < 3; i++) {
      const key = await app.tally.keys.create({ scopes: ["ledger:read"] });
      await app.tally.keys.revoke(key.id);
      await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: key.key, remoteAddress: `192.0.2.${200 + i}` });
      await app.tally.security.events.flush();
    }
    const all = await events(app, "?limit=100");
    const ids = all.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort().reverse(), "newest first");
    for (const e of all) {
      assert.deepEqual(Object.keys(e).sort(), ["client_address", "count", "created_at", "detail", "id", "key_id", "type"]);
      assert.match(e.created_at, /Z$/);
    }
    const first = await app.request("GET", "/v1/admin/security-events?limit=2");
    assert.deepEqual([first.body.data.length, first.body.has_more], [2, true]);
    const second = await app.request("GET", `/v1/admin/security-events?limit=2&starting_after=${first.body.data[1].id}`);
    assert.deepEqual(second.body.data.map((e: any) => e.id), ids.slice(2, 4));
    expectError(await app.request("GET", "/v1/admin/security-events?limit=0"), 400, "validation_failed", "limit");
    expectError(await app.request("GET", "/v1/admin/security-events?type=nope"), 400, "validation_failed");
  });
});

describe("behind a trusted proxy (sqlite)", () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", label: "sec-proxy", config: { trustProxy: true, hstsMaxAgeSeconds: 31_536_000 }, limits: { blockAuthFailuresMax: 3 } });
  });
  after(async () => app.close());

  test("the client address comes from X-Forwarded-For, so one client's block does not block the proxy", async () => {
    for (let i = 0; i < 3; i++) {
      await app.request("GET", "/v1/ledger/accounts/x", undefined, { key: "tally_sk_bad", remoteAddress: "10.0.0.1", headers: { "x-forwarded-for": "203.0.113.9" } });
    }
    expectError(await app.request("GET", "/v1/ledger/accounts/x", undefined, { remoteAddress: "10.0.0.1", headers: { "x-forwarded-for": "203.0.113.9" } }), 429, "rate_limited");
    expectError(await app.request("GET", "/v1/ledger/accounts/x", undefined, { remoteAddress: "10.0.0.1", headers: { "x-forwarded-for": "203.0.113.10" } }), 404, "not_found");
  });

  test("Strict-Transport-Security is sent when configured", async () => {
    const res = await app.request("GET", "/healthz", undefined, { key: null });
    assert.equal(res.headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
  });
});

// ---------------------------------------------------------------------------------------------

describe("headers and hostile input (sqlite)", () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", label: "sec-input" });
    await account(app, "bank", { normal_balance: "debit" });
    await account(app, "wallet");
  });
  after(async () => app.close());

  const raw = (url: string, body: string, headers: Record<string, string> = {}) => app.request("POST", url, undefined, { rawBody: body, headers });

  test("API responses carry nosniff, no-store and DENY framing; no HSTS unless configured; the cashier keeps its own", async () => {
    for (const [method, url] of [["GET", "/v1/ledger/accounts/wallet"], ["GET", "/v1/ledger/accounts/none"], ["POST", "/v1/ledger/transfers"], ["GET", "/healthz"], ["GET", "/nope"]] as const) {
      const res = await app.request(method, url, method === "POST" ? {} : undefined);
      assert.equal(res.headers["x-content-type-options"], "nosniff", url);
      assert.equal(res.headers["cache-control"], "no-store", url);
      assert.equal(res.headers["x-frame-options"], "DENY", url);
      assert.equal(res.headers["strict-transport-security"], undefined, url);
    }
    const cashier = await app.request("GET", "/checkout/no-such-session", undefined, { key: null });
    assert.equal(cashier.status, 404);
    assert.match(String(cashier.headers["content-security-policy"]), /^default-src 'none'.*frame-ancestors 'none'/, "the cashier's headers are its own");
  });

  test("a body over 1 MiB is 413; malformed JSON is 400", async () => {
    expectError(await raw("/v1/ledger/accounts", `{"currency":"CNY","owner":"${"x".repeat(1024 * 1024)}"}`), 413, "payload_too_large");
    for (const body of ["{", '{"currency":"CNY",}', "{'currency':'CNY'}", '{"currency":"CNY"}garbage', "\u0000", "[1,2", '{"a":1e999999}']) {
      const res = await raw("/v1/ledger/accounts", body);
      expectError(res, 400, "validation_failed");
    }
  });

  test("deeply nested JSON is 400, never a crash", async () => {
    for (const body of ["[".repeat(200_000) + "]".repeat(200_000), '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000), '{"metadata":' + '{"__proto__":'.repeat(50_000) + "1" + "}".repeat(50_001)]) {
      const res = await raw("/v1/ledger/accounts", body);
      assert.equal(res.status, 400, res.text.slice(0, 200));
      assert.equal(res.body.error.code, "validation_failed");
    }
    assert.equal((await app.request("GET", "/healthz")).status, 200, "still serving");
  });

  test("__proto__ and constructor.prototype keys are refused naming the field; nothing is polluted", async () => {
    const transfer = (extra: string) => `{"id":"proto","debit_account_id":"bank","credit_account_id":"wallet","amount":1,"currency":"CNY"${extra}}`;
    expectError(await raw("/v1/ledger/transfers", transfer(',"__proto__":{"polluted":true}')), 400, "validation_failed", "__proto__");
    expectError(await raw("/v1/ledger/transfers", transfer(',"metadata":{"a":{"__proto__":{"polluted":true}}}')), 400, "validation_failed", "metadata");
    expectError(await raw("/v1/ledger/transfers", transfer(',"metadata":{"constructor":{"prototype":{"polluted":true}}}')), 400, "validation_failed", "metadata");
    expectError(await raw("/v1/ledger/accounts", '{"currency":"CNY","metadata":{"list":[{"__proto__":{"isAdmin":true}}]}}'), 400, "validation_failed", "metadata");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
    assert.equal((await app.request("GET", "/v1/ledger/transfers/proto")).status, 404, "nothing posted");
    // The words themselves are data where they are not keys that reach a prototype.
    const ok = await raw("/v1/ledger/accounts", '{"id":"proto-ok","currency":"CNY","owner":"__proto__","metadata":{"constructor":"Acme Builders","note":"constructor.prototype"}}');
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.body.metadata, { constructor: "Acme Builders", note: "constructor.prototype" });
  });

  test("header injection: CR/LF in paths and ids never reaches a response header; bad header values are refused", async () => {
    const res = await app.request("GET", "/v1/ledger/accounts/a%0d%0aSet-Cookie:%20owned=1");
    assert.equal(res.status, 404);
    assert.equal(res.headers["set-cookie"], undefined);
    for (const value of ["k\u0001ey", "k ey", "x".repeat(256)]) {
      expectError(await app.request("POST", "/v1/ledger/accounts", { currency: "CNY" }, { headers: { "idempotency-key": value } }), 400, "validation_failed", "Idempotency-Key");
    }
    const idem = await app.request("POST", "/v1/ledger/accounts", { id: "hdr-1", currency: "CNY" }, { headers: { "idempotency-key": "hdr%0d%0aX-Injected:%201" } });
    assert.equal(idem.status, 201);
    assert.equal(idem.headers["x-injected"], undefined);
    for (const header of ["Bearer a\tb", "Bearer  " + ADMIN_KEY, `Bearer ${ADMIN_KEY} extra`]) {
      expectError(await app.request("GET", "/v1/ledger/accounts/wallet", undefined, { key: null, headers: { authorization: header } }), 401, "unauthenticated");
    }
  });

  test("very long URLs and query strings are refused or not found, never a 5xx", async () => {
    const long = "a".repeat(100_000);
    for (const url of [`/v1/ledger/accounts/${long}`, `/v1/ledger/accounts/wallet/transfers?limit=${long}`, `/v1/ledger/accounts/wallet/transfers?${"x=1&".repeat(20_000)}`, `/${long}`]) {
      const res = await app.request("GET", url);
      assert.ok(res.status === 400 || res.status === 404 || res.status === 414, `${url.slice(0, 60)}: ${res.status}`);
      expectError(res, res.status, res.status === 404 ? "not_found" : res.status === 414 ? "uri_too_long" : "validation_failed");
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.ok(res.text.length < 2_000, "the error does not echo the whole URL");
    }
  });

  test("a bad percent-encoding is 400 in the error shape", async () => {
    expectError(await app.request("GET", "/v1/ledger/accounts/%zz"), 400, "validation_failed");
  });

  test("over real HTTP, oversized request heads are cut off by the server (431), not processed", async () => {
    await app.tally.listen();
    const port = (app.tally.server.server.address() as { port: number }).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, path: `/v1/ledger/accounts/wallet?q=${"x".repeat(64 * 1024)}`, headers: { authorization: `Bearer ${ADMIN_KEY}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 431);
  });
});
