// Alerts that come from time passing (ESCROW.md "Alerts and metrics"): an entry unmatched too
// long, a bank silent during business hours, a statement not in by its hour — each raised once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { createAgreement } from "../support/escrow.ts";

describe("custody alerts", () => {
  // 10:30 in Shanghai (the bank's time): business hours, and past the statement's due hour.
  const clock = new ManualClock(BigInt(Date.UTC(2026, 10, 25, 2, 30)) * 1000n);
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ clock, label: "alerts" });
  });
  after(async () => app.close());

  const events = async (type: string) => (await app.tally.db.read.selectFrom("outbox_events").select("data").where("type", "=", type).orderBy("seq").execute()).map((e) => JSON.parse(e.data).object);

  test("unmatched entries, a silent bank and a missing statement are each alerted once", async () => {
    await createAgreement(app, "AG-ALERT", 10_000);
    await app.request("POST", "/v1/simulators/demo-bank/transfers", { account_number: "9558123", amount: 5_000, payer_name: "某人" });
    await app.tally.arrivals.idle();
    await app.tally.runPaymentJobs();
    assert.equal((await events("custody.entry_unmatched")).length, 0, "not before its time");
    assert.equal((await events("custody.statement_missing")).length, 1);
    clock.advanceMs(61 * 60_000);
    await app.tally.runPaymentJobs();
    const unmatched = await events("custody.entry_unmatched");
    assert.equal(unmatched.length, 1);
    assert.equal(unmatched[0].amount, 5000);
    clock.advanceMs(4 * 3_600_000);
    await app.tally.runPaymentJobs();
    await app.tally.runPaymentJobs();
    assert.equal((await events("custody.bank_silent")).length, 1);
    assert.equal((await events("custody.entry_unmatched")).length, 1, "raised once");
    assert.equal((await events("custody.statement_missing")).length, 1, "once a day");
    const metrics = (await app.request("GET", "/metrics")).text;
    assert.match(metrics, /tally_custody_entries_unmatched\{bank="demo-bank"\} 1/);
    assert.match(metrics, /tally_custody_unmatched_oldest_seconds\{bank="demo-bank"\} 18060/);
  });
});
