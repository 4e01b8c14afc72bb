// The unit-of-work recorder: hooks' writes are compiled for the right database and recorded, in
// order; reads and RETURNING are refused at once, where the hook's author sees them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StatementRecorder } from "../../src/db/recorder.ts";

for (const dialect of ["sqlite", "postgres"] as const) {
  test(`records writes compiled for ${dialect}`, async () => {
    const recorder = new StatementRecorder(dialect);
    await recorder.kysely.insertInto("outbox_events").values({ id: "evt_1", type: "t", created_at: 1n, data: "{}" } as any).execute();
    await recorder.kysely.updateTable("api_keys").set({ revoked_at: 5n }).where("id", "=", "key_1").execute();
    const statements = recorder.take();
    assert.equal(statements.length, 2);
    assert.match(statements[0]!.sql, /^insert into "outbox_events"/);
    assert.match(statements[1]!.sql, dialect === "postgres" ? /\$1/ : /\?/);
    assert.deepEqual(statements[1]!.parameters, [5n, "key_1"]);
    assert.equal(recorder.take().length, 0, "take() empties the record");
  });

  test(`refuses reads and returning() on ${dialect}`, async () => {
    const recorder = new StatementRecorder(dialect);
    await assert.rejects(recorder.kysely.selectFrom("api_keys").selectAll().execute(), /may only write/);
    if (dialect === "postgres") {
      await assert.rejects(
        recorder.kysely.insertInto("outbox_events").values({ id: "e", type: "t", created_at: 1n, data: "{}" } as any).returning("id").execute(),
        /returning/,
      );
    }
    assert.equal(recorder.take().length, 0);
  });
}
