// The bench's split of CPU time by thread (bench/threads.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuSplit, mainThreadSchedule, threadTimes } from "../../bench/threads.ts";

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

test("another process's threads are read by its pid: its main thread's time grows with its work", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, ["-e", "const until = Date.now() + 5000; let x = 0; while (Date.now() < until) x += Math.sqrt(x + 1);"], { stdio: "ignore" });
  try {
    const pid = child.pid!;
    const before = threadTimes(pid)!;
    assert.ok(before.has(String(pid)), "the child's main thread is listed under its pid");
    assert.ok(!before.has(String(process.pid)), "this process's threads are not");
    await new Promise((resolve) => setTimeout(resolve, 400));
    const split = cpuSplit(before, threadTimes(pid), 1, pid)!;
    assert.ok(split.main >= 100_000, `the child's main thread used ${split.main} µs in 400 ms of a busy loop`);
    assert.equal(threadTimes(2 ** 22 + 12345), null, "a process that does not exist has no figure");
  } finally {
    child.kill("SIGKILL");
  }
});

test("the main thread's schedule: running time grows with work, not with sleep", async () => {
  const before = mainThreadSchedule()!;
  assert.ok(before.runningNs > 0);
  const until = performance.now() + 120;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  const afterWork = mainThreadSchedule()!;
  assert.ok(x > 0);
  assert.ok(afterWork.runningNs - before.runningNs >= 50_000_000, `ran ${afterWork.runningNs - before.runningNs} ns in 120 ms of work`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const afterSleep = mainThreadSchedule()!;
  assert.ok(afterSleep.runningNs - afterWork.runningNs < 100_000_000, `ran ${afterSleep.runningNs - afterWork.runningNs} ns in 300 ms asleep`);
  assert.ok(afterSleep.waitingNs >= before.waitingNs);
  assert.equal(mainThreadSchedule(2 ** 22 + 12345), null, "a process that does not exist has no figure");
});
