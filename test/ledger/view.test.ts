// The hand-written transfer JSON (the hot path) must read exactly as the generic serializer's.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { stringifyJson } from "../../src/http/json.ts";
import { FLAG_LINKED, FLAG_PENDING, FLAG_POST, FLAG_VOID, ZERO_BALANCES, afterFields, canonicalJson, type Transfer } from "../../src/ledger/model.ts";
import { transferJson, transferText } from "../../src/ledger/view.ts";

const runs = Number(process.env.TALLY_PROPERTY_RUNS ?? 200);

const transfer = fc.record({
  id: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
  debit: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
  credit: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
  amount: fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }),
  code: fc.integer({ min: 0, max: 2147483647 }),
  kind: fc.constantFrom(0, FLAG_PENDING, FLAG_POST, FLAG_VOID),
  linked: fc.boolean(),
  timeout: fc.integer({ min: 0, max: 1000 }),
  status: fc.constantFrom("posted", "pending", "voided", "expired" as const),
  reference: fc.option(fc.string({ maxLength: 128 }), { nil: null }),
  metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: null }),
  ts: fc.bigInt({ min: 1n, max: 4102444800000000n }),
});

test("transferText writes the same JSON as stringifyJson(transferJson(...))", () => {
  fc.assert(
    fc.property(transfer, fc.bigInt({ min: 0n, max: 4102444800000000n }), (r, nowUs) => {
      const t: Transfer = {
        ts: r.ts,
        id: r.id,
        merchantId: null,
        debitAccountId: r.debit,
        creditAccountId: r.credit,
        amount: r.amount,
        currency: "CNY",
        code: r.code,
        flags: r.kind | (r.linked ? FLAG_LINKED : 0),
        pendingId: r.kind === FLAG_POST || r.kind === FLAG_VOID ? "hold-1" : null,
        timeoutSeconds: r.timeout,
        expiresAt: r.kind === FLAG_PENDING && r.timeout > 0 ? r.ts + BigInt(r.timeout) * 1_000_000n : null,
        status: r.status,
        resolvedAt: null,
        reference: r.reference,
        metadata: r.metadata === null ? null : canonicalJson(r.metadata),
        ...afterFields(ZERO_BALANCES, ZERO_BALANCES),
        debitPrevTs: null,
        creditPrevTs: null,
      };
      // Equal as JSON values: metadata keys keep their stored (sorted) order in the fast path,
      // while a parsed object puts integer-like keys first.
      assert.deepEqual(JSON.parse(transferText(t, nowUs)), JSON.parse(stringifyJson(transferJson(t, nowUs))));
      if (t.metadata === null) assert.equal(transferText(t, nowUs), stringifyJson(transferJson(t, nowUs)));
    }),
    { numRuns: runs, seed: process.env.TALLY_PROPERTY_SEED ? Number(process.env.TALLY_PROPERTY_SEED) : undefined },
  );
});
