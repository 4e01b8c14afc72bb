// Timestamps in RFC 3339 with microseconds, formatted and parsed back.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatTimestampUs, parseTimestampUs } from "../../src/kernel/clock.ts";

/** The definition: the millisecond's ISO text with the microseconds appended. */
function reference(us: bigint): string {
  const iso = new Date(Number(us / 1000n)).toISOString();
  return `${iso.slice(0, -1)}${(us % 1000n).toString().padStart(3, "0")}Z`;
}

test("formatting matches the definition, for any microsecond and in any order of calls", () => {
  const us = fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) });
  // Runs of nearby timestamps exercise the reused second; jumps exercise its replacement.
  fc.assert(
    fc.property(fc.array(fc.tuple(us, fc.integer({ min: -2_000_000, max: 2_000_000 })), { minLength: 1, maxLength: 20 }), (pairs) => {
      for (const [at, step] of pairs) {
        for (const t of [at, at + BigInt(step)]) {
          if (t < 0n) continue;
          assert.equal(formatTimestampUs(t), reference(t));
          assert.equal(parseTimestampUs(formatTimestampUs(t)), t);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test("edges: the epoch, second boundaries, and the largest exact microsecond", () => {
  assert.equal(formatTimestampUs(0n), "1970-01-01T00:00:00.000000Z");
  assert.equal(formatTimestampUs(999_999n), "1970-01-01T00:00:00.999999Z");
  assert.equal(formatTimestampUs(1_000_000n), "1970-01-01T00:00:01.000000Z");
  assert.equal(formatTimestampUs(1_679_647_320_123_456n), "2023-03-24T08:42:00.123456Z");
  assert.equal(formatTimestampUs(1_679_647_319_999_999n), "2023-03-24T08:41:59.999999Z");
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  assert.equal(formatTimestampUs(max), reference(max));
  assert.equal(formatTimestampUs(max + 1n), reference(max + 1n));
});
