// China's national algorithms end to end (TALLY_VAULT_SUITE=sm), on SQLite and PostgreSQL:
// payouts stored as SM4-GCM, found through HMAC-SM3 blind indexes, revealed; and a database
// that started on AES moves to SM4 by a rotation under the new suite plus re-encryption.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createTally } from "../../src/app.ts";
import { createLogger } from "../../src/ops/logger.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { DIALECTS } from "../support/databases.ts";
import { account, attempt, createPayment } from "../support/payments.ts";

async function fundedPayout(app: TestApp, accountNumber: string): Promise<string> {
  const res = await app.request("POST", "/v1/payouts", { amount: 100, currency: "CNY", source_account_id: "wallet:sm", destination: { bank_account_number: accountNumber, account_name: "王五" } });
  assert.equal(res.status, 201, res.text);
  return res.body.id;
}

async function destinationOf(app: TestApp, id: string): Promise<string> {
  const row = await app.tally.db.kysely.selectFrom("payouts").select("destination").where("id", "=", id).executeTakeFirstOrThrow();
  return row.destination;
}

for (const dialect of DIALECTS) {
  describe(`the SM suite on ${dialect}`, () => {
    test("payouts are stored in SM4-GCM, indexed with HMAC-SM3 and revealed", async () => {
      const app = await startTestApp({ dialect, label: "vaultsm", config: { vaultSuite: "sm" } });
      try {
        await account(app, "wallet:sm");
        const p = await createPayment(app, { amount: 100_000, merchant_account_id: "wallet:sm" });
        assert.equal((await attempt(app, p.id, { outcome: "succeeded" })).body.status, "succeeded");
        const id = await fundedPayout(app, "6222021234567893445");
        assert.match(await destinationOf(app, id), /^v2:sm4-gcm:1:/);
        const keys = await app.tally.db.kysely.selectFrom("vault_data_keys").select(["kind", "suite"]).execute();
        assert.deepEqual(new Set(keys.map((k) => k.suite)), new Set(["sm4-gcm"]));
        assert.deepEqual((await app.tally.payouts.findByAccountNumber("6222 0212 3456 7893 445", null)).map((x) => x.id), [id]);
        const revealed = await app.request("GET", `/v1/payouts/${id}/destination?reason=sm+suite+check`);
        assert.equal(revealed.status, 200, revealed.text);
        assert.equal(revealed.body.bank_account_number, "6222021234567893445");
        assert.equal((await app.request("GET", "/v1/admin/vault/coverage")).body.overall.coverage_percent, 100);
      } finally {
        await app.close();
      }
    });

    test("a database on AES moves to SM4: restart with the sm suite, rotate, re-encrypt", async () => {
      const app = await startTestApp({ dialect, label: "vaultswitch" });
      try {
        await account(app, "wallet:sm");
        const p = await createPayment(app, { amount: 100_000, merchant_account_id: "wallet:sm" });
        assert.equal((await attempt(app, p.id, { outcome: "succeeded" })).body.status, "succeeded");
        const id = await fundedPayout(app, "6228480402564890018");
        assert.match(await destinationOf(app, id), /^v2:aes-256-gcm:1:/);
        // A second process on the same database, configured for SM.
        const sm = await createTally({ ...app.tally.config, vaultSuite: "sm" }, { jobs: false, logger: createLogger("silent") });
        try {
          assert.equal(await sm.vault.rotate("payout.destination"), 2);
          await sm.runVaultJobs();
          assert.match(await destinationOf(app, id), /^v2:sm4-gcm:2:/);
          const payout = await app.tally.payouts.get(id, null);
          assert.equal((await app.tally.payouts.destinationOf(payout)).bankAccountNumber, "6228480402564890018", "the AES process reads the SM4 value after reloading keys");
          assert.deepEqual((await sm.payouts.findByAccountNumber("6228480402564890018", null)).map((x) => x.id), [id], "the blind index (created under AES) keeps matching");
        } finally {
          await sm.close();
        }
      } finally {
        await app.close();
      }
    });
  });
}
