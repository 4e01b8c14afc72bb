// The vault through the HTTP API and the CLI, on SQLite and PostgreSQL: audited reveals (scope,
// reason, merchant isolation), the hash-chained audit log and its tamper detection, the coverage
// report after a full flow, and no clear personal value anywhere in the database at rest.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { startTestApp, type TestApp } from "../support/app.ts";
import { runCli } from "../support/cli.ts";
import { DIALECTS } from "../support/databases.ts";
import { account, attempt, createPayment } from "../support/payments.ts";

// Clear values that must never be found at rest.
const PEOPLE = [
  { bank_account_number: "6222 0288 9977 6655 443", account_name: "欧阳锋" },
  { bank_account_number: "6228480402564890018", account_name: "Wilhelmina Quartermaine" },
  { bank_account_number: "4000 1234 9876 1234 5678", account_name: "司马相如" },
];
/** Stored on purpose (the masked destination): the scans must find it, or they find nothing. */
const MASKED = "6222 **** **** 5443";
const CLEAR = PEOPLE.flatMap((p) => [p.bank_account_number, p.bank_account_number.replace(/\s+/g, ""), p.account_name]);

async function fund(app: TestApp, amount: number) {
  const p = await createPayment(app, { amount });
  const a = await attempt(app, p.id, { outcome: "succeeded" });
  assert.equal(a.body.status, "succeeded", a.text);
}

