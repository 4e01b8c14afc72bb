// Assertions for states that must be impossible. A broken invariant stops the process
// instead of letting it write wrong money; callers never catch AssertionFailure.

export class AssertionFailure extends Error {
  override name = "AssertionFailure";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/** Marks a switch as exhaustive: a missing case is a compile error. */
export function assertNever(value: never, what = "value"): never {
  throw new AssertionFailure(`unexpected ${what}: ${JSON.stringify(value)}`);
}
