// The users' incidents as tests, end to end over HTTP with the simulated custody bank:
// 1. a bank changes the date format of its arrival notices: the notices are quarantined (stored,
//    alerting), the agreements stay awaiting_funds, the day's statement reports the money as
//    missing_in_tally, the profile is fixed and the notices replayed, the agreements fund, a manual
//    arrival made meanwhile is not counted twice, and the ledger balances throughout;
// 2. a bank's identity-check outage: agreements are created as pending_bank and open by themselves
//    once the bank is back; an identity refusal ends as bank_rejected with the reason.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";

import { assertLedgerAgrees, createAgreement } from "../support/escrow.ts";

const BANK = "demo-bank";
const payer = (name: string) => ({ name, id_number: "11010519491231002X", phone: "13812345678" });
const payee = { name: "李四", bank_account_number: "6222020200112233445", account_name: "李四" };

const localToday = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);

for (const dialect of DIALECTS) {
  describe(`incident: a bank changes its notices' date format (${dialect})`, () => {
    const clock = new ManualClock(BigInt(Date.now()) * 1000n);
    let app: TestApp;
    const refs: Record<string, string> = {};
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "incident" });
    });
    after(async () => app.close());

    test("the notices in the new format are quarantined, stored and alerted; the agreements stay awaiting_funds", async () => {
      for (const id of ["A", "B", "C"]) await createAgreement(app, `AG-${dialect}-${id}`, 1_000_000);
      // A notice in the known format funds as usual.
      const d = await createAgreement(app, `AG-${dialect}-D`, 500_000);
      await app.request("POST", `/v1/simulators/${BANK}/transfers`, { account_number: d.virtual_account.account_number, amount: 500_000, payer_name: "王小明" });
      // The bank switches its date format without telling anyone.
      const switched = await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { notice: { format: "json", date_format: "yyyyMMdd HHmmss" } });
      assert.equal(switched.status, 200);
      for (const id of ["A", "B", "C"]) {
        const a = (await app.request("GET", `/v1/agreements/AG-${dialect}-${id}`)).body;
        const sent = await app.request("POST", `/v1/simulators/${BANK}/transfers`, { account_number: a.virtual_account.account_number, amount: 1_000_000, payer_name: "王小明", remittance: `HT-AG-${dialect}-${id}` });
        assert.equal(sent.status, 201, sent.text);
        refs[id] = sent.body.bank_reference;
      }
      await app.tally.arrivals.idle();
      assert.equal((await app.request("GET", `/v1/agreements/AG-${dialect}-D`)).body.status, "funded");
      for (const id of ["A", "B", "C"]) {
        const a = (await app.request("GET", `/v1/agreements/AG-${dialect}-${id}`)).body;
        assert.equal(a.status, "awaiting_funds");
        assert.equal(a.amount_received, 0);
      }
      const quarantined = await app.request("GET", `/v1/custody/notices?status=quarantined&bank=${BANK}`);
      assert.equal(quarantined.body.data.length, 3);
      const notice = (await app.request("GET", `/v1/custody/notices/${quarantined.body.data[0].id}`)).body;
      assert.match(notice.raw_body, /"tranTime":"\d{8} \d{6}"/, "stored byte for byte as received");
      assert.equal(notice.entries[0].status, "quarantined");
      assert.equal(notice.entries[0].reason.code, "unparseable_date");
      assert.equal(notice.entries[0].reason.field, "booked_at");
      const alerts = await app.tally.db.read.selectFrom("outbox_events").select("type").where("type", "=", "custody.notice_quarantined").orderBy("seq").execute();
      assert.equal(alerts.length, 3);
      const metrics = (await app.request("GET", "/metrics")).text;
      assert.match(metrics, /tally_custody_notices_total\{bank="demo-bank",status="quarantined"\} 3/);
      await assertLedgerAgrees(app);
    });

    test("an operator records one arrival by hand meanwhile (手动到账)", async () => {
      const b = await app.request("POST", `/v1/agreements/AG-${dialect}-B/manual-arrivals`, { amount: 1_000_000, currency: "CNY", bank_reference: refs.B, reason: "bank confirmed by phone; notice stuck" });
      assert.equal(b.status, 201, b.text);
      assert.equal(b.body.source, "manual");
      assert.equal((await app.request("GET", `/v1/agreements/AG-${dialect}-B`)).body.status, "funded");
      const again = await app.request("POST", `/v1/agreements/AG-${dialect}-B/manual-arrivals`, { amount: 1_000_000, currency: "CNY", bank_reference: refs.B, reason: "clicked twice" });
      assert.equal(again.status, 200, "the same manual arrival again is answered, not doubled");
      const other = await app.request("POST", `/v1/agreements/AG-${dialect}-B/manual-arrivals`, { amount: 999, currency: "CNY", bank_reference: refs.B, reason: "typo" });
      assert.equal(other.status, 409);
      await assertLedgerAgrees(app);
    });

    test("the day's statement reports the quarantined money as missing_in_tally, with the notices that explain it", async () => {
      const res = await app.request("POST", `/v1/simulators/${BANK}/statements`, { date: localToday(clock.nowMs()), format: "camt053" });
      assert.equal(res.status, 201, res.text);
      const rec = (await app.request("GET", `/v1/custody/reconciliations/${res.body.reconciliation_id}`)).body;
      assert.equal(rec.status, "differences");
      assert.equal(rec.summary.missing_in_tally, 2);
      assert.equal(rec.summary.matched, 2, "D (notice) and B (manual arrival)");
      const missing = rec.lines.filter((l: { status: string }) => l.status === "missing_in_tally");
      assert.deepEqual(missing.map((l: { bank_reference: string }) => l.bank_reference).sort(), [refs.A, refs.C].sort());
      for (const l of missing) assert.equal(l.candidates.length, 1, "the quarantined entry is named as the fix");
      const alert = await app.tally.db.read.selectFrom("outbox_events").select("type").where("type", "=", "custody.reconciliation_mismatch").orderBy("seq").execute();
      assert.ok(alert.length >= 1);
      const same = await app.tally.server.inject({ method: "POST", url: `/v1/custody/${BANK}/statements`, headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/xml" }, payload: res.body.body });
      assert.equal(same.statusCode, 200, "the same statement again answers the existing reconciliation");
    });

    test("after the profile is fixed and the notices replayed, the agreements fund; the manual arrival is not counted twice", async () => {
      const current = (await app.request("GET", `/v1/custody/banks/${BANK}/profile`)).body;
      const fixed = { ...current.profile, date_formats: [...current.profile.date_formats, "yyyyMMdd HHmmss"] };
      const put = await app.request("PUT", `/v1/custody/banks/${BANK}/profile`, fixed);
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.version, current.version + 1);
      const replay = await app.request("POST", "/v1/custody/notices/replay", { bank: BANK, status: "quarantined" });
      assert.equal(replay.status, 200, replay.text);
      assert.equal(replay.body.replayed, 3);
      assert.equal(replay.body.processed, 3);
      for (const id of ["A", "B", "C"]) {
        const a = (await app.request("GET", `/v1/agreements/AG-${dialect}-${id}`)).body;
        assert.equal(a.status, "funded", id);
        assert.equal(a.amount_received, 1_000_000, `${id} counted once`);
      }
      const bArrivals = (await app.request("GET", `/v1/agreements/AG-${dialect}-B/arrivals`)).body.data;
      assert.equal(bArrivals.length, 1);
      assert.equal(bArrivals[0].source, "manual");
      const entries = (await app.request("GET", "/v1/custody/entries?status=duplicate")).body.data;
      assert.ok(entries.some((e: { bank_reference: string; arrival_id: string }) => e.bank_reference === refs.B && e.arrival_id === bArrivals[0].id));
      // Replaying again changes nothing.
      const twice = await app.request("POST", "/v1/custody/notices/replay", { bank: BANK, status: "quarantined" });
      assert.equal(twice.body.replayed, 0);
      const oneNotice = (await app.request("GET", `/v1/custody/notices?bank=${BANK}&limit=1`)).body.data[0];
      await app.request("POST", `/v1/custody/notices/${oneNotice.id}/replay`, {});
      assert.equal((await app.request("GET", `/v1/agreements/AG-${dialect}-C`)).body.amount_received, 1_000_000);
      await assertLedgerAgrees(app);
      clock.advanceMs(1000);
      const res = await app.request("POST", `/v1/simulators/${BANK}/statements`, { date: localToday(clock.nowMs()), format: "mt940" });
      const rec = (await app.request("GET", `/v1/custody/reconciliations/${res.body.reconciliation_id}`)).body;
      assert.equal(rec.summary.missing_in_tally, 0, JSON.stringify(rec.lines));
      assert.equal(rec.summary.matched, 4);
    });
  });

  describe(`incident: the bank's identity-check service is down (${dialect})`, () => {
    const clock = new ManualClock(BigInt(Date.now()) * 1000n);
    let app: TestApp;
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "outage" });
    });
    after(async () => app.close());

    test("agreements are created as pending_bank and open by themselves once the bank is back", async () => {
      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { accounts: "down" });
      const res = await app.request("POST", "/v1/agreements", { id: "AG-OUT-1", amount_due: 100_000, currency: "CNY", custody_bank: BANK, payer: payer("张三"), payee });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, "pending_bank");
      assert.equal(res.body.virtual_account, null);
      assert.match(res.body.bank_reason, /unavailable/);
      clock.advanceMs(5_000);
      await app.tally.runPaymentJobs();
      assert.equal((await app.request("GET", "/v1/agreements/AG-OUT-1")).body.status, "pending_bank", "still down: still pending, nothing lost");
      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { accounts: "ok" });
      clock.advanceMs(60_000);
      await app.tally.runPaymentJobs();
      const opened = (await app.request("GET", "/v1/agreements/AG-OUT-1")).body;
      assert.equal(opened.status, "awaiting_funds");
      assert.match(opened.virtual_account.account_number, /^\d{20}$/);
      assert.ok(opened.virtual_account.account_number.length <= 34);
      const events = await app.tally.db.read.selectFrom("outbox_events").select(["type", "data"]).where("type", "=", "agreement.awaiting_funds").orderBy("seq").execute();
      assert.equal(JSON.parse(events.at(-1)!.data).previous_status, "pending_bank");
    });

    test("an identity refusal ends as bank_rejected with the bank's reason", async () => {
      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { accounts: "refuse_identity" });
      const res = await app.request("POST", "/v1/agreements", { id: "AG-OUT-2", amount_due: 100_000, currency: "CNY", custody_bank: BANK, payer: payer("张三"), payee });
      assert.equal(res.body.status, "bank_rejected");
      assert.match(res.body.bank_reason, /identity check failed/);
      await app.request("PUT", `/v1/simulators/${BANK}/behaviour`, { accounts: "ok" });
      clock.advanceMs(60_000);
      await app.tally.runPaymentJobs();
      assert.equal((await app.request("GET", "/v1/agreements/AG-OUT-2")).body.status, "bank_rejected", "a refusal is final");
    });
  });
}
