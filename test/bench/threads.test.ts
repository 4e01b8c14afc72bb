// The bench's split of CPU time by thread (bench/threads.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuSplit, threadTimes } from "../../bench/threads.ts";

test("CPU per unit splits into the main thread, the busiest other thread and the rest", () => {
  const main = String(process.pid);
  const before = new Map([[main, 1], ["11", 2], ["12", 0.5], ["13", 0.1]]);
  // A thread that started during the run counts from zero.
  const after = new Map([[main, 3], ["11", 2.25], ["12", 1.5], ["13", 0.2], ["14", 0.05]]);
  const split = cpuSplit(before, after, 1_000_000)!;
  assert.equal(split.main, 2);
  assert.equal(split.busiestOther, 1);
  assert.ok(Math.abs(split.rest - 0.4) < 1e-9, `rest ${split.rest}`);
  assert.equal(cpuSplit(null, after, 10), null);
  assert.equal(cpuSplit(before, after, 0), null);
});

test("the main thread's time read from /proc grows with work done on it", () => {
  const before = threadTimes()!;
  assert.ok(before.has(String(process.pid)));
  const until = performance.now() + 120;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  const split = cpuSplit(before, threadTimes(), 1)!;
  assert.ok(x > 0);
  assert.ok(split.main >= 50_000, `the main thread used ${split.main} µs in 120 ms of work`);
});
