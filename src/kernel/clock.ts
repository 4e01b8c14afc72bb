// An injectable clock. Production code reads time only through a Clock so that tests can move
// time (hold expiry, payment expiry) without sleeping.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Microseconds since the Unix epoch, as used by ledger timestamps. */
  nowUs(): bigint;
}

const originNs = process.hrtime.bigint();
const originUs = BigInt(Date.now()) * 1000n;

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  // Wall time at start plus a monotonic offset: microsecond resolution without going backwards.
  nowUs: () => originUs + (process.hrtime.bigint() - originNs) / 1000n,
};

/** A clock that tests move by hand. */
export class ManualClock implements Clock {
  constructor(private us: bigint = BigInt(Date.UTC(2023, 2, 24)) * 1000n) {}
  nowMs(): number { return Number(this.us / 1000n); }
  nowUs(): bigint { return this.us; }
  advanceMs(ms: number): void { this.us += BigInt(ms) * 1000n; }
  setMs(ms: number): void { this.us = BigInt(ms) * 1000n; }
}

// The formatted second of the last timestamp: answers format many timestamps of the same second.
let cachedSecond = -1;
let cachedPrefix = "";

/** RFC 3339 in UTC with microseconds: 2023-03-24T08:42:00.123456Z. */
export function formatTimestampUs(us: bigint): string {
  const n = Number(us);
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    // Exact in a double (up to the year 2255): the second's text is reused, the fraction appended.
    const second = Math.floor(n / 1_000_000);
    if (second !== cachedSecond) {
      cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // YYYY-MM-DDTHH:MM:SS.
      cachedSecond = second;
    }
    return `${cachedPrefix}${String(n - second * 1_000_000).padStart(6, "0")}Z`;
  }
  const ms = us / 1000n;
  const micros = us % 1000n;
  const iso = new Date(Number(ms)).toISOString(); // ...HH:MM:SS.mmmZ
  return `${iso.slice(0, -1)}${micros.toString().padStart(3, "0")}Z`;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 timestamp with an offset into microseconds; null when it is not one. */
export function parseTimestampUs(text: string): bigint | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = "", offset] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return null;
  let offsetMinutes = 0;
  if (offset !== "Z" && offset !== "z") {
    const sign = offset!.startsWith("-") ? -1 : 1;
    const oh = Number(offset!.slice(1, 3)), om = Number(offset!.slice(4, 6));
    if (oh > 23 || om > 59) return null;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const epochMs = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
  const micros = BigInt((frac + "000000").slice(0, 6));
  return BigInt(epochMs) * 1000n + micros;
}
