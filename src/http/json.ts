// JSON with exact big integers. Amounts are bigint inside Tally; on the wire they are JSON
// integers, written digit for digit (never through a float).

import { randomBytes } from "node:crypto";

// A per-process random tag, so no client-supplied string can pose as a marked integer.
const TAG = randomBytes(8).toString("hex");
const MARK = `\u0000${TAG}:`;
const MARKED = new RegExp(`"\\\\u0000${TAG}:(-?\\d+)"`, "g");

export function stringifyJson(value: unknown): string {
  let sawBigint = false;
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") {
      sawBigint = true;
      return MARK + v.toString();
    }
    return v;
  });
  // JSON.stringify escapes the NUL of the mark as \u0000; a client string holding the same text
  // is escaped to \\u0000 and so never matches, and the tag is unknown to clients.
  return sawBigint ? text.replace(MARKED, "$1") : text;
}
