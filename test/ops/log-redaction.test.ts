// The logs hold no personal data and no secrets. A Tally whose logger writes every line at trace
// level into a captured stream runs a full flow (payments, payouts with known clear account
// numbers and names, failed channel calls, failed authentication with a known bad key, signed
// requests, errors that get logged, a 5xx); then every captured line is searched for the known
// clear values and secrets, and none may appear. The 5xx itself must not leak internals.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { signRequest } from "../../src/http/request-signing.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { createLogger, maskNumbers, safeError } from "../../src/ops/logger.ts";
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/app.ts";
import { DIALECTS } from "../support/databases.ts";
import { account, attempt, createPayment } from "../support/payments.ts";

const CARD_SPACED = "6217 0012 3456 7890 123";
const CARD = CARD_SPACED.replace(/ /g, "");
const NAME_ZH = "欧阳娜娜";
const NAME_EN = "Evangeline Q. Harrowgate";
const SECOND_CARD = "6228480402564890018";
const ID_NUMBER = "11010519491231002X";
const PHONE = "13812345678";
const BAD_KEY = "tally_sk_known-bad-key-FFFF0000";
const SQL_TEXT = "INSERT INTO payouts";

for (const dialect of DIALECTS) {
  describe(`logs of a full run hold no personal data or secrets (${dialect})`, () => {
    const lines: string[] = [];
    let app: TestApp;
    const clock = new ManualClock(BigInt(Date.UTC(2026, 0, 7)) * 1000n);
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...String(chunk).split("\n").filter(Boolean));
        callback();
      },
    });
    const secrets: string[] = [ADMIN_KEY, BAD_KEY];

    before(async () => {
      app = await startTestApp({ dialect, clock, label: "logs", logger: createLogger("trace", stream) });
    });
    after(async () => app.close());

    test("a full flow runs with the logger at trace level", async () => {
      await account(app, "wallet:store:17");
      const merchant = await app.tally.keys.create({ scopes: ["payments:read", "payments:write", "ledger:read", "ledger:write"], requireSignature: false });
      secrets.push(merchant.key, merchant.signingSecret);

      // Pay-ins: one succeeds, one fails.
      const paid = await createPayment(app, { amount: 900_000 });
      assert.equal((await attempt(app, paid.id, { outcome: "succeeded" })).status, 201);
      const failed = await createPayment(app);
      await attempt(app, failed.id, { outcome: "failed" });

      // Payouts with known clear destinations: paid, failed, and one whose channel call throws an
      // error that carries the destination (as an HTTP client's error would).
      const payout = (id: string, destination: Record<string, string>, simulator?: Record<string, unknown>) =>
        app.request("POST", "/v1/payouts", { id, amount: 1000, currency: "CNY", source_account_id: "wallet:store:17", destination, ...(simulator ? { simulator } : {}) });
      assert.equal((await payout("po-log-1", { bank_account_number: CARD_SPACED, account_name: NAME_ZH })).status, 201);
      assert.equal((await payout("po-log-2", { bank_account_number: SECOND_CARD, account_name: NAME_EN }, { outcome: "failed" })).status, 201);
      const simulator = app.tally.channels.get("simulator")!;
      const originalPayout = simulator.payout!.bind(simulator);
      simulator.payout = async (request) => {
        throw Object.assign(new Error(`bank gateway refused account ${request.destination.bankAccountNumber}`), {
          request: { body: { account: request.destination.bankAccountNumber, name: request.destination.accountName, id_number: ID_NUMBER, mobile: PHONE } },
          response: { status: 502, data: `holder ${request.destination.accountName}` },
          detail: `Key (account_name)=(${request.destination.accountName}) conflicts`,
        });
      };
      try {
        const res = await payout("po-log-3", { bank_account_number: CARD_SPACED, account_name: NAME_EN });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.status, "pending", "an unknown outcome stays pending");
      } finally {
        simulator.payout = originalPayout;
      }
      await app.tally.runPaymentJobs();
      assert.equal((await app.request("GET", "/v1/payouts/po-log-1")).body.destination.account_name, "欧**娜");

      // Failed authentication with a known bad key, and a signed request with a bad signature.
      assert.equal((await app.request("GET", "/v1/payouts/po-log-1", undefined, { key: BAD_KEY })).status, 401);
      const ts = String(Math.floor(clock.nowMs() / 1000));
      const bad = await app.request("GET", "/v1/payouts/po-log-1", undefined, {
        key: merchant.key,
        headers: { "tally-timestamp": ts, "tally-nonce": "nonce-0123456789abcdef", "tally-signature": signRequest("wrong", ts, "nonce-0123456789abcdef", "GET", "/v1/payouts/po-log-1", "") },
      });
      assert.equal(bad.status, 401);

      // Validation errors that echo nothing personal, and a payout refused for its body.
      assert.equal((await payout("po-log-bad", { bank_account_number: "not digits", account_name: NAME_ZH })).status, 400);

      // A 5xx: the database layer fails with an error carrying SQL, values and a detail.
      const reads = app.tally.payments.reads as unknown as { listPayouts: (...args: unknown[]) => Promise<unknown> };
      const originalList = reads.listPayouts;
      reads.listPayouts = async () => {
        throw Object.assign(new Error(`${SQL_TEXT} (account_number, account_name) VALUES ('${CARD}', '${NAME_ZH}') failed: connection reset`), {
          detail: `Failing row contains (${CARD}, ${NAME_ZH}, ${PHONE}).`,
          parameters: [CARD, NAME_ZH, ID_NUMBER],
          query: `${SQL_TEXT} VALUES ($1, $2)`,
        });
      };
      try {
        const res = await app.request("GET", "/v1/payouts");
        assert.equal(res.status, 500);
        assert.equal(res.body.error.code, "internal_error");
        for (const leak of [SQL_TEXT, "VALUES", CARD, NAME_ZH, "connection reset", "    at ", ".ts:"]) {
          assert.equal(res.text.includes(leak), false, `the 5xx response does not show ${leak}`);
        }
      } finally {
        reads.listPayouts = originalList;
      }
      // Explicit debug logging of objects that hold such values, as code might do.
      app.tally.logger.debug({ payout: { id: "po-log-1", destination: { bank_account_number: CARD, account_name: NAME_ZH } } }, "payout created");
      app.tally.logger.trace({ req: { headers: { authorization: `Bearer ${merchant.key}` } }, body: { id_number: ID_NUMBER, phone: PHONE } }, "incoming");
      app.tally.logger.debug({ customer: { email: "evangeline@example.com", mobile: PHONE, holder_name: NAME_EN } }, "customer");
    });

    test("no captured line holds a clear personal value or a secret", () => {
      assert.ok(lines.length >= 5, `the flow was logged (${lines.length} lines)`);
      assert.ok(lines.some((l) => l.includes("payout call failed")), "the failed channel call was logged");
      const failure = lines.find((l) => l.includes("request failed"));
      assert.ok(failure, "the 5xx was logged");
      assert.match(failure, /INSERT INTO payouts \(account_number, account_name\) VALUES \('\[value\]', '\[value\]'\) failed: connection reset/, "with what went wrong, values masked");
      const forbidden = [CARD, CARD_SPACED, SECOND_CARD, NAME_ZH, NAME_EN, ID_NUMBER, PHONE, "evangeline@example.com", ...secrets];
      for (const line of lines) {
        for (const value of forbidden) assert.equal(line.includes(value), false, `a log line holds ${value.slice(0, 12)}…: ${line.slice(0, 400)}`);
        // Last four digits are fine in a mask; a run of 8 or more digits is not.
        // Request ids (a random prefix and a counter) may hold digit runs by chance: they are not data.
        const scrubbed = line.replace(/"time":"[^"]*"/, "").replace(/req_[0-9A-Za-z]+/g, "req_");
        assert.doesNotMatch(scrubbed, /\d(?: ?\d){11,}/, `no long number: ${line.slice(0, 300)}`);
      }
    });
  });
}

test("the error serializer keeps type, message, code, stack and cause, and masks long numbers", () => {
  const error = Object.assign(new Error("card 6222 0212 3456 7893 445 and phone 13812345678, id 11010519491231002X, name 'O''Brien'"), {
    code: "E_BANK",
    detail: "secret detail",
    cause: new Error("inner 6222021234567893445"),
  });
  const out = safeError(error) as Record<string, any>;
  assert.deepEqual(Object.keys(out).sort(), ["cause", "code", "message", "stack", "type"]);
  assert.equal(out.message, "card [number] and phone [number], id [number], name '[value]'");
  assert.equal(out.cause.message, "inner [number]");
  assert.equal(maskNumbers("amount 1234567 in 2026-01-07"), "amount 1234567 in 2026-01-07", "short numbers and dates stay");
});
