// The notification inbox with the simulator's notifications, and recovery from a crash between
// recording an attempt and recording the channel's answer.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/kernel/clock.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { startServerProcess } from "../support/server-process.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { account, attempt, balances, createPayment, notificationRows } from "../support/payments.ts";
import { openDatabase } from "../../src/db/database.ts";
import { NOTIFICATION_PURPOSE } from "../../src/payments/notifications.ts";
import { openVault } from "../../src/vault/index.ts";

describe("simulator notifications", () => {
  const clock = new ManualClock(BigInt(Date.now()) * 1000n);
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ clock, label: "notify", options: { simulator: { notificationCopies: 3 } } });
    await account(app, "wallet:store:17");
  });
  after(async () => app.close());

  const notify = (body: string, contentType = "application/json") =>
    app.tally.server.inject({ method: "POST", url: "/v1/channels/simulator/notify", headers: { "content-type": contentType }, payload: body });
  const inboxCount = async () => (await app.tally.db.read.selectFrom("channel_notifications").select("id").execute()).length;

  test("a pending attempt is settled by the channel's notification; duplicates change nothing", async () => {
    const before = await balances(app, "wallet:store:17");
    const p = await createPayment(app, { amount: 4200 });
    const a = await attempt(app, p.id, { outcome: "pending" });
    assert.equal(a.body.status, "pending");
    const body = JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded" });
    const first = await notify(body);
    assert.equal(first.statusCode, 200, first.body);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "succeeded");
    for (let i = 0; i < 3; i++) assert.equal((await notify(body)).statusCode, 200);
    const after = await balances(app, "wallet:store:17");
    assert.equal(after.credits_posted - before.credits_posted, 4200, "paid once, whatever the copies");
    const rows = (await notificationRows(app)).filter((r) => r.body === body);
    assert.deepEqual(rows.map((r) => r.status).sort(), ["applied", "duplicate", "duplicate", "duplicate"]);
  });

  test("forged, malformed and hostile notifications are refused, stored, and move no money", async () => {
    const p = await createPayment(app, { amount: 999 });
    const a = await attempt(app, p.id, { outcome: "pending" });
    const before = await balances(app, "wallet:store:17");
    const count = await inboxCount();
    const hostile = [
      JSON.stringify({ attempt_id: "att_does_not_exist", outcome: "succeeded" }),
      JSON.stringify({ attempt_id: a.body.id, outcome: "paid_in_full_promise" }),
      JSON.stringify({ attempt_id: a.body.id }),
      JSON.stringify({ payout_id: "po_nope", outcome: "paid" }),
      JSON.stringify([{ attempt_id: a.body.id, outcome: "succeeded" }]),
      JSON.stringify({ attempt_id: "../../etc/passwd", outcome: "succeeded" }),
      '{"attempt_id": "' + a.body.id + '", "outcome": "succ',
      "\u0000\u0001binary",
      "",
      JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded", __proto__: { polluted: true } }).replace('"outcome"', '"__proto__":{"x":1},"outcome2"'),
    ];
    for (const body of hostile) {
      const res = await notify(body);
      assert.equal(res.statusCode, 400, `refused: ${body.slice(0, 50)}`);
    }
    const xml = await notify("<xml><attempt_id>x</attempt_id></xml>", "text/xml");
    assert.equal(xml.statusCode, 400);
    assert.deepEqual(await balances(app, "wallet:store:17"), before);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "processing");
    assert.equal((await inboxCount()) - count, hostile.length + 1, "every one is kept in the inbox");
    const rejected = await app.request("GET", "/v1/admin/notifications?status=rejected&limit=100");
    assert.ok(rejected.body.data.length >= hostile.length);
    assert.ok(rejected.body.data.every((n: { reason: string | null }) => typeof n.reason === "string" && n.reason.length > 0));
    assert.equal((await app.request("GET", "/v1/admin/notifications", undefined, { key: null })).status, 401);
  });

  test("a notification for another channel's attempt is refused", async () => {
    const p = await createPayment(app);
    const a = await attempt(app, p.id, { outcome: "pending" });
    await app.tally.db.kysely.updateTable("channel_attempts").set({ channel: "alipay" }).where("id", "=", a.body.id).execute();
    const res = await notify(JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded" }));
    assert.equal(res.statusCode, 400);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "processing");
  });

  test("the simulator's own delayed notifications arrive (three copies) and settle the attempt once", async () => {
    const before = await balances(app, "wallet:store:17");
    const p = await createPayment(app, { amount: 321 });
    const a = await attempt(app, p.id, { outcome: "succeeded", delay_ms: 20 });
    assert.equal(a.body.status, "pending");
    let status = "processing";
    for (let i = 0; i < 100 && status !== "succeeded"; i++) {
      await new Promise((r) => setTimeout(r, 10));
      status = (await app.request("GET", `/v1/payments/${p.id}`)).body.status;
    }
    assert.equal(status, "succeeded");
    await new Promise((r) => setTimeout(r, 50));
    const after = await balances(app, "wallet:store:17");
    assert.equal(after.credits_posted - before.credits_posted, 321);
  });

  test("a success reported after Tally closed the payment on expiry is booked to suspense and announced", async () => {
    const p = await createPayment(app, { amount: 777, expires_in_seconds: 60 });
    const a = await attempt(app, p.id, { outcome: "pending" });
    clock.advanceMs(61_000);
    await app.tally.runPaymentJobs();
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "expired");
    const before = await balances(app, "wallet:store:17");
    const res = await notify(JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded" }));
    assert.equal(res.statusCode, 200);
    const payment = (await app.request("GET", `/v1/payments/${p.id}`)).body;
    assert.equal(payment.status, "expired", "an expired payment stays expired");
    assert.deepEqual(await balances(app, "wallet:store:17"), before, "the merchant is not credited for a closed payment");
    const suspense = await balances(app, "suspense:simulator:CNY");
    assert.equal(suspense.credits_posted, 777, "the money is booked, not lost");
    const events = await app.tally.db.read.selectFrom("outbox_events").selectAll().where("type", "=", "payment.late_success").orderBy("seq").execute();
    assert.equal(events.length, 1);
  });

  test("a stored notification can be replayed; replaying an applied one changes nothing", async () => {
    const p = await createPayment(app, { amount: 55 });
    const a = await attempt(app, p.id, { outcome: "pending" });
    await notify(JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded" }));
    const row = (await notificationRows(app)).find((r) => r.body.includes(a.body.id))!;
    assert.ok(row, "the notification is in the inbox");
    const before = await balances(app, "wallet:store:17");
    const replay = await app.request("POST", `/v1/admin/notifications/${row.id}/replay`, {});
    assert.equal(replay.status, 200);
    assert.equal(replay.body.status, "duplicate");
    assert.deepEqual(await balances(app, "wallet:store:17"), before);
  });
});

