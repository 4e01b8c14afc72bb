// Migration 0011 on both databases: notifications stored in clear by earlier releases survive it
// unchanged, the vault job of the upgraded service seals them (the clear copy goes), and they read
// back exactly as received. On SQLite the job's look for clear bodies reads the partial index.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { sql } from "kysely";
import { openDatabase } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrations.ts";
import { createTestDatabase } from "../support/databases.ts";
import { startTestApp } from "../support/app.ts";
import { notificationRows } from "../support/payments.ts";
import { runCli } from "../support/cli.ts";

const COMMON = [
  `{"attempt_id":"att_old","outcome":"succeeded","buyer_logon_id":"159****5620"}`,
  "gmt_create=2023-03-27+10%3A00%3A00&buyer_id=2088102177846875&sign=abc%3D%3D",
  "付款人：张三 😀",
];
// PostgreSQL's text never held a NUL (such a notification could not be stored before 0011).
const BODIES_OF = { sqlite: [...COMMON, "nul \u0000 byte"], postgres: COMMON };

for (const dialect of ["sqlite", "postgres"] as const) {
  describe(`migration 0011 (${dialect}): notification bodies sealed`, () => {
    const BODIES = BODIES_OF[dialect];
    test("clear rows survive the migration, then the vault job seals each once", async () => {
      const database = await createTestDatabase(dialect, "ntfseal");
      const db = openDatabase(database.url);
      try {
        await migrate(db, { upTo: "0010_ledger_lease" });
        for (const [i, body] of BODIES.entries()) {
          await sql`insert into channel_notifications (id, channel, received_at, content_type, headers, body, status)
            values (${`ntf_old_${i}`}, 'simulator', ${1_000 + i}, 'text/plain', '{}', ${body}, 'rejected')`.execute(db.kysely);
        }
        await migrate(db);
        const rows = await db.read.selectFrom("channel_notifications").selectAll().orderBy("id").execute();
        assert.deepEqual(rows.map((r) => [r.body, r.sealed_body]), BODIES.map((b) => [b, null]), "unchanged, not sealed yet");
        if (dialect === "sqlite") {
          // The job's query as Kysely writes it (sealClearNotificationBodies).
          const query = db.read.selectFrom("channel_notifications").select(["id", "body"]).where("sealed_body", "is", null).orderBy("id").limit(10).compile();
          const plan = (db.sqliteReader!.prepare(`explain query plan ${query.sql}`).all(...(query.parameters as unknown[])) as Array<{ detail: string }>)
            .map((p) => p.detail)
            .join(" | ");
          assert.match(plan, /USING INDEX channel_notifications_clear/, plan);
        }
      } finally {
        await db.close();
      }

      const app = await startTestApp({ dialect, label: "ntfseal", config: { databaseUrl: database.url } });
      try {
        const before = (await app.request("GET", "/v1/admin/vault/coverage")).body;
        const documents = before.documents.find((d: { table: string }) => d.table === "channel_notifications");
        assert.deepEqual([documents.rows, documents.sealed, documents.not_sealed], [BODIES.length, 0, BODIES.length]);
        assert.deepEqual(documents.not_sealed_examples, BODIES.map((_, i) => `ntf_old_${i}`));
        assert.ok(before.overall.coverage_percent < 100, "clear bodies bring coverage down");
        if (dialect === "sqlite") {
          // The operator's command seals them (the server's job on the other database).
          const cli = await runCli(["vault", "reencrypt"], { TALLY_DATABASE_URL: database.url, TALLY_VAULT_KEY_FILE: app.tally.config.vaultKeyFile, TALLY_LOG_LEVEL: "silent" });
          assert.equal(cli.code, 0, cli.stderr);
          assert.match(cli.stdout, new RegExp(`sealed ${BODIES.length} notification bodies`));
        } else {
          await app.tally.runVaultJobs();
        }
        const after = (await app.request("GET", "/v1/admin/vault/coverage")).body;
        assert.equal(after.overall.coverage_percent, 100);
        assert.equal(after.documents.find((d: { table: string }) => d.table === "channel_notifications").sealed, BODIES.length);
        const sealed = await notificationRows(app);
        assert.deepEqual(sealed.map((r) => r.body), BODIES, "read back exactly as received");
        assert.ok(sealed.every((r) => r.stored === "" && r.sealed_body !== null), "no clear copy left");
        const listed = await app.request("GET", "/v1/admin/notifications?status=rejected&limit=10");
        assert.deepEqual(listed.body.data.map((n: { body: string }) => n.body).sort(), [...BODIES].sort());
      } finally {
        await app.close();
      }
      // Nor in the file's free space: the space the clear bodies took was overwritten (secure_delete).
      const path = app.tally.db.sqlitePath;
      for (const file of path ? [path, `${path}-wal`] : []) {
        if (!existsSync(file)) continue;
        const bytes = readFileSync(file);
        for (const body of BODIES) assert.ok(!bytes.includes(Buffer.from(body)), `${file} still holds ${JSON.stringify(body)}`);
      }
    });
  });
}
