// The SQLite writer thread ending unasked (an uncaught error, a resource limit) is loud and
// recoverable: writes are refused with 503 and /readyz says the ledger is unavailable while it is
// down, the end is logged, and a new thread takes over after a short delay, losing nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Worker } from "node:worker_threads";
import { createLogger } from "../../src/ops/logger.ts";
import { startTestApp } from "../support/app.ts";

type LogLine = { level: number; msg: string; restartInMs?: number; err?: { message?: string } };

test("the writer thread ends: 503 and not ready while it is down, logged, then a new thread takes over and nothing is lost", async () => {
  const lines: LogLine[] = [];
  const logger = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const app = await startTestApp({ label: "restart", logger });
  try {
    for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
      assert.equal((await app.request("POST", "/v1/ledger/accounts", account)).status, 201);
    }
    const transfer = (id: string) => ({ id, debit_account_id: "bank", credit_account_id: "wallet", amount: 5, currency: "CNY" });
    assert.equal((await app.request("POST", "/v1/ledger/transfers", transfer("wr-1"))).status, 201);
    assert.equal((await app.request("GET", "/readyz", undefined, { key: null })).status, 200);

    // The thread ends as a crash would end it: not through the store's close.
    const store = (app.tally.engine as unknown as { store: { worker: Worker } }).store;
    await store.worker.terminate();

    const refused = await app.request("POST", "/v1/ledger/transfers", transfer("wr-2"));
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error.code, "unavailable");
    assert.equal(refused.headers["retry-after"], "1");
    assert.doesNotMatch(refused.text, /thread|SQLite|worker/i, "the answer names no internals");
    const notReady = await app.request("GET", "/readyz", undefined, { key: null });
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body, { status: "ledger_unavailable" });
    const down = lines.filter((l) => l.level === 50 && /writer thread ended/.test(l.msg));
    assert.equal(down.length, 1);
    assert.equal(down[0]!.restartInMs, 100);
    assert.match((await app.request("GET", "/metrics")).text, /^tally_ledger_writable 0$/m);
    // Reads go on meanwhile.
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet")).body.credits_posted, 5);

    // A new thread within moments.
    let ready = 503;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ready = (await app.request("GET", "/readyz", undefined, { key: null })).status;
    }
    assert.equal(ready, 200);
    assert.ok(lines.some((l) => l.level === 40 && /started again/.test(l.msg)));
    const metrics = await app.request("GET", "/metrics");
    assert.match(metrics.text, /^tally_ledger_writer_restarts_total 1$/m);
    assert.match(metrics.text, /^tally_ledger_writable 1$/m);

    // The refused transfer goes through when retried; the one before the end is still there.
    assert.equal((await app.request("POST", "/v1/ledger/transfers", transfer("wr-2"))).status, 201);
    assert.equal((await app.request("POST", "/v1/ledger/transfers", transfer("wr-1"))).status, 200);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet")).body.credits_posted, 10);
    assert.equal((await app.request("GET", "/v1/ledger/accounts/bank")).body.debits_posted, 10);
  } finally {
    await app.close();
  }
});

test("a writer thread that ends while a batch is in flight: the batch's requests get 503, and each retry finds the transfer applied once", async () => {
  const app = await startTestApp({ label: "restart-inflight" });
  try {
    for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
      assert.equal((await app.request("POST", "/v1/ledger/accounts", account)).status, 201);
    }
    const store = (app.tally.engine as unknown as { store: { worker: Worker } }).store;
    const ids = Array.from({ length: 50 }, (_, i) => `wf-${i}`);
    const sent = Promise.all(
      ids.map((id) => app.request("POST", "/v1/ledger/transfers", { id, debit_account_id: "bank", credit_account_id: "wallet", amount: 1, currency: "CNY" })),
    );
    await store.worker.terminate();
    const responses = await sent;
    for (const r of responses) assert.ok(r.status === 201 || r.status === 503, `${r.status} ${r.text}`);
    // Retried until the new thread takes them: each transfer is applied exactly once.
    for (const id of ids) {
      let status = 503;
      for (let i = 0; i < 100 && status === 503; i++) {
        status = (await app.request("POST", "/v1/ledger/transfers", { id, debit_account_id: "bank", credit_account_id: "wallet", amount: 1, currency: "CNY" })).status;
        if (status === 503) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(status === 200 || status === 201, `${id}: ${status}`);
    }
    assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet")).body.credits_posted, ids.length);
  } finally {
    await app.close();
  }
});