for (const dialect of DIALECTS) {
  describe(`the vault over the API on ${dialect}`, () => {
    let app: TestApp;
    let env: Record<string, string>;
    const payoutIds: string[] = [];
    before(async () => {
      app = await startTestApp({ dialect, label: "vault" });
      env = { TALLY_DATABASE_URL: app.database.url, TALLY_VAULT_KEY_FILE: app.tally.config.vaultKeyFile, TALLY_LOG_LEVEL: "silent" };
      await account(app, "wallet:store:17");
      await fund(app, 10_000_000);
      for (const [i, destination] of PEOPLE.entries()) {
        const res = await app.request("POST", "/v1/payouts", { amount: 1000 + i, currency: "CNY", source_account_id: "wallet:store:17", destination: { ...destination, bank_code: "ICBC" } });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.status, "paid");
        payoutIds.push(res.body.id);
      }
      await app.tally.runPaymentJobs();
      await app.tally.runWebhookJobs();
    });
    after(async () => app.close());

    test("responses carry masked values; an invalid name is a 400 naming the field", async () => {
      const got = await app.request("GET", `/v1/payouts/${payoutIds[0]}`);
      assert.deepEqual(got.body.destination, { bank_account_number: "6222 **** **** 5443", account_name: "欧*锋", bank_code: "ICBC" });
      assert.equal((await app.request("GET", `/v1/payouts/${payoutIds[1]}`)).body.destination.account_name, "W*** Quartermaine");
      const bad = await app.request("POST", "/v1/payouts", { amount: 1, currency: "CNY", source_account_id: "wallet:store:17", destination: { bank_account_number: "6222021234567893445", account_name: "<script>" } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "validation_failed");
      assert.equal(bad.body.error.param, "destination.account_name");
      const found = await app.tally.payouts.findByAccountNumber("6222028899776655443", null);
      assert.deepEqual(found.map((p) => p.id), [payoutIds[0]], "the blind index finds exactly the matching payout");
    });

    test("a reveal needs pii:reveal and a reason, returns the clear value and is audited", async () => {
      const id = payoutIds[0]!;
      const reader = await app.tally.keys.create({ scopes: ["payments:read"] });
      const revealer = await app.tally.keys.create({ scopes: ["pii:reveal"], name: "support desk" });
      const otherMerchant = await app.tally.keys.create({ scopes: ["pii:reveal"], merchantId: "merchant_other" });
      const url = `/v1/payouts/${id}/destination?reason=${encodeURIComponent("customer dispute #4411")}`;
      assert.equal((await app.request("GET", url, undefined, { key: null })).status, 401);
      const forbidden = await app.request("GET", url, undefined, { key: reader.key });
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.error.code, "forbidden");
      const noReason = await app.request("GET", `/v1/payouts/${id}/destination`, undefined, { key: revealer.key });
      assert.equal(noReason.status, 400);
      assert.equal((await app.request("GET", `/v1/payouts/${id}/destination?reason=x`, undefined, { key: revealer.key })).status, 400, "a reason of a few words");
      assert.equal((await app.request("GET", url, undefined, { key: otherMerchant.key })).status, 404, "another merchant's key sees no such payout");
      assert.equal((await app.request("GET", `/v1/payouts/po_none/destination?reason=checking+a+thing`, undefined, { key: revealer.key })).status, 404);
      const before = (await app.tally.audit.verify()).rows;
      const res = await app.request("GET", url, undefined, { key: revealer.key });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers["cache-control"], "no-store");
      assert.deepEqual({ ...res.body, audit_id: undefined }, { object: "payout_destination", payout_id: id, bank_account_number: "6222028899776655443", account_name: "欧阳锋", bank_code: "ICBC", audit_id: undefined });
      const log = await app.request("GET", `/v1/admin/vault/audit?object_id=${id}`);
      assert.equal(log.status, 200, log.text);
      assert.equal(log.body.data.length, 1, "refused and failed reveals write nothing");
      assert.equal(log.body.data[0].id, res.body.audit_id);
      assert.equal(log.body.data[0].actor, revealer.id);
      assert.equal(log.body.data[0].object_type, "payout");
      assert.equal(log.body.data[0].field, "destination");
      assert.equal(log.body.data[0].reason, "customer dispute #4411");
      assert.equal((await app.tally.audit.verify()).rows, before + 1);
      assert.equal((await app.request("GET", "/v1/admin/vault/audit", undefined, { key: revealer.key })).status, 403);
    });

    test("coverage is 100% after payouts through the API, and drops (CLI exits 1 under --min) with a clear row", async () => {
      const res = await app.request("GET", "/v1/admin/vault/coverage");
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.overall.coverage_percent, 100);
      assert.equal(res.body.overall.rows, PEOPLE.length);
      assert.deepEqual(res.body.columns.map((c: any) => `${c.table}.${c.column}`), ["payouts.destination", "agreements.payer", "agreements.payee", "custody_entries.payer_name"]);
      assert.equal(res.body.columns[0].key_versions["1"], PEOPLE.length);
      const merchantKey = await app.tally.keys.create({ scopes: ["vault:admin"], merchantId: "merchant_a" });
      assert.equal((await app.request("GET", "/v1/admin/vault/coverage", undefined, { key: merchantKey.key })).status, 403);
      const ok = await runCli(["vault", "coverage", "--min", "100"], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /overall\s+3 \/ 3\s+100\.00%/);
      // A row written around the vault (a bug, an import): coverage shows it.
      const row = await app.tally.db.kysely.selectFrom("payouts").selectAll().where("id", "=", payoutIds[2]!).executeTakeFirstOrThrow();
      await app.tally.db.kysely.updateTable("payouts").set({ destination: '{"bankAccountNumber":"0000"}' }).where("id", "=", row.id).execute();
      try {
        const low = await app.request("GET", "/v1/admin/vault/coverage");
        assert.equal(low.body.overall.coverage_percent, 66.66);
        assert.deepEqual(low.body.columns[0].not_encrypted_examples, [row.id]);
        const failed = await runCli(["vault", "coverage", "--min", "100"], env);
        assert.equal(failed.code, 1);
        assert.match(failed.stderr, /below 100%/);
      } finally {
        await app.tally.db.kysely.updateTable("payouts").set({ destination: row.destination }).where("id", "=", row.id).execute();
      }
    });

    test("the audit log is append-only, and an edited or deleted entry breaks the chain where it happened", async () => {
      const revealer = await app.tally.keys.create({ scopes: ["pii:reveal"] });
      for (const id of payoutIds) {
        const res = await app.request("GET", `/v1/payouts/${id}/destination?reason=quarterly+review`, undefined, { key: revealer.key });
        assert.equal(res.status, 200, res.text);
      }
      const ok = await runCli(["audit", "verify"], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /the audit log.s chain holds: \d+ entries, head \d+ [0-9a-f]{64}/);
      const db = app.tally.db.kysely;
      await assert.rejects(db.updateTable("vault_audit_log").set({ reason: "nothing to see" }).where("position", "=", 2n).execute(), /append-only/);
      await assert.rejects(db.deleteFrom("vault_audit_log").where("position", "=", 2n).execute(), /append-only/);
      // Someone with the rights to drop the triggers edits a row: the chain shows it.
      if (dialect === "sqlite") {
        await sql`drop trigger vault_audit_log_no_update`.execute(db);
        await sql`drop trigger vault_audit_log_no_delete`.execute(db);
      } else {
        await sql`drop trigger vault_audit_log_no_change on vault_audit_log`.execute(db);
      }
      await db.updateTable("vault_audit_log").set({ reason: "nothing to see" }).where("position", "=", 2n).execute();
      let result = await app.tally.audit.verify();
      assert.equal(result.ok, false);
      assert.equal(result.firstBroken?.position, "2");
      assert.match(result.firstBroken!.problem, /edited/);
      const broken = await runCli(["audit", "verify"], env);
      assert.equal(broken.code, 1, broken.stdout + broken.stderr);
      assert.match(broken.stderr, /broken at position 2/);
      // Deleting a row (with its edited neighbour restored) breaks it at the gap.
      const original = (await app.tally.audit.list({ limit: 10 })).find((e) => e.position === 2n)!;
      await db.deleteFrom("vault_audit_log").where("position", "=", 2n).execute();
      result = await app.tally.audit.verify();
      assert.equal(result.ok, false);
      assert.equal(result.firstBroken?.position, "2");
      assert.match(result.firstBroken!.problem, /missing/);
      assert.ok(original.reason === "nothing to see");
      // Renumbering the rest to hide the gap breaks it on the previous hash instead.
      await db.updateTable("vault_audit_log").set({ position: sql`position - 1` }).where("position", ">", 2n).execute();
      result = await app.tally.audit.verify();
      assert.equal(result.firstBroken?.position, "2");
      assert.match(result.firstBroken!.problem, /previous hash/);
    });

    test("no clear personal value is stored anywhere in the database", async () => {
      const found: string[] = [];
      if (dialect === "sqlite") {
        // The files as they are while Tally runs, the -wal included, read by another process:
        // opening them here would drop SQLite's POSIX locks (closing any descriptor of a file
        // releases all of the process's locks on it).
        const file = app.database.url.slice("sqlite:".length);
        const script = `
          const fs = require("node:fs");
          const [file, ...values] = JSON.parse(process.argv[1]);
          const files = [file, file + "-wal", file + "-journal"].filter((f) => fs.existsSync(f));
          const found = [];
          for (const f of files) { const bytes = fs.readFileSync(f); for (const v of values) if (bytes.includes(Buffer.from(v, "utf8"))) found.push(v + " in " + f); }
          console.log(JSON.stringify({ files, found }));`;
        const { stdout } = await promisify(execFile)(process.execPath, ["-e", script, JSON.stringify([file, MASKED, ...CLEAR])]);
        const scan = JSON.parse(stdout) as { files: string[]; found: string[] };
        assert.ok(scan.files.some((f) => f.endsWith("-wal")), `the -wal file is scanned too (${scan.files.join(", ")})`);
        assert.ok(scan.found.includes(`${MASKED} in ${file}-wal`) || scan.found.includes(`${MASKED} in ${file}`), "the scan finds what is there (the masked value)");
        found.push(...scan.found.filter((f) => !f.startsWith(MASKED)));
      } else {
        const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(app.tally.db.kysely);
        assert.ok(tables.rows.length > 10);
        for (const { table_name } of tables.rows) {
          const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(table_name)} t`.execute(app.tally.db.kysely);
          for (const r of rows.rows) for (const value of [MASKED, ...CLEAR]) if (r.row.includes(value)) found.push(`${value} in ${table_name}`);
        }
        assert.ok(found.includes(`${MASKED} in payouts`), "the scan finds what is there (the masked value)");
        found.splice(0, found.length, ...found.filter((f) => !f.startsWith(MASKED)));
      }
      assert.deepEqual(found, []);
    });
  });
}
