// Node.js flags of the `tally` process that cannot be set from inside: V8 sizes the young
// generation when it creates the heap, before any module runs. The launchers put them on the
// command line (package.json's scripts, bin/tally.mjs, the bench's and the tests' server
// processes), and `serve` warns when a process was started without them. This module has no side
// effects, so the bench can read the flags without taking them (its in-process engine keeps V8's
// defaults).
//
// A young generation of up to 64 MB per semi-space (V8's default on this machine: 16 MB). A batch
// of 8190 transfers keeps its objects alive until its commit lands, some milliseconds later, and
// with 16 MB they were copied by one or two young-generation collections and promoted, and the
// old generation then grew and was collected for them, through fresh memory pages each time. With
// 64 MB fewer are copied and promoted, and a quarter to a third fewer pages are faulted in. The batch
// endpoint served 15-23 % more transfers per second with it, its GC helper threads using less than
// half the CPU (session 14, docs/benchmarks.md). The cost is memory: up to 128 MB more per isolate
// (the server's and the ledger writer thread's) under load.

/** Node.js flags the launchers put on the `tally` command line (they cannot be set from inside). */
export const NODE_FLAGS: readonly string[] = ["--max-semi-space-size=64"];

/**
 * The NODE_FLAGS whose setting the running process was started without, on its command line or in
 * NODE_OPTIONS. A flag given with another value counts as given: an operator may choose it.
 */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): string[] {
  const name = (flag: string) => flag.split("=")[0]!.replaceAll("_", "-");
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(name));
  return NODE_FLAGS.filter((flag) => !given.has(name(flag)));
}
