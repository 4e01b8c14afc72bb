// ULIDs: the time prefix, order within a millisecond, and randomness across milliseconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isClientId, ulid } from "../../src/kernel/ids.ts";

const ENCODING = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const decode = (text: string): bigint => [...text].reduce((n, c) => {
  const digit = ENCODING.indexOf(c);
  assert.ok(digit >= 0, `${c} is a Crockford base32 digit`);
  return n * 32n + BigInt(digit);
}, 0n);

test("a ULID is 26 Crockford base32 characters whose first 10 encode the millisecond", () => {
  const base = 1_790_000_000_000;
  for (let i = 0; i < 50; i++) {
    const ms = base + i * 7919;
    const id = ulid(ms);
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(decode(id.slice(0, 10)), BigInt(ms));
  }
});

test("ids of one millisecond count up by one in their 80 random bits, carrying across bytes", () => {
  const ms = 1_800_000_000_000;
  let previous = ulid(ms);
  for (let i = 0; i < 70_000; i++) {
    const id = ulid(ms);
    assert.ok(id > previous, "sorts after the one before");
    assert.equal(decode(id.slice(10)), decode(previous.slice(10)) + 1n);
    previous = id;
  }
  // An earlier clock reading (a clock stepped back) keeps the order too.
  const stepped = ulid(ms - 5_000);
  assert.ok(stepped > previous);
  assert.equal(stepped.slice(0, 10), previous.slice(0, 10));
});

test("each new millisecond draws fresh random bits, past the pool's refills", () => {
  const seen = new Set<string>();
  const start = 1_900_000_000_000;
  for (let i = 0; i < 1000; i++) seen.add(ulid(start + i).slice(10));
  assert.equal(seen.size, 1000, "no two milliseconds share a random part");
  // The bits are spread: every base32 digit shows up in the random parts' first position and
  // last position (an all-zero or stuck pool would not).
  const firsts = new Set([...seen].map((r) => r[0]));
  const lasts = new Set([...seen].map((r) => r[15]));
  assert.ok(firsts.size >= 8, `first digits vary: ${[...firsts].join("")}`);
  assert.equal(lasts.size, 32, "last digits take every value");
});

test("client ids: 1-64 of [A-Za-z0-9_.:-]", () => {
  assert.ok(isClientId("a"));
  assert.ok(isClientId("A-z_0.9:x".padEnd(64, "x")));
  for (const bad of ["", "x".repeat(65), "a b", "a/b", "é", "a\u0000"]) assert.equal(isClientId(bad), false, JSON.stringify(bad));
});
