// The HTTP API as a client meets it (CONVENTIONS.md): authentication and scopes, merchant
// isolation, discovery, Idempotency-Key, hostile and malformed input, pagination, amounts and
// timestamps. Every response is checked against the conventions that hold everywhere: an
// X-Request-Id header, no 5xx, no stack trace, and the one error shape.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import type { PostingEngine } from "../../src/ledger/engine.ts";
import { DIALECTS } from "../support/databases.ts";
import { ADMIN_KEY, startTestApp, type TestApp, type TestResponse } from "../support/app.ts";

type RequestOptions = { key?: string | null; headers?: Record<string, string>; rawBody?: string };

const STACK_TRACE = /\n\s+at \S|\bat \S+ \(.*:\d+:\d+\)|node_modules|\/src\/[\w/.-]+\.ts/;

/** Checks what every response must satisfy, whatever the endpoint and input. */
function checkConventions(res: TestResponse, what: string): void {
  assert.ok(res.status < 500, `${what}: no 5xx, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.doesNotMatch(res.text, STACK_TRACE, `${what}: no stack trace in the body`);
  assert.equal(typeof res.headers["x-request-id"], "string", `${what}: X-Request-Id header`);
  if (res.status >= 400) assertErrorShape(res, what);
}

function assertErrorShape(res: TestResponse, what: string): void {
  assert.ok(res.body && typeof res.body === "object", `${what}: an error body is JSON, got ${res.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(res.body), ["error"], `${what}: the body is {"error": {...}}`);
  const error = res.body.error;
  for (const key of Object.keys(error)) {
    assert.ok(["code", "message", "request_id", "param"].includes(key), `${what}: unexpected error field ${key}`);
  }
  assert.equal(typeof error.code, "string");
  assert.ok(error.message.length > 0, `${what}: a message`);
  assert.equal(typeof error.request_id, "string");
  if ("param" in error) assert.equal(typeof error.param, "string");
}

/** A request through the app, checked against the conventions. */
function client(app: () => TestApp) {
  return async (method: string, url: string, body?: unknown, options?: RequestOptions): Promise<TestResponse> => {
    const res = await app().request(method, url, body, options);
    checkConventions(res, `${method} ${url.slice(0, 80)}`);
    return res;
  };
}

function expectError(res: TestResponse, status: number, code: string, param?: string): void {
  assert.equal(res.status, status, res.text.slice(0, 300));
  assert.equal(res.body.error.code, code, res.text.slice(0, 300));
  if (param !== undefined) assert.equal(res.body.error.param, param, res.text.slice(0, 300));
  // A fresh (not replayed) error names the request it answers.
  if (res.headers["idempotent-replayed"] === undefined) assert.equal(res.body.error.request_id, res.headers["x-request-id"]);
}

function idem(key: string, extra: RequestOptions = {}): RequestOptions {
  return { ...extra, headers: { ...extra.headers, "idempotency-key": key } };
}

function transfer(id: string, from: string, to: string, amount: number | string, extra: Record<string, unknown> = {}) {
  return { id, debit_account_id: from, credit_account_id: to, amount, currency: "CNY", ...extra };
}

/**
 * Holds every transfer request at the engine's door until released. The route has already begun
 * its idempotency record (preHandler) when it calls `engine.submitTransfers`, so while the gate
 * is shut the request is provably in flight: no timing luck is involved.
 */
function holdEngine(engine: PostingEngine): { reached: Promise<void>; release(): void } {
  const original = engine.submitTransfers;
  let open!: () => void;
  let arrived!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  engine.submitTransfers = async (...args: Parameters<PostingEngine["submitTransfers"]>) => {
    arrived();
    await gate;
    return original.apply(engine, args);
  };
  return {
    reached,
    release() {
      Reflect.deleteProperty(engine, "submitTransfers");
      open();
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe("auth, scopes, discovery and merchant isolation (sqlite)", () => {
  let app: TestApp;
  const clock = new ManualClock();
  const req = client(() => app);
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", clock, label: "auth" });
    for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
      assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
    }
  });
  after(async () => app.close());

  test("no Authorization header is 401 unauthenticated, on reads and writes", async () => {
    expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: null }), 401, "unauthenticated");
    expectError(await req("POST", "/v1/ledger/transfers", transfer("noauth", "bank", "wallet", 1), { key: null }), 401, "unauthenticated");
    assert.equal((await req("GET", "/v1/ledger/transfers/noauth")).status, 404, "nothing was posted");
  });

  test("a malformed Authorization header is 401", async () => {
    for (const header of ["Basic x", "Bearer", "Bearer ", "Token " + ADMIN_KEY, ADMIN_KEY]) {
      const res = await req("GET", "/v1/ledger/accounts/bank", undefined, { key: null, headers: { authorization: header } });
      expectError(res, 401, "unauthenticated");
    }
  });

  test("an unknown key is 401", async () => {
    expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: "tally_sk_not-a-real-key" }), 401, "unauthenticated");
    expectError(await req("POST", "/v1/ledger/transfers", transfer("unknown-key", "bank", "wallet", 1), { key: "x".repeat(300) }), 401, "unauthenticated");
  });

  test("a key without the scope is 403 forbidden; with the scope it works", async () => {
    const reader = await app.tally.keys.create({ scopes: ["ledger:read"] });
    expectError(await req("POST", "/v1/ledger/transfers", transfer("by-reader", "bank", "wallet", 5), { key: reader.key }), 403, "forbidden");
    assert.equal((await req("GET", "/v1/ledger/transfers/by-reader")).status, 404, "the forbidden write had no effect");
    const read = await req("GET", "/v1/ledger/accounts/wallet", undefined, { key: reader.key });
    assert.equal(read.status, 200);
    assert.equal(read.body.id, "wallet");

    const writer = await app.tally.keys.create({ scopes: ["ledger:write"] });
    const posted = await req("POST", "/v1/ledger/transfers", transfer("by-writer", "bank", "wallet", 5), { key: writer.key });
    assert.equal(posted.status, 201, posted.text);
    expectError(await req("GET", "/v1/ledger/accounts/wallet", undefined, { key: writer.key }), 403, "forbidden");
  });

  test("an expired key is 401 once its expiry passes (even if it was cached)", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read"], expiresInDays: 1 });
    assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: key.key })).status, 200);
    clock.advanceMs(23 * 3_600_000);
    assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: key.key })).status, 200, "still valid after 23 h");
    // Past the expiry and far past the 5 s verification cache.
    clock.advanceMs(2 * 3_600_000 + 60_000);
    expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: key.key }), 401, "unauthenticated");
  });

  test("keys that alternate, and a key one character off the key in use, are each told apart", async () => {
    const reader = await app.tally.keys.create({ scopes: ["ledger:read"] });
    const writer = await app.tally.keys.create({ scopes: ["ledger:write"] });
    // The last key's digest is remembered: each switch must be noticed, whichever key came before.
    for (let round = 0; round < 3; round++) {
      assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: reader.key })).status, 200);
      expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: writer.key }), 403, "forbidden");
      expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: null }), 401, "unauthenticated");
      assert.equal((await req("GET", "/v1/ledger/accounts/bank")).status, 200, "the admin key");
    }
    assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: reader.key })).status, 200);
    const last = reader.key.at(-1) === "A" ? "B" : "A";
    for (const near of [reader.key.slice(0, -1) + last, last + reader.key.slice(1), reader.key + "A", reader.key.slice(0, -1)]) {
      expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: near }), 401, "unauthenticated");
      assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: reader.key })).status, 200);
    }
  });

  test("a revoked key is 401 at once", async () => {
    const key = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"] });
    assert.equal((await req("GET", "/v1/ledger/accounts/bank", undefined, { key: key.key })).status, 200, "used, so cached");
    assert.equal(await app.tally.keys.revoke(key.id), true);
    expectError(await req("GET", "/v1/ledger/accounts/bank", undefined, { key: key.key }), 401, "unauthenticated");
    expectError(await req("POST", "/v1/ledger/transfers", transfer("by-revoked", "bank", "wallet", 1), { key: key.key }), 401, "unauthenticated");
    assert.equal((await req("GET", "/v1/ledger/transfers/by-revoked")).status, 404);
  });

  test("the admin key has every scope", async () => {
    assert.equal((await req("POST", "/v1/ledger/transfers", transfer("by-admin", "bank", "wallet", 7))).status, 201);
    assert.equal((await req("GET", "/v1/ledger/transfers/by-admin")).status, 200);
    assert.equal((await req("GET", "/metrics")).status, 200);
  });

  test("/metrics needs metrics:read and serves Prometheus text", async () => {
    expectError(await req("GET", "/metrics", undefined, { key: null }), 401, "unauthenticated");
    const ledgerOnly = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"] });
    expectError(await req("GET", "/metrics", undefined, { key: ledgerOnly.key }), 403, "forbidden");
    for (const key of [ADMIN_KEY, (await app.tally.keys.create({ scopes: ["metrics:read"] })).key]) {
      const res = await req("GET", "/metrics", undefined, { key });
      assert.equal(res.status, 200);
      assert.match(String(res.headers["content-type"]), /^text\/plain/);
      assert.match(res.text, /^tally_ledger_transfers_posted_total(\{[^}]*\})? \d+/m);
      assert.match(res.text, /tally_http_request_duration_seconds/);
    }
  });

  test("request durations are counted by route, method and status class", async () => {
    const count = async (labels: string) => {
      const text = (await req("GET", "/metrics")).text;
      const escaped = labels.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      return Number(new RegExp(`^tally_http_request_duration_seconds_count\\{${escaped}\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    };
    const created = 'method="POST",route="/v1/ledger/transfers",status="2xx"';
    const refused = 'method="POST",route="/v1/ledger/transfers",status="4xx"';
    const read = 'method="GET",route="/v1/ledger/transfers/:id",status="4xx"';
    const before = [await count(created), await count(refused), await count(read)];
    for (let i = 0; i < 3; i++) assert.equal((await req("POST", "/v1/ledger/transfers", transfer(`timed-${i}`, "bank", "wallet", 1))).status, 201);
    expectError(await req("POST", "/v1/ledger/transfers", { id: "timed-bad" }), 400, "validation_failed");
    for (let i = 0; i < 2; i++) expectError(await req("GET", `/v1/ledger/transfers/no-such-${i}`), 404, "not_found");
    assert.deepEqual([await count(created), await count(refused), await count(read)], [before[0]! + 3, before[1]! + 1, before[2]! + 2]);
  });

  test("/healthz, /readyz, /openapi.json and /docs need no key", async () => {
    const health = await req("GET", "/healthz", undefined, { key: null });
    assert.equal(health.status, 200);
    const ready = await req("GET", "/readyz", undefined, { key: null });
    assert.equal(ready.status, 200);
    const openapi = await req("GET", "/openapi.json", undefined, { key: null });
    assert.equal(openapi.status, 200);
    const doc = JSON.parse(openapi.text);
    assert.match(String(doc.openapi), /^3\./);
    for (const path of ["/v1/ledger/accounts", "/v1/ledger/accounts/{id}", "/v1/ledger/transfers", "/v1/ledger/transfers/batch", "/v1/ledger/transfers/{id}"]) {
      assert.ok(doc.paths[path], `openapi documents ${path}`);
    }
    let docs = await req("GET", "/docs", undefined, { key: null });
    if (docs.status >= 300 && docs.status < 400) {
      const location = String(docs.headers.location);
      docs = await req("GET", location.startsWith("/") ? location : `/docs/${location}`, undefined, { key: null });
    }
    assert.equal(docs.status, 200);
    assert.match(String(docs.headers["content-type"]), /text\/html/);
    assert.match(docs.text, /<html/i);
  });

  test("a merchant's key sees and touches only that merchant's objects", async () => {
    const a = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"], merchantId: "m_a" });
    const b = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"], merchantId: "m_b" });
    for (const id of ["iso-a1", "iso-a2"]) {
      assert.equal((await req("POST", "/v1/ledger/accounts", { id, currency: "CNY" }, { key: a.key })).status, 201);
    }
    assert.equal((await req("POST", "/v1/ledger/accounts", { id: "iso-b1", currency: "CNY" }, { key: b.key })).status, 201);
    assert.equal((await req("POST", "/v1/ledger/transfers", transfer("iso-ta", "iso-a1", "iso-a2", 100), { key: a.key })).status, 201);
    assert.equal((await req("POST", "/v1/ledger/transfers", transfer("iso-hold", "iso-a1", "iso-a2", 40, { pending: true }), { key: a.key })).status, 201);

    // Merchant B meets 404 wherever A's objects are, as if they did not exist.
    expectError(await req("GET", "/v1/ledger/accounts/iso-a1", undefined, { key: b.key }), 404, "not_found");
    expectError(await req("GET", "/v1/ledger/accounts/iso-a1/balance", undefined, { key: b.key }), 404, "not_found");
    expectError(await req("GET", "/v1/ledger/accounts/iso-a1/transfers", undefined, { key: b.key }), 404, "not_found");
    expectError(await req("GET", "/v1/ledger/transfers/iso-ta", undefined, { key: b.key }), 404, "not_found");
    expectError(await req("POST", "/v1/ledger/transfers", transfer("iso-steal", "iso-a1", "iso-b1", 50), { key: b.key }), 422, "debit_account_not_found");
    expectError(await req("POST", "/v1/ledger/transfers", transfer("iso-push", "iso-b1", "iso-a1", 50), { key: b.key }), 422, "credit_account_not_found");
    expectError(await req("POST", "/v1/ledger/transfers", { id: "iso-post", post_pending_id: "iso-hold" }, { key: b.key }), 422, "pending_transfer_not_found");
    expectError(await req("POST", "/v1/ledger/transfers", { id: "iso-void", void_pending_id: "iso-hold" }, { key: b.key }), 422, "pending_transfer_not_found");

    // A sees its own, untouched; B sees its own; the admin sees both.
    const a1 = await req("GET", "/v1/ledger/accounts/iso-a1", undefined, { key: a.key });
    assert.deepEqual([a1.status, a1.body.debits_posted, a1.body.debits_pending, a1.body.credits_posted], [200, 100, 40, 0]);
    assert.equal((await req("GET", "/v1/ledger/transfers/iso-hold", undefined, { key: a.key })).body.status, "pending");
    expectError(await req("GET", "/v1/ledger/accounts/iso-b1", undefined, { key: a.key }), 404, "not_found");
    const b1 = await req("GET", "/v1/ledger/accounts/iso-b1", undefined, { key: b.key });
    assert.deepEqual([b1.status, b1.body.balance], [200, 0]);
    assert.equal((await req("GET", "/v1/ledger/accounts/iso-a1")).status, 200);
    assert.equal((await req("GET", "/v1/ledger/accounts/iso-b1")).status, 200);
    assert.equal((await req("GET", "/v1/ledger/transfers/iso-ta")).status, 200);
    for (const id of ["iso-steal", "iso-push", "iso-post", "iso-void"]) {
      assert.equal((await req("GET", `/v1/ledger/transfers/${id}`)).status, 404, `${id} was not posted`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

for (const dialect of DIALECTS) {
  describe(`Idempotency-Key on ${dialect}`, () => {
    let app: TestApp;
    const req = client(() => app);
    const balance = async (id: string): Promise<number> => (await req("GET", `/v1/ledger/accounts/${id}`)).body.balance;
    const accountCount = async (): Promise<number> => {
      const row = await app.tally.db.read.selectFrom("ledger_accounts").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
      return Number(row.n);
    };
    before(async () => {
      app = await startTestApp({ dialect, label: "idem" });
      for (const account of [
        { id: "bank", currency: "CNY", normal_balance: "debit" },
        { id: "wallet", currency: "CNY" },
        { id: "guarded", currency: "CNY", flags: { debits_must_not_exceed_credits: true } },
      ]) {
        assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
      }
    });
    after(async () => app.close());

    test("account creation: same key and body replays the first response byte for byte, with one effect", async () => {
      // No client id: without the Idempotency-Key a second request would make a second account.
      const body = { currency: "CNY", owner: "landlord:42", metadata: { note: "rent wallet" } };
      const before = await accountCount();
      const first = await req("POST", "/v1/ledger/accounts", body, idem("acct-k1"));
      assert.equal(first.status, 201, first.text);
      assert.equal(first.headers["idempotent-replayed"], undefined, "a first response is not a replay");
      for (let i = 0; i < 2; i++) {
        const again = await req("POST", "/v1/ledger/accounts", body, idem("acct-k1"));
        assert.equal(again.status, 201);
        assert.equal(again.text, first.text);
        assert.equal(again.headers["idempotent-replayed"], "true");
      }
      assert.equal(await accountCount(), before + 1);
      assert.equal((await req("GET", `/v1/ledger/accounts/${first.body.id}`)).status, 200);
    });

    test("transfer: same key and body replays 201 byte for byte and moves the money once", async () => {
      const start = await balance("wallet");
      const body = transfer("idem-t1", "bank", "wallet", 700);
      const first = await req("POST", "/v1/ledger/transfers", body, idem("tr-k1"));
      assert.equal(first.status, 201, first.text);
      const again = await req("POST", "/v1/ledger/transfers", body, idem("tr-k1"));
      assert.equal(again.status, 201, "the stored 201, not the 200 a plain resend would get");
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(await balance("wallet"), start + 700);
    });

    test("same key with a different body is 409 idempotency_key_reused and has no effect", async () => {
      const start = await balance("wallet");
      assert.equal((await req("POST", "/v1/ledger/transfers", transfer("idem-r1", "bank", "wallet", 10), idem("reuse-k"))).status, 201);
      expectError(await req("POST", "/v1/ledger/transfers", transfer("idem-r2", "bank", "wallet", 10), idem("reuse-k")), 409, "idempotency_key_reused");
      expectError(await req("POST", "/v1/ledger/transfers", transfer("idem-r1", "bank", "wallet", 11), idem("reuse-k")), 409, "idempotency_key_reused");
      assert.equal((await req("GET", "/v1/ledger/transfers/idem-r2")).status, 404);
      assert.equal((await req("GET", "/v1/ledger/transfers/idem-r1")).body.amount, 10);
      assert.equal(await balance("wallet"), start + 10);
    });

    test("a request still in flight with the same key is 409 idempotency_key_in_use", async () => {
      const start = await balance("wallet");
      const body = transfer("idem-inflight", "bank", "wallet", 33);
      // The first request is parked at the engine's door (see holdEngine): it has begun its
      // idempotency record and cannot finish until released, so the next ones meet it in flight.
      const hold = holdEngine(app.tally.engine);
      const firstPending = app.request("POST", "/v1/ledger/transfers", body, idem("inflight-k"));
      try {
        await hold.reached;
        expectError(await req("POST", "/v1/ledger/transfers", body, idem("inflight-k")), 409, "idempotency_key_in_use");
        expectError(
          await req("POST", "/v1/ledger/transfers", transfer("idem-inflight-2", "bank", "wallet", 1), idem("inflight-k")),
          409,
          "idempotency_key_reused",
        );
      } finally {
        hold.release();
      }
      const first = await firstPending;
      checkConventions(first, "the held request");
      assert.equal(first.status, 201, first.text);
      const replay = await req("POST", "/v1/ledger/transfers", body, idem("inflight-k"));
      assert.equal(replay.text, first.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal(await balance("wallet"), start + 33, "one effect");
      assert.equal((await req("GET", "/v1/ledger/transfers/idem-inflight-2")).status, 404);
    });

    test("a 400 from the handler's checks is stored and replayed", async () => {
      const body = transfer("idem-bad-currency", "bank", "wallet", 5, { currency: "XYZ" });
      const first = await req("POST", "/v1/ledger/transfers", body, idem("v-handler"));
      expectError(first, 400, "validation_failed", "currency");
      const again = await req("POST", "/v1/ledger/transfers", body, idem("v-handler"));
      assert.equal(again.status, 400);
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
    });

    test("a 400 from schema validation (a float amount) is stored and replayed", async () => {
      const body = transfer("idem-float", "bank", "wallet", 12.5);
      const first = await req("POST", "/v1/ledger/transfers", body, idem("v-schema"));
      expectError(first, 400, "validation_failed", "amount");
      const again = await req("POST", "/v1/ledger/transfers", body, idem("v-schema"));
      assert.equal(again.status, 400);
      assert.equal(again.headers["idempotent-replayed"], "true", "the stored response is replayed");
      assert.equal(again.text, first.text);
    });

    test("a 422 is stored: the replay answers the same even after the balance would allow it", async () => {
      const body = transfer("idem-overdraft", "guarded", "wallet", 100);
      const first = await req("POST", "/v1/ledger/transfers", body, idem("k-422"));
      expectError(first, 422, "exceeds_credits");
      assert.equal((await req("POST", "/v1/ledger/transfers", transfer("fund-guarded", "bank", "guarded", 1000))).status, 201);
      const again = await req("POST", "/v1/ledger/transfers", body, idem("k-422"));
      assert.equal(again.status, 422);
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal((await req("GET", "/v1/ledger/transfers/idem-overdraft")).status, 404);
      assert.equal((await req("POST", "/v1/ledger/transfers", body)).status, 201, "without the key it is a new request");
    });

    test("keys are per API key: the same Idempotency-Key from two API keys is independent", async () => {
      const one = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"], merchantId: "m_idem" });
      const two = await app.tally.keys.create({ scopes: ["ledger:read", "ledger:write"], merchantId: "m_idem" });
      const body = { currency: "CNY", owner: "shared-key-test" };
      const a = await req("POST", "/v1/ledger/accounts", body, idem("shared", { key: one.key }));
      const b = await req("POST", "/v1/ledger/accounts", body, idem("shared", { key: two.key }));
      assert.equal(a.status, 201);
      assert.equal(b.status, 201);
      assert.equal(b.headers["idempotent-replayed"], undefined, "not another key's replay");
      assert.notEqual(a.body.id, b.body.id, "two accounts");
      const otherBody = await req("POST", "/v1/ledger/accounts", { currency: "USD" }, idem("shared-2", { key: one.key }));
      assert.equal(otherBody.status, 201);
      const crossed = await req("POST", "/v1/ledger/accounts", { currency: "EUR" }, idem("shared-2", { key: two.key }));
      assert.equal(crossed.status, 201, "a different body under another API key's Idempotency-Key is no conflict");
      assert.equal(crossed.body.currency, "EUR");
      const replayB = await req("POST", "/v1/ledger/accounts", body, idem("shared", { key: two.key }));
      assert.equal(replayB.text, b.text);
      assert.equal(replayB.headers["idempotent-replayed"], "true");
    });

    test("an invalid Idempotency-Key (empty, 300 chars, non-ASCII, a space) is 400 with no effect", async () => {
      const start = await balance("wallet");
      for (const key of ["", "k".repeat(300), "clé-1", "two words"]) {
        const res = await req("POST", "/v1/ledger/transfers", transfer("idem-badkey", "bank", "wallet", 9), idem(key));
        expectError(res, 400, "validation_failed");
      }
      assert.equal((await req("GET", "/v1/ledger/transfers/idem-badkey")).status, 404);
      assert.equal(await balance("wallet"), start);
      const longest = await req("POST", "/v1/ledger/transfers", transfer("idem-255", "bank", "wallet", 9), idem("k".repeat(255)));
      assert.equal(longest.status, 201, "255 printable ASCII characters are a valid key");
    });
  });
}

// ---------------------------------------------------------------------------------------------

// SQLite is the default here; PostgreSQL rejects some strings (NUL) that SQLite stores, so this
// group runs on both.
for (const dialect of DIALECTS) {
  describe(`hostile and malformed input on ${dialect}`, () => {
    let app: TestApp;
    const req = client(() => app);
    const raw = (url: string, rawBody: string, headers?: Record<string, string>) => req("POST", url, undefined, { rawBody, headers });
    const validTransfer = (id: string) => transfer(id, "bank", "wallet", 1);
    before(async () => {
      app = await startTestApp({ dialect, label: "hostile" });
      for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
        assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
      }
    });
    after(async () => app.close());

    test("malformed JSON, non-object bodies and an empty body are 400 validation_failed", async () => {
      for (const body of ['{"id":', "{'id': 'x'}", "[]", '[{"id":"x"}]', '"a string"', "42", "null", "true", ""]) {
        expectError(await raw("/v1/ledger/transfers", body), 400, "validation_failed");
        expectError(await raw("/v1/ledger/accounts", body), 400, "validation_failed");
      }
    });

    test("a content type other than JSON is 415 unsupported_media_type", async () => {
      const body = JSON.stringify(validTransfer("ctype"));
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
        expectError(await raw("/v1/ledger/transfers", body, { "content-type": type }), 415, "unsupported_media_type");
      }
      assert.equal((await req("GET", "/v1/ledger/transfers/ctype")).status, 404);
    });

    test("bad amounts are 400 naming amount: float, zero, negative, past 2^53 - 1, odd strings", async () => {
      const base = '{"id":"bad-amount","debit_account_id":"bank","credit_account_id":"wallet","currency":"CNY","amount":';
      for (const amount of ["12.5", "0", "-5", "125e-1", "9007199254740992", "9007199254740993", "1e400", '"9007199254740993"', '"12.5"', '"-5"', '"0"', '"01250"', '" 1250"', '""', "null", "true", "{}"]) {
        expectError(await raw("/v1/ledger/transfers", `${base}${amount}}`), 400, "validation_failed", "amount");
      }
      assert.equal((await req("GET", "/v1/ledger/transfers/bad-amount")).status, 404);
    });

    test("unknown fields are 400 naming the field", async () => {
      expectError(await req("POST", "/v1/ledger/transfers", { ...validTransfer("unknown-f"), colour: "red" }), 400, "validation_failed", "colour");
      expectError(await req("POST", "/v1/ledger/accounts", { currency: "CNY", flags: { frozen: true } }), 400, "validation_failed", "flags.frozen");
      const batch = await req("POST", "/v1/ledger/transfers/batch", { transfers: [validTransfer("unknown-b0"), { ...validTransfer("unknown-b1"), extra: 1 }] });
      expectError(batch, 400, "validation_failed", "transfers[1].extra");
      assert.equal((await req("GET", "/v1/ledger/transfers/unknown-b0")).status, 404, "a batch with one bad item is rejected whole");
    });

    test("deeply nested metadata is refused with 400, never 500", async () => {
      for (const depth of [10_000, 100_000]) {
        const metadata = '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
        const body = `{"id":"deep-${depth}","debit_account_id":"bank","credit_account_id":"wallet","amount":1,"currency":"CNY","metadata":${metadata}}`;
        assert.ok(Buffer.byteLength(body) < 1024 * 1024, "under the body limit, so the nesting itself is what is tested");
        expectError(await raw("/v1/ledger/transfers", body), 400, "validation_failed", "metadata");
        expectError(await raw("/v1/ledger/accounts", `{"currency":"CNY","metadata":${metadata}}`), 400, "validation_failed", "metadata");
      }
      // Metadata may nest up to 32 levels (JSON_DEPTH_MAX); one more is refused.
      const tooDeep = JSON.parse('{"a":'.repeat(34) + "1" + "}".repeat(34));
      expectError(await req("POST", "/v1/ledger/transfers", { ...validTransfer("deep-33"), metadata: tooDeep }), 400, "validation_failed", "metadata");
      const nested = JSON.parse('{"a":'.repeat(32) + "1" + "}".repeat(32));
      const ok = await req("POST", "/v1/ledger/transfers", { ...validTransfer("deep-ok"), metadata: nested });
      assert.equal(ok.status, 201, ok.text.slice(0, 200));
      assert.deepEqual(ok.body.metadata, nested);
    });

    test("huge strings are 400 naming the field", async () => {
      expectError(await req("POST", "/v1/ledger/transfers", { ...validTransfer("huge-ref"), reference: "r".repeat(129) }), 400, "validation_failed", "reference");
      expectError(await req("POST", "/v1/ledger/transfers", { ...validTransfer("huge-ref2"), reference: "r".repeat(500_000) }), 400, "validation_failed", "reference");
      expectError(await req("POST", "/v1/ledger/transfers", { ...validTransfer("huge-meta"), metadata: { note: "m".repeat(100_000) } }), 400, "validation_failed", "metadata");
      expectError(await req("POST", "/v1/ledger/transfers", validTransfer("i".repeat(65))), 400, "validation_failed", "id");
      expectError(await req("POST", "/v1/ledger/accounts", { currency: "CNY", owner: "o".repeat(129) }), 400, "validation_failed", "owner");
      const edge = await req("POST", "/v1/ledger/transfers", { ...validTransfer("i".repeat(64)), reference: "r".repeat(128) });
      assert.equal(edge.status, 201, "64-char id and 128-char reference are within limits");
      assert.equal(edge.body.reference, "r".repeat(128));
      for (const id of ["huge-ref", "huge-ref2", "huge-meta"]) assert.equal((await req("GET", `/v1/ledger/transfers/${id}`)).status, 404);
    });

    test("a body over 1 MiB is 413 payload_too_large; the batch endpoint takes a 2 MiB body", async () => {
      const big = JSON.stringify({ ...validTransfer("too-big"), metadata: { pad: "x".repeat(1024 * 1024 + 10) } });
      expectError(await raw("/v1/ledger/transfers", big), 413, "payload_too_large");
      expectError(await raw("/v1/ledger/accounts", JSON.stringify({ currency: "CNY", metadata: { pad: "x".repeat(1024 * 1024) } })), 413, "payload_too_large");
      assert.equal((await req("GET", "/v1/ledger/transfers/too-big")).status, 404);

      const transfers = Array.from({ length: 1000 }, (_, i) => ({ ...validTransfer(`big-batch-${i}`), metadata: { pad: "p".repeat(2000) } }));
      const body = JSON.stringify({ transfers });
      assert.ok(Buffer.byteLength(body) > 2 * 1000 * 1000, "about 2 MiB");
      const res = await raw("/v1/ledger/transfers/batch", body);
      assert.equal(res.status, 200, res.text.slice(0, 300));
      assert.equal(res.body.results.length, 1000);
      assert.ok(res.body.results.every((r: { result: string }) => r.result === "created"));
      const over = JSON.stringify({ transfers: [{ ...validTransfer("batch-too-big"), metadata: { pad: "x".repeat(17 * 1024 * 1024) } }] });
      expectError(await raw("/v1/ledger/transfers/batch", over), 413, "payload_too_large");
    });

    test("ids outside [A-Za-z0-9_.:-] are rejected, including unicode", async () => {
      for (const id of ["定金", "café", "a b", "a/b", "a'b", "", "emoji🏠"]) {
        expectError(await req("POST", "/v1/ledger/transfers", validTransfer(id)), 400, "validation_failed", "id");
        expectError(await req("POST", "/v1/ledger/accounts", { id, currency: "CNY" }), 400, "validation_failed", "id");
        expectError(await req("POST", "/v1/ledger/transfers", transfer("uid-ok", "bank", id, 1)), 400, "validation_failed", "credit_account_id");
      }
      assert.equal((await req("GET", "/v1/ledger/transfers/uid-ok")).status, 404);
      expectError(await req("GET", `/v1/ledger/accounts/${encodeURIComponent("定金")}`), 404, "not_found");
    });

    test("unicode in reference and metadata is accepted and returned byte for byte", async () => {
      const text = "定金 🏠";
      const metadata = { 备注: text, combining: "e\u0301", rtl: "\u202eabc" };
      const posted = await req("POST", "/v1/ledger/transfers", { ...validTransfer("unicode-1"), reference: text, metadata });
      assert.equal(posted.status, 201, posted.text);
      for (const res of [posted, await req("GET", "/v1/ledger/transfers/unicode-1")]) {
        assert.ok(Buffer.from(res.body.reference, "utf8").equals(Buffer.from(text, "utf8")));
        assert.deepEqual(res.body.metadata, metadata);
        assert.ok(res.text.includes(text), "UTF-8 on the wire");
      }
      const account = await req("POST", "/v1/ledger/accounts", { id: "unicode-acct", currency: "CNY", owner: text, metadata: { 名: text } });
      assert.equal(account.status, 201);
      const read = await req("GET", "/v1/ledger/accounts/unicode-acct");
      assert.equal(read.body.owner, text);
      assert.deepEqual(read.body.metadata, { 名: text });
    });

    test("SQL-looking strings are data: in the reference, in the URL path, in query strings", async () => {
      const sql = "'; DROP TABLE ledger_transfers; --";
      const posted = await req("POST", "/v1/ledger/transfers", { ...validTransfer("sql-1"), reference: sql, metadata: { q: "1' OR '1'='1" } });
      assert.equal(posted.status, 201);
      assert.equal(posted.body.reference, sql);
      for (const path of ["/v1/ledger/accounts/x'%20OR%201=1--", "/v1/ledger/transfers/x'%20OR%201=1--", "/v1/ledger/accounts/wallet'%3B%20DROP%20TABLE%20ledger_accounts%3B--/balance"]) {
        const res = await req("GET", path);
        assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
      }
      const cursor = await req("GET", `/v1/ledger/accounts/wallet/transfers?starting_after=${encodeURIComponent("x' OR 1=1--")}`);
      expectError(cursor, 400, "validation_failed", "starting_after");
      // The database is intact.
      assert.equal((await req("GET", "/v1/ledger/transfers/sql-1")).body.reference, sql);
      const wallet = await req("GET", "/v1/ledger/accounts/wallet");
      assert.equal(wallet.status, 200);
      const history = await req("GET", "/v1/ledger/accounts/wallet/transfers?limit=100");
      assert.ok(history.body.data.some((t: { id: string }) => t.id === "sql-1"));
    });

    test("__proto__ and constructor keys in metadata pollute nothing and are kept or refused, never dropped", async () => {
      const metadata = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"plain":1}';
      const body = `{"id":"proto-1","debit_account_id":"bank","credit_account_id":"wallet","amount":1,"currency":"CNY","metadata":${metadata}}`;
      const res = await raw("/v1/ledger/transfers", body);
      assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype is untouched");
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
      assert.ok(res.status === 201 || res.status === 400, res.text);
      if (res.status === 400) {
        expectError(res, 400, "validation_failed", "metadata");
      } else {
        // Accepted metadata is stored as sent: a silently dropped key would be data loss.
        const read = await req("GET", "/v1/ledger/transfers/proto-1");
        assert.deepEqual(Object.keys(read.body.metadata).sort(), ["__proto__", "constructor", "plain"]);
        assert.equal(JSON.stringify(read.body.metadata.__proto__), '{"polluted":"yes"}');
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    test("NUL bytes in strings are stored exactly or refused with 400, never 500", async () => {
      const cases: Array<{ url: string; body: Record<string, unknown>; field: string; check(res: TestResponse): void }> = [
        {
          url: "/v1/ledger/transfers", body: { ...validTransfer("nul-ref"), reference: "a\u0000b" }, field: "reference",
          check: (res) => assert.equal(res.body.reference, "a\u0000b"),
        },
        {
          url: "/v1/ledger/transfers", body: { ...validTransfer("nul-meta"), metadata: { "k\u0000": "v\u0000" } }, field: "metadata",
          check: (res) => assert.deepEqual(res.body.metadata, { "k\u0000": "v\u0000" }),
        },
        {
          url: "/v1/ledger/accounts", body: { id: "nul-owner", currency: "CNY", owner: "o\u0000" }, field: "owner",
          check: (res) => assert.equal(res.body.owner, "o\u0000"),
        },
      ];
      for (const c of cases) {
        const res = await req("POST", c.url, c.body);
        if (res.status === 400) {
          expectError(res, 400, "validation_failed", c.field);
        } else {
          assert.equal(res.status, 201, res.text);
          c.check(res);
          c.check(await req("GET", `${c.url}/${String(c.body.id)}`));
        }
      }
      expectError(await req("POST", "/v1/ledger/transfers", validTransfer("nul\u0000id")), 400, "validation_failed", "id");
      // The ledger still works afterwards.
      assert.equal((await req("POST", "/v1/ledger/transfers", validTransfer("after-nul"))).status, 201);
    });

    test("an unknown route is a 404 in the error shape", async () => {
      expectError(await req("GET", "/v1/ledger/nothing-here"), 404, "not_found");
      expectError(await req("POST", "/v2/ledger/transfers", validTransfer("v2")), 404, "not_found");
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe("pagination of an account's transfers (sqlite)", () => {
  let app: TestApp;
  const req = client(() => app);
  const ids = Array.from({ length: 45 }, (_, i) => `page-${String(i).padStart(2, "0")}`);
  // Every fifth transfer leaves the account, so the history merges both sides.
  const outgoing = (i: number) => i % 5 === 4;
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", label: "pages" });
    for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "paged", currency: "CNY" }, { id: "other", currency: "CNY" }]) {
      assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
    }
    const transfers = ids.map((id, i) => (outgoing(i) ? transfer(id, "paged", "bank", 1) : transfer(id, "bank", "paged", 100 + i)));
    const batch = await req("POST", "/v1/ledger/transfers/batch", { transfers });
    assert.equal(batch.status, 200);
    assert.ok(batch.body.results.every((r: { result: string }) => r.result === "created"));
    assert.equal((await req("POST", "/v1/ledger/transfers", transfer("other-t", "bank", "other", 5))).status, 201);
  });
  after(async () => app.close());

  test("walking with limit=20 and starting_after gives 20, 20, 5, newest first, no gaps or duplicates", async () => {
    const seen: string[] = [];
    const pages: Array<{ size: number; hasMore: boolean }> = [];
    let cursor: string | undefined;
    do {
      const url = `/v1/ledger/accounts/paged/transfers?limit=20${cursor ? `&starting_after=${cursor}` : ""}`;
      const res = await req("GET", url);
      assert.equal(res.status, 200);
      pages.push({ size: res.body.data.length, hasMore: res.body.has_more });
      seen.push(...res.body.data.map((t: { id: string }) => t.id));
      cursor = res.body.has_more ? res.body.data.at(-1).id : undefined;
    } while (cursor !== undefined && pages.length < 5);
    assert.deepEqual(pages, [{ size: 20, hasMore: true }, { size: 20, hasMore: true }, { size: 5, hasMore: false }]);
    assert.deepEqual(seen, [...ids].reverse());
  });

  test("each entry's balance_after is the running balance after it", async () => {
    const res = await req("GET", "/v1/ledger/accounts/paged/transfers?limit=100");
    assert.equal(res.body.has_more, false);
    const oldestFirst = [...res.body.data].reverse();
    let credits = 0;
    let debits = 0;
    oldestFirst.forEach((t: any, i: number) => {
      if (outgoing(i)) debits += 1;
      else credits += 100 + i;
      assert.deepEqual(t.balance_after, {
        debits_pending: 0, debits_posted: debits, credits_pending: 0, credits_posted: credits, balance: credits - debits, available: credits - debits,
      }, t.id);
    });
    const timestamps = res.body.data.map((t: { timestamp: string }) => t.timestamp);
    assert.deepEqual(timestamps, [...timestamps].sort().reverse(), "newest first");
    assert.equal(new Set(timestamps).size, timestamps.length, "unique timestamps");
  });

  test("limit defaults to 20 and is at most 100", async () => {
    const plain = await req("GET", "/v1/ledger/accounts/paged/transfers");
    assert.equal(plain.body.data.length, 20);
    assert.equal(plain.body.has_more, true);
    const hundred = await req("GET", "/v1/ledger/accounts/paged/transfers?limit=100");
    assert.equal(hundred.body.data.length, 45);
    assert.equal(hundred.body.has_more, false);
    const one = await req("GET", "/v1/ledger/accounts/paged/transfers?limit=1");
    assert.deepEqual(one.body.data.map((t: { id: string }) => t.id), ["page-44"]);
    for (const limit of ["101", "0", "1000", "-1", "abc", "2.5", ""]) {
      expectError(await req("GET", `/v1/ledger/accounts/paged/transfers?limit=${limit}`), 400, "validation_failed", "limit");
    }
  });

  test("starting_after must be a transfer of this account", async () => {
    expectError(await req("GET", "/v1/ledger/accounts/paged/transfers?starting_after=other-t"), 400, "validation_failed", "starting_after");
    expectError(await req("GET", "/v1/ledger/accounts/paged/transfers?starting_after=no-such-transfer"), 400, "validation_failed", "starting_after");
    const last = await req("GET", "/v1/ledger/accounts/paged/transfers?starting_after=page-00");
    assert.deepEqual([last.status, last.body.data.length, last.body.has_more], [200, 0, false]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("amounts and timestamps (sqlite)", () => {
  let app: TestApp;
  const clock = new ManualClock(); // 2023-03-24T00:00:00Z
  const req = client(() => app);
  const UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", clock, label: "amounts" });
    for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }, { id: "big-source", currency: "CNY", normal_balance: "debit" }, { id: "big", currency: "CNY" }]) {
      assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
    }
  });
  after(async () => app.close());

  test("an amount as a digit string works like the integer, and comes back as a JSON integer", async () => {
    const start = (await req("GET", "/v1/ledger/accounts/wallet")).body.balance;
    const posted = await req("POST", "/v1/ledger/transfers", transfer("str-amount", "bank", "wallet", "1250"));
    assert.equal(posted.status, 201, posted.text);
    assert.equal(posted.body.amount, 1250);
    assert.match(posted.text, /"amount":1250[,}]/);
    const wallet = await req("GET", "/v1/ledger/accounts/wallet");
    assert.equal(wallet.body.balance, start + 1250);
    assert.match(wallet.text, new RegExp(`"credits_posted":${start + 1250}[,}]`));
    // A replay with the integer is the same transfer.
    const replay = await req("POST", "/v1/ledger/transfers", transfer("str-amount", "bank", "wallet", 1250));
    assert.equal(replay.status, 200, replay.text);
    assert.equal(replay.body.amount, 1250);
    const batch = await req("POST", "/v1/ledger/transfers/batch", {
      transfers: [transfer("str-amount", "bank", "wallet", 1250), transfer("str-batch", "bank", "wallet", "50")],
    });
    assert.deepEqual(batch.body.results, [{ id: "str-amount", result: "exists" }, { id: "str-batch", result: "created" }]);
    assert.equal((await req("GET", "/v1/ledger/transfers/str-batch")).body.amount, 50);
    assert.equal((await req("GET", "/v1/ledger/accounts/wallet")).body.balance, start + 1300);
  });

  test("the largest amount, 2^53 - 1, is exact on the wire", async () => {
    // Fresh accounts on both sides: no balance may exceed 2^53 - 1 either (overflow).
    const posted = await req("POST", "/v1/ledger/transfers", transfer("max-amount", "big-source", "big", "9007199254740991"));
    assert.equal(posted.status, 201, posted.text);
    assert.match(posted.text, /"amount":9007199254740991[,}]/);
    const big = await req("GET", "/v1/ledger/accounts/big");
    assert.match(big.text, /"balance":9007199254740991[,}]/);
    expectError(await req("POST", "/v1/ledger/transfers", transfer("past-max", "big-source", "big", 1)), 422, "overflow");
  });

  test("balance?at= accepts an offset timestamp; responses are UTC with Z", async () => {
    for (const account of [{ id: "timed", currency: "CNY" }]) assert.equal((await req("POST", "/v1/ledger/accounts", account)).status, 201);
    clock.setMs(Date.UTC(2023, 2, 24, 8, 0, 0)); // 16:00 in UTC+8
    const first = await req("POST", "/v1/ledger/transfers", transfer("timed-1", "bank", "timed", 100));
    clock.setMs(Date.UTC(2023, 2, 24, 9, 0, 0)); // 17:00 in UTC+8
    const second = await req("POST", "/v1/ledger/transfers", transfer("timed-2", "bank", "timed", 200));
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.match(first.body.timestamp, UTC_TIMESTAMP);
    assert.equal(Date.parse(first.body.timestamp), Date.UTC(2023, 2, 24, 8, 0, 0));

    const balanceAt = (at: string) => req("GET", `/v1/ledger/accounts/timed/balance?at=${encodeURIComponent(at)}`);
    const between = await balanceAt("2023-03-24T16:42:00+08:00");
    assert.equal(between.status, 200, between.text);
    assert.equal(between.body.balance, 100);
    assert.equal((await balanceAt("2023-03-24T08:42:00Z")).body.balance, 100, "the same instant in UTC");
    assert.equal((await balanceAt("2023-03-24T17:30:00+08:00")).body.balance, 300);
    assert.equal((await balanceAt("2023-03-24T15:59:59+08:00")).body.balance, 0);
    assert.equal((await req("GET", "/v1/ledger/accounts/timed/balance")).body.balance, 300, "without at: now");
    expectError(await balanceAt("2023-03-24T16:42:00"), 400, "validation_failed", "at");
    expectError(await balanceAt("yesterday"), 400, "validation_failed", "at");

    // Every timestamp a response carries is UTC with Z, including the echoed `at`.
    assert.match(String(between.body.at), UTC_TIMESTAMP, `at is echoed in UTC, got ${between.body.at}`);
    assert.equal(Date.parse(between.body.at), Date.UTC(2023, 2, 24, 8, 42, 0));
    const account = await req("GET", "/v1/ledger/accounts/timed");
    assert.match(account.body.created_at, UTC_TIMESTAMP);
    const history = await req("GET", "/v1/ledger/accounts/timed/transfers");
    for (const t of history.body.data) assert.match(t.timestamp, UTC_TIMESTAMP);
  });
});
