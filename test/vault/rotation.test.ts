// Key rotation under load, on SQLite and PostgreSQL: a new data-key version, re-encryption by
// `tally vault reencrypt` in a child process killed midway (SIGKILL) and restarted, while this
// process keeps revealing (decrypting) and creating payouts. Every read succeeds throughout, the
// restarted job resumes from its checkpoint, and every row ends on the new key; values of the
// first cut's format (v1) are moved too. Also: a rotation from the CLI is picked up by a running
// server's vault job.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApp, type TestApp } from "../support/app.ts";
import { runCli, spawnCli } from "../support/cli.ts";
import { DIALECTS } from "../support/databases.ts";
import { account, attempt, createPayment } from "../support/payments.ts";
import { LocalKeyProvider, encryptLegacy } from "../../src/vault/index.ts";

const PURPOSE = "payout.destination";
const INITIAL_PAYOUTS = 40;

const accountNumberOf = (i: number) => `62220200${String(100_000_000 + i)}`;

for (const dialect of DIALECTS) {
  describe(`data-key rotation on ${dialect}`, () => {
    let app: TestApp;
    let env: Record<string, string>;
    const expected = new Map<string, string>();
    let n = 0;

    async function payout(): Promise<void> {
      const i = n++;
      const res = await app.request("POST", "/v1/payouts", { amount: 100, currency: "CNY", source_account_id: "wallet:rot", destination: { bank_account_number: accountNumberOf(i), account_name: "李四" } });
      assert.equal(res.status, 201, res.text);
      expected.set(res.body.id, accountNumberOf(i));
    }

    async function versions(): Promise<Map<string, number>> {
      const rows = await app.tally.db.kysely.selectFrom("payouts").select(["id", "destination"]).execute();
      return new Map(rows.map((r) => [r.id, app.tally.vault.versionOf(r.destination) ?? -1]));
    }

    before(async () => {
      app = await startTestApp({ dialect, label: "rotation" });
      env = { TALLY_DATABASE_URL: app.database.url, TALLY_VAULT_KEY_FILE: app.tally.config.vaultKeyFile, TALLY_LOG_LEVEL: "silent" };
      await account(app, "wallet:rot");
      const p = await createPayment(app, { amount: 10_000_000, merchant_account_id: "wallet:rot" });
      assert.equal((await attempt(app, p.id, { outcome: "succeeded" })).body.status, "succeeded");
      for (let i = 0; i < INITIAL_PAYOUTS; i++) await payout();
      // A few rows as the first cut wrote them (format v1).
      const provider = LocalKeyProvider.fromFile(app.tally.config.vaultKeyFile);
      for (const id of [...expected.keys()].slice(0, 5)) {
        const clear = JSON.stringify({ bankAccountNumber: expected.get(id), accountName: "李四" });
        await app.tally.db.kysely.updateTable("payouts").set({ destination: encryptLegacy(provider, PURPOSE, clear) }).where("id", "=", id).execute();
      }
    });
    after(async () => app.close());

    test("rotate under concurrent reads and writes, kill the job midway, restart: every row ends on the new key", async () => {
      const revealer = await app.tally.keys.create({ scopes: ["pii:reveal"] });
      const before = await versions();
      assert.deepEqual(new Set(before.values()), new Set([0, 1]));
      const target = await app.tally.vault.rotate(PURPOSE);
      assert.equal(target, 2);

      let reads = 0;
      const failures: string[] = [];
      let stop = false;
      let readsBeforeRestart = 0;
      const load = (async () => {
        for (let round = 0; !stop; round++) {
          const ids = [...expected.keys()];
          const id = ids[round % ids.length]!;
          const res = await app.request("GET", `/v1/payouts/${id}/destination?reason=rotation+test`, undefined, { key: revealer.key });
          if (res.status !== 200 || res.body.bank_account_number !== expected.get(id)) failures.push(`${id}: ${res.status} ${res.text}`);
          reads++;
          if (round % 4 === 0) await payout();
        }
      })();

      try {
        // First run: small batches with pauses, killed after a few batches.
        const first = spawnCli(["vault", "reencrypt", "--batch-rows", "4", "--pause-ms", "150"], env);
        let firstOut = "";
        const killed = new Promise<NodeJS.Signals | null>((resolve) => first.on("exit", (_code, signal) => resolve(signal)));
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the job printed no batches: ${firstOut}`)), 60_000);
          first.stdout!.on("data", (chunk: Buffer) => {
            firstOut += chunk.toString();
            if ((firstOut.match(/checkpoint/g) ?? []).length >= 3) {
              clearTimeout(timer);
              first.kill("SIGKILL");
              resolve();
            }
          });
        });
        assert.equal(await killed, "SIGKILL");
        const midway = await versions();
        const onNew = [...midway.values()].filter((v) => v === 2).length;
        const onOld = [...midway.values()].filter((v) => v !== 2).length;
        assert.ok(onNew > 0 && onOld > 0, `killed midway: ${onNew} rows on the new key, ${onOld} not yet`);
        readsBeforeRestart = reads;
        const checkpoint = await app.tally.db.kysely.selectFrom("vault_reencrypt_progress").selectAll().where("name", "=", "payouts.destination").executeTakeFirstOrThrow();
        assert.equal(Number(checkpoint.target_version), 2);
        assert.ok(checkpoint.last_key !== null && checkpoint.finished_at === null, "the killed run left a checkpoint");

        // Second run: resumes after the last committed batch and finishes.
        const second = await runCli(["vault", "reencrypt", "--batch-rows", "20"], env);
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stdout, /\(done\)/);
        const rowsReadAgain = [...second.stdout.matchAll(/read (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
        const afterCheckpoint = await app.tally.db.kysely.selectFrom("payouts").select((eb) => eb.fn.countAll().as("n")).where("id", ">", checkpoint.last_key!).executeTakeFirstOrThrow();
        assert.ok(rowsReadAgain <= Number(afterCheckpoint.n), `resumed after the checkpoint (read ${rowsReadAgain} rows, ${afterCheckpoint.n} lie after it), not from the start`);
      } finally {
        stop = true;
        await load;
      }
      assert.ok(readsBeforeRestart > 0 && reads > readsBeforeRestart, `reads ran throughout (${readsBeforeRestart}, then ${reads})`);
      assert.deepEqual(failures, [], "every read in between succeeded");
      // Payouts created during the run were written under the new key; a last pass finds none left.
      const final = await versions();
      assert.ok(final.size > INITIAL_PAYOUTS);
      assert.deepEqual([...final.entries()].filter(([, v]) => v !== 2), [], "every row is on key version 2");
      const coverage = await app.request("GET", "/v1/admin/vault/coverage");
      assert.equal(coverage.body.overall.coverage_percent, 100);
      assert.deepEqual(coverage.body.columns[0].key_versions, { "2": final.size });
      for (const [id, number] of expected) {
        const payout = await app.tally.payouts.get(id, null);
        assert.equal((await app.tally.payouts.destinationOf(payout)).bankAccountNumber, number);
      }
      assert.equal((await app.tally.payouts.findByAccountNumber(accountNumberOf(3), null)).length, 1, "blind indexes still find rows after rotation");
    });

    test("a rotation by the CLI is picked up by the running server's vault job", async () => {
      const rotated = await runCli(["keys", "rotate-data-key", "--purpose", PURPOSE], env);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /payout\.destination: data key version 3 created/);
      assert.equal((await runCli(["keys", "rotate-data-key", "--purpose", "nope"], env)).code, 2);
      await app.tally.runVaultJobs();
      assert.equal(app.tally.vault.currentVersion(PURPOSE), 3);
      await payout();
      const final = await versions();
      assert.deepEqual([...final.entries()].filter(([, v]) => v !== 3), [], "the job moved every row, and new payouts use version 3");
    });
  });
}