for (const dialect of ["sqlite", "postgres"] as const) describe(`notification bodies at rest (${dialect})`, () => {
  const clock = new ManualClock(BigInt(Date.now()) * 1000n);
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ clock, dialect, label: "notify-sealed" });
    await account(app, "wallet:store:17");
  });
  after(async () => app.close());

  const notify = (body: string) =>
    app.tally.server.inject({ method: "POST", url: "/v1/channels/simulator/notify", headers: { "content-type": "application/json" }, payload: body });
  const insertClear = (id: string, body: string, status: "received" | "rejected") =>
    app.tally.db.kysely
      .insertInto("channel_notifications")
      .values({ id, channel: "simulator", received_at: clock.nowUs(), content_type: "application/json", headers: "{}", body, sealed_body: null, status, reason: null, dedupe_key: null, processed_at: null })
      .execute();

  test("a body is sealed by the vault as received: no clear copy in the row or the database file", async () => {
    const marker = `buyer_logon_id 159****5620 marker-${process.pid}-${Date.now()}`;
    const body = JSON.stringify({ attempt_id: "att_no_such_attempt", outcome: "succeeded", buyer: marker });
    assert.equal((await notify(body)).statusCode, 400, "refused (no such attempt), and kept");
    const row = (await notificationRows(app)).find((r) => r.body === body);
    assert.ok(row, "opened, the stored body is the one received, byte for byte");
    assert.equal(row.stored, "", "the clear column holds nothing");
    assert.ok(row.sealed_body !== null && !Buffer.from(row.sealed_body).includes(marker));
    const path = app.tally.db.sqlitePath;
    if (dialect === "sqlite") assert.ok(path && existsSync(path), "the database file is there to read");
    for (const file of path ? [path, `${path}-wal`] : []) {
      if (existsSync(file)) assert.ok(!readFileSync(file).includes(marker), `${file} holds the body in clear`);
    }
    const listed = await app.request("GET", "/v1/admin/notifications?status=rejected&limit=100");
    assert.ok(listed.body.data.some((n: { id: string; body: string }) => n.id === row.id && n.body === body), "the inbox shows it opened");
  });

  test("a body in another charset (GBK bytes, not UTF-8) is kept byte for byte", async () => {
    // "付款人" in GBK inside a form body: as UTF-8 text these bytes would become U+FFFD.
    const bytes = Buffer.concat([Buffer.from("attempt_id=att_gbk_body&payer="), Buffer.from([0xb8, 0xb6, 0xbf, 0xee, 0xc8, 0xcb])]);
    const res = await app.tally.server.inject({
      method: "POST",
      url: "/v1/channels/simulator/notify",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=gbk" },
      payload: bytes,
    });
    assert.equal(res.statusCode, 400, "the simulator reads JSON only: refused, and kept");
    const rows = await app.tally.db.read.selectFrom("channel_notifications").selectAll().where("content_type", "=", "application/x-www-form-urlencoded; charset=gbk").execute();
    assert.equal(rows.length, 1);
    const stored = app.tally.vault.openDocument(NOTIFICATION_PURPOSE, rows[0]!.sealed_body!);
    assert.deepEqual(stored, bytes, "the bytes as received, not their UTF-8 reading");
  });

  test("a body holding NUL and control bytes is kept (sealed) and refused, on either database", async () => {
    const body = "\u0000\u0001binary \u0007 end";
    const res = await notify(body);
    assert.equal(res.statusCode, 400, res.body);
    const row = (await notificationRows(app)).find((r) => r.body.startsWith("\u0000\u0001binary"));
    assert.ok(row, "kept in the inbox");
    assert.equal(row.status, "rejected");
  });

  test("a body kept in clear from before bodies were sealed is read, replayed, then sealed once by the vault job", async () => {
    const p = await createPayment(app, { amount: 77 });
    const a = await attempt(app, p.id, { outcome: "pending" });
    const body = JSON.stringify({ attempt_id: a.body.id, outcome: "succeeded" });
    const id = `ntf_legacy_${process.pid}`;
    await insertClear(id, body, "received");
    const listed = await app.request("GET", "/v1/admin/notifications?status=received&limit=100");
    assert.ok(listed.body.data.some((n: { id: string; body: string }) => n.id === id && n.body === body));
    const replay = await app.request("POST", `/v1/admin/notifications/${id}/replay`, {});
    assert.equal(replay.status, 200, replay.text);
    assert.equal(replay.body.status, "applied");
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "succeeded");

    await app.tally.runVaultJobs();
    const sealed = (await notificationRows(app)).find((r) => r.id === id)!;
    assert.equal(sealed.stored, "", "the clear copy is gone");
    assert.equal(sealed.body, body, "the sealed copy opens to the body as received");
    assert.equal(sealed.status, "applied", "sealing changes nothing else");
    await app.tally.runVaultJobs();
    const again = (await notificationRows(app)).find((r) => r.id === id)!;
    assert.deepEqual(Buffer.from(again.sealed_body!), Buffer.from(sealed.sealed_body!), "sealed once, not again");
    assert.equal((await notificationRows(app)).filter((r) => r.sealed_body === null).length, 0, "no body left in clear");
  });

  test("a seal that does not open hides no other notification, and its replay fails without details", async () => {
    const good = JSON.stringify({ attempt_id: "att_still_listed", outcome: "failed" });
    assert.equal((await notify(good)).statusCode, 400);
    const damaged = JSON.stringify({ attempt_id: "att_to_be_damaged", outcome: "failed" });
    assert.equal((await notify(damaged)).statusCode, 400);
    // One byte of the ciphertext flipped: the header reads, the authentication fails.
    const row = (await notificationRows(app)).find((r) => r.body === damaged)!;
    const id = row.id;
    const bytes = Buffer.from(row.sealed_body!);
    bytes[bytes.length - 20]! ^= 0x01;
    await app.tally.db.kysely.updateTable("channel_notifications").set({ sealed_body: bytes }).where("id", "=", id).execute();
    const listed = await app.request("GET", "/v1/admin/notifications?status=rejected&limit=100");
    assert.equal(listed.status, 200);
    const data = listed.body.data as Array<{ id: string; body: string | null }>;
    assert.equal(data.find((n) => n.id === id)?.body, null);
    assert.ok(data.some((n) => n.body === good), "the others are listed with their bodies");
    const replay = await app.request("POST", `/v1/admin/notifications/${id}/replay`, {});
    assert.equal(replay.status, 500);
    assert.equal(replay.body.error.code, "internal_error");
    assert.ok(!/seal|TLYD|vault/i.test(replay.text), replay.text);
  });

  test("a body sealed by another process under a key version rotated there is opened here", async () => {
    // Another Tally process: its own connection and vault on the same database and key file.
    const db2 = openDatabase(app.database.url);
    try {
      const vault2 = await openVault(db2, { keyFile: app.tally.config.vaultKeyFile, suite: "aes" });
      const version = await vault2.rotate(NOTIFICATION_PURPOSE);
      assert.ok(version >= 2);
      const body = JSON.stringify({ attempt_id: "att_sealed_elsewhere", outcome: "failed" });
      const id = `ntf_rotated_${process.pid}`;
      await insertClear(id, "", "rejected");
      await app.tally.db.kysely.updateTable("channel_notifications").set({ sealed_body: vault2.sealDocument(NOTIFICATION_PURPOSE, Buffer.from(body)) }).where("id", "=", id).execute();
      const listed = await app.request("GET", "/v1/admin/notifications?status=rejected&limit=100");
      assert.equal((listed.body.data as Array<{ id: string; body: string | null }>).find((n) => n.id === id)?.body, body);
    } finally {
      await db2.close();
    }
  });
});

