// Agreements end to end over HTTP: notices in every format the simulated bank speaks, duplicates
// and late notices, the manual queue, releases, refunds and commission with their limits (also
// under concurrent requests), and who may send a bank's documents.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/app.ts";
import { assertLedgerAgrees, createAgreement } from "../support/escrow.ts";

const BANK = "demo-bank";

async function fund(app: TestApp, agreementId: string, amount: number, extra: Record<string, unknown> = {}) {
  const a = (await app.request("GET", `/v1/agreements/${agreementId}`)).body;
  const res = await app.request("POST", `/v1/simulators/${BANK}/transfers`, { account_number: a.virtual_account.account_number, amount, payer_name: "王小明", ...extra });
  assert.equal(res.status, 201, res.text);
  await app.tally.arrivals.idle();
  return res.body as { bank_reference: string; notice_ids: string[] };
}

for (const dialect of DIALECTS) {
  describe(`agreements on ${dialect}`, () => {
    const clock = new ManualClock(BigInt(Date.now()) * 1000n);
    let app: TestApp;
    let n = 0;
    const id = () => `AG-${dialect}-${++n}`;
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "escrowflows" });
      for (const acct of ["commission:agent:7", "commission:agent:8"]) assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: acct, currency: "CNY" })).status, 201);
    });
    after(async () => app.close());

    test("personal data is shown masked and never stored in clear", async () => {
      const a = await createAgreement(app, id(), 100_000);
      assert.deepEqual(a.payer, { name: "王*明", id_number: "110105********002X", phone: "138****5678" });
      assert.deepEqual(a.payee, { name: "李*", bank_account_number: "6222 **** **** 3445", account_name: "李*" });
      const row = await app.tally.db.read.selectFrom("agreements").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
      const text = JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? String(v) : v));
      for (const clear of ["王小明", "11010519491231002X", "13812345678", "6222020200112233445"]) assert.ok(!text.includes(clear), `${clear} is not stored in clear`);
      // The bank's notice names the payer: it is kept byte for byte, but sealed by the vault.
      await fund(app, a.id, 100_000, { payer_account: "6217000099998888777" });
      const docs = await app.tally.db.read.selectFrom("custody_documents").select("raw_body").execute();
      const entries = await app.tally.db.read.selectFrom("custody_entries").selectAll().execute();
      for (const d of docs) {
        const raw = Buffer.from(d.raw_body);
        assert.equal(raw.indexOf(Buffer.from("王小明")), -1, "no clear payer name in a stored notice");
        assert.equal(raw.indexOf(Buffer.from("6217000099998888777")), -1, "no clear payer account in a stored notice");
      }
      assert.ok(!JSON.stringify(entries, (_k, v) => (typeof v === "bigint" ? String(v) : v)).includes("王小明"));
      const notice = (await app.request("GET", "/v1/custody/notices?limit=1")).body.data[0];
      const shown = (await app.request("GET", `/v1/custody/notices/${notice.id}`)).body;
      assert.match(shown.raw_body, /王小明/, "the API gives the body back exactly as received");
    });

    for (const format of ["json", "csv", "camt054", "mt940"] as const) {
      test(`a ${format} notice funds the agreement (with the matching profile)`, async () => {
        const a = await createAgreement(app, id(), 250_000);
        await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { notice: { format, date_format: "yyyy-MM-dd HH:mm:ss" } });
        const profiles: Record<string, unknown> = {
          json: null,
          csv: { format: "csv", fields: { account: "account", amount: "amount", currency: "currency", direction: "dc", credit_value: "C", bank_reference: "serial_no", payer_name: "payer_name", payer_account: "payer_account", remittance: "memo", booked_at: "booked_at" }, amount_unit: "major", date_formats: ["yyyy-MM-dd HH:mm:ss"], timezone: "Asia/Shanghai" },
          camt054: { format: "camt054" },
          mt940: { format: "mt940" },
        };
        const saved = (await app.request("GET", `/v1/custody/banks/${BANK}/profile`)).body.profile;
        if (profiles[format]) assert.equal((await app.request("PUT", `/v1/custody/banks/${BANK}/profile`, profiles[format])).status, 200);
        try {
          await fund(app, a.id, 250_000);
          const got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
          assert.equal(got.status, "funded", format);
          assert.equal(got.amount_received, 250_000);
        } finally {
          await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { notice: { format: "json", date_format: "yyyy-MM-dd HH:mm:ss" } });
          await app.request("PUT", `/v1/custody/banks/${BANK}/profile`, saved);
        }
      });
    }

    test("duplicated notices count once; a partial then a late notice fund in steps", async () => {
      const a = await createAgreement(app, id(), 300_000);
      const first = await fund(app, a.id, 100_000, { copies: 3 });
      assert.equal(first.notice_ids.length, 3);
      let got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.equal(got.status, "partially_funded");
      assert.equal(got.amount_received, 100_000);
      await fund(app, a.id, 200_000, { delay_ms: 20 });
      for (let i = 0; i < 100 && got.status !== "funded"; i++) {
        await new Promise((r) => setTimeout(r, 10));
        await app.tally.arrivals.idle();
        got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      }
      assert.equal(got.status, "funded");
      assert.equal(got.amount_received, 300_000);
      const dup = (await app.request("GET", "/v1/custody/entries?status=duplicate&limit=100")).body.data.filter((e: { bank_reference: string }) => e.bank_reference === first.bank_reference);
      assert.equal(dup.length, 2);
      await assertLedgerAgrees(app);
    });

    test("money to an unknown account waits in the manual queue (suspense) until matched by hand", async () => {
      const a = await createAgreement(app, id(), 70_000);
      const sent = await app.request("POST", `/v1/simulators/${BANK}/transfers`, { account_number: "9558000000000000000", amount: 70_000, payer_name: "某某公司", remittance: "no reference" });
      await app.tally.arrivals.idle();
      const queue = (await app.request("GET", "/v1/custody/entries?status=unmatched&limit=100")).body.data;
      const entry = queue.find((e: { bank_reference: string }) => e.bank_reference === sent.body.bank_reference);
      assert.ok(entry, "the entry is in the manual queue");
      const suspense = (await app.request("GET", `/v1/ledger/accounts/custody-suspense:${BANK}:CNY`)).body;
      assert.ok(suspense.credits_posted - suspense.debits_posted >= 70_000, "held in suspense");
      const matched = await app.request("POST", `/v1/custody/entries/${entry.id}/match`, { agreement_id: a.id, reason: "payer phoned: company pays for the buyer" });
      assert.equal(matched.status, 200, matched.text);
      assert.equal((await app.request("GET", `/v1/agreements/${a.id}`)).body.status, "funded");
      const twice = await app.request("POST", `/v1/custody/entries/${entry.id}/match`, { agreement_id: a.id, reason: "again" });
      assert.equal(twice.status, 422);
      const audit = await app.tally.db.read.selectFrom("escrow_audit").selectAll().where("action", "=", "custody.manual_match").execute();
      assert.ok(audit.some((r) => r.reason === "payer phoned: company pays for the buyer" && r.actor === "admin"));
      await assertLedgerAgrees(app);
    });

    test("a remittance naming the contract matches when the account does not", async () => {
      const a = await createAgreement(app, id(), 55_000);
      await app.request("POST", `/v1/simulators/${BANK}/transfers`, { account_number: "9558999999999999999", amount: 55_000, payer_name: "王小明", remittance: `定金 ${a.contract_ref}，谢谢` });
      await app.tally.arrivals.idle();
      assert.equal((await app.request("GET", `/v1/agreements/${a.id}`)).body.status, "funded");
    });

    test("release, refund and commission: held at once, posted on the bank's answer, limits enforced", async () => {
      const a = await createAgreement(app, id(), 1_000_000, { agent_account_id: "commission:agent:7" });
      await fund(app, a.id, 1_200_000);
      let got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.equal(got.overfunded, true);
      assert.equal(got.status, "funded");
      const tooMuch = await app.request("POST", `/v1/agreements/${a.id}/release`, { amount: 1_000_001 });
      assert.equal(tooMuch.status, 422, "money beyond amount_due can only be refunded");
      assert.equal(tooMuch.body.error.code, "exceeds_escrow");
      const comm = await app.request("POST", `/v1/agreements/${a.id}/commission`, { event_id: "deal-closed-1", amount: 30_000 });
      assert.equal(comm.status, 200, comm.text);
      assert.equal(comm.body.amount_converted, 30_000);
      const replay = await app.request("POST", `/v1/agreements/${a.id}/commission`, { event_id: "deal-closed-1", amount: 30_000 });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.amount_converted, 30_000, "a replayed event has no effect");
      const conflict = await app.request("POST", `/v1/agreements/${a.id}/commission`, { event_id: "deal-closed-1", amount: 31_000 });
      assert.equal(conflict.status, 409);
      const agent = (await app.request("GET", "/v1/ledger/accounts/commission:agent:7")).body;
      assert.equal(agent.credits_posted, 30_000);

      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { payouts: "hold" });
      const release = await app.request("POST", `/v1/agreements/${a.id}/release`, {});
      assert.equal(release.status, 201, release.text);
      assert.equal(release.body.status, "pending");
      assert.equal(release.body.amount, 970_000, "all that may be released: due − commission");
      got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.equal(got.amount_released, 0, "grows only when the bank confirms");
      assert.equal(got.amount_pending, 970_000);
      await assertLedgerAgrees(app);
      const failed = await app.request("POST", `/v1/simulators/${BANK}/payouts/${release.body.id}/settle`, { outcome: "failed" });
      assert.equal(failed.body.status, "failed");
      got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.equal(got.amount_pending, 0, "a failure voids the hold");
      const again = await app.request("POST", `/v1/agreements/${a.id}/release`, {});
      await app.request("POST", `/v1/simulators/${BANK}/payouts/${again.body.id}/settle`, { outcome: "paid" });
      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { payouts: "paid" });
      const refund = await app.request("POST", `/v1/agreements/${a.id}/refund`, {});
      assert.equal(refund.body.status, "paid");
      assert.equal(refund.body.amount, 200_000);
      got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.deepEqual([got.amount_released, got.amount_refunded, got.amount_converted, got.available], [970_000, 200_000, 30_000, 0]);
      assert.equal(got.status, "settled");
      await assertLedgerAgrees(app);
    });

    test("concurrent releases and commissions never take out more than the escrow holds", async () => {
      const a = await createAgreement(app, id(), 100_000, { agent_account_id: "commission:agent:8" });
      await fund(app, a.id, 100_000);
      const tries = await Promise.all([
        ...Array.from({ length: 4 }, () => app.request("POST", `/v1/agreements/${a.id}/release`, { amount: 30_000 })),
        ...Array.from({ length: 4 }, (_, i) => app.request("POST", `/v1/agreements/${a.id}/commission`, { event_id: `c-${i}`, amount: 30_000 })),
      ]);
      const ok = tries.filter((t) => t.status === 200 || t.status === 201);
      assert.equal(ok.length, 3, tries.map((t) => t.text).join("\n"));
      assert.ok(tries.filter((t) => t.status === 422).every((t) => t.body.error.code === "exceeds_escrow"));
      const got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
      assert.equal(got.available, 10_000);
      await assertLedgerAgrees(app);
    });

    test("only the bank's own credential (or the admin key) may send its notices", async () => {
      const body = JSON.stringify({ data: { items: [] } });
      const post = (key: string | null) =>
        app.tally.server.inject({ method: "POST", url: `/v1/custody/${BANK}/notices`, headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, payload: body });
      assert.equal((await post(null)).statusCode, 401);
      const other = await app.tally.keys.create({ scopes: ["custody:demo-other"] });
      assert.equal((await post(other.key)).statusCode, 403);
      const merchant = await app.tally.keys.create({ scopes: ["escrow:write"] });
      assert.equal((await post(merchant.key)).statusCode, 403);
      const own = await app.tally.keys.create({ scopes: [`custody:${BANK}`] });
      const accepted = await post(own.key);
      assert.equal(accepted.statusCode, 202, accepted.body);
      assert.equal(JSON.parse(accepted.body).status, "received");
      assert.equal((await post(ADMIN_KEY)).statusCode, 202);
    });

    test("hostile notices are stored and quarantined, never crash or fund", async () => {
      const before = (await app.request("GET", "/v1/agreements?limit=100")).body.data.map((a: { amount_received: number }) => a.amount_received);
      const hostile = [
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document>&x;</Document>',
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Document>&b;</Document>',
        "{\"data\": {\"items\": [{\"serialNo\": \"X1\", \"amt\": 12.345, ",
        "\u0000\u0001\u0002\u0003",
        JSON.stringify({ data: { items: [{ serialNo: "X2", acctNo: "1", amt: "1e9", ccy: "CNY", dcFlag: "C", tranTime: "2024-01-01 00:00:00" }] } }),
      ];
      for (const body of hostile) {
        const res = await app.tally.server.inject({ method: "POST", url: `/v1/custody/${BANK}/notices`, headers: { "content-type": "application/octet-stream", authorization: `Bearer ${ADMIN_KEY}` }, payload: Buffer.from(body, "utf8") });
        assert.equal(res.statusCode, 202, res.body);
      }
      await app.tally.arrivals.idle();
      const quarantined = (await app.request("GET", `/v1/custody/notices?status=quarantined&bank=${BANK}&limit=100`)).body.data;
      assert.ok(quarantined.length >= hostile.length);
      const after = (await app.request("GET", "/v1/agreements?limit=100")).body.data.map((a: { amount_received: number }) => a.amount_received);
      assert.deepEqual(after, before);
      await assertLedgerAgrees(app);
    });
  });
}