describe("a crash between the attempt and the channel's answer", () => {
  let database: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), "tally-crash-pay-"));
  before(async () => {
    database = await createTestDatabase("sqlite", "crashpay");
  });
  after(async () => database.dispose());

  test("the attempt recorded before the call is settled by the re-query job after a restart", async () => {
    const env = { TALLY_VAULT_KEY_FILE: join(dir, "vault.key"), TALLY_SIMULATOR_LATENCY_MS: "3000", TALLY_CHANNEL_TIMEOUT_MS: "1500" };
    const first = await startServerProcess({ databaseUrl: database.url, env });
    assert.equal((await first.request("POST", "/v1/ledger/accounts", { id: "wallet:store:17", currency: "CNY" })).status, 201);
    const created = await first.request("POST", "/v1/payments", { id: "order-crash", amount: 8888, currency: "CNY", merchant_account_id: "wallet:store:17" });
    assert.equal(created.status, 201, created.text);
    const inFlight = first.request("POST", "/v1/payments/order-crash/attempts", { method: "simulator", simulator: { outcome: "succeeded" } }).catch(() => null);
    // Wait until the attempt (the intent) is on disk, then kill the process during the channel call.
    let processing = false;
    for (let i = 0; i < 100 && !processing; i++) {
      await new Promise((r) => setTimeout(r, 20));
      processing = (await first.request("GET", "/v1/payments/order-crash")).body.status === "processing";
    }
    assert.ok(processing, "the attempt was recorded before the channel answered");
    first.kill("SIGKILL");
    await first.exited;
    assert.equal(await inFlight, null, "the client never got an answer");

    const second = await startServerProcess({ databaseUrl: database.url, env: { ...env, TALLY_SIMULATOR_LATENCY_MS: "0" } });
    try {
      // Still processing after the restart, unless the re-query job, which runs as the process
      // starts, has settled it already (it did once on a slow machine, before the first GET).
      let payment = (await second.request("GET", "/v1/payments/order-crash")).body;
      assert.ok(payment.status === "processing" || payment.status === "succeeded", `status ${payment.status}`);
      for (let i = 0; i < 200 && payment.status === "processing"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        payment = (await second.request("GET", "/v1/payments/order-crash")).body;
      }
      assert.equal(payment.status, "succeeded", second.output());
      assert.equal(payment.attempts.length, 1);
      const wallet = (await second.request("GET", "/v1/ledger/accounts/wallet:store:17")).body;
      assert.equal(wallet.credits_posted, 8888);
    } finally {
      await second.stop();
    }
  });
});
