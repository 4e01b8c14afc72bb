// Strict dates (ESCROW.md "Bank profiles"): a bank's date format is a small pattern language
// (yyyy MM dd HH mm ss SSS XXX, every non-letter and `T` literal); a value must match one format
// whole, case-sensitive and untrimmed, and name a real instant. Local times are resolved in an
// IANA zone through Intl, so DST and historical offsets are the zone database's, not ours.
// Nothing here guesses: a value that fits no format is null and the caller quarantines it.

export type DateToken = "yyyy" | "MM" | "dd" | "HH" | "mm" | "ss" | "SSS" | "XXX";
const TOKENS: ReadonlySet<string> = new Set(["yyyy", "MM", "dd", "HH", "mm", "ss", "SSS", "XXX"]);

export interface CompiledFormat {
  readonly source: string;
  readonly regex: RegExp;
  /** Which capture group holds which token, in order. */
  readonly groups: readonly DateToken[];
  readonly hasOffset: boolean;
}

function escapeRegex(ch: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(ch) ? `\\${ch}` : ch;
}

/** Compiles a date format, or explains why it is not a valid one. */
export function compileDateFormat(format: string): CompiledFormat | { error: string } {
  if (typeof format !== "string" || format.length === 0) return { error: "must be a non-empty string" };
  if (format.length > 64) return { error: "is longer than 64 characters" };
  let regex = "^";
  const groups: DateToken[] = [];
  for (let i = 0; i < format.length; ) {
    const ch = format[i]!;
    if (ch === "T") {
      regex += "T";
      i += 1;
      continue;
    }
    if (/[A-Za-z]/.test(ch)) {
      let j = i;
      while (j < format.length && format[j] === ch) j += 1;
      const run = format.slice(i, j);
      if (!TOKENS.has(run)) {
        return { error: `unknown date token ${JSON.stringify(run)} (known: yyyy MM dd HH mm ss SSS XXX; T is a literal)` };
      }
      const token = run as DateToken;
      if (groups.includes(token)) return { error: `date token ${token} appears twice` };
      groups.push(token);
      regex +=
        token === "yyyy" ? "([0-9]{4})" : token === "SSS" ? "([0-9]{3})" : token === "XXX" ? "(Z|[+-][0-9]{2}:[0-9]{2})" : "([0-9]{2})";
      i = j;
      continue;
    }
    // Any other character (including non-ASCII) is a literal; a surrogate pair is two literals,
    // which match the same pair.
    regex += escapeRegex(ch);
    i += 1;
  }
  for (const required of ["yyyy", "MM", "dd"] as const) {
    if (!groups.includes(required)) return { error: `lacks ${required}: a date needs a year, a month and a day` };
  }
  if (groups.includes("ss") && !groups.includes("mm")) return { error: "has ss without mm" };
  if (groups.includes("mm") && !groups.includes("HH")) return { error: "has mm without HH" };
  if (groups.includes("SSS") && !groups.includes("ss")) return { error: "has SSS without ss" };
  return { source: format, regex: new RegExp(`${regex}$`), groups, hasOffset: groups.includes("XXX") };
}

/** True when `zone` is an IANA time zone name this runtime knows. */
export function isValidTimeZone(zone: unknown): zone is string {
  if (typeof zone !== "string" || zone.length === 0 || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      era: "short",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC, in ms, at the instant `epochMs`. */
export function zoneOffsetMs(epochMs: number, zone: string): number {
  const parts = formatterFor(zone).formatToParts(new Date(epochMs));
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? "0");
  let year = get("year");
  if (parts.find((p) => p.type === "era")?.value === "BC") year = 1 - year;
  const asUtc = Date.UTC(year, get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  const wholeSeconds = Math.floor(epochMs / 1000) * 1000;
  return asUtc - wholeSeconds;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

export function isRealLocal(t: LocalDateTime): boolean {
  return (
    t.year >= 1 &&
    t.month >= 1 && t.month <= 12 &&
    t.day >= 1 && t.day <= daysInMonth(t.year, t.month) &&
    t.hour >= 0 && t.hour <= 23 &&
    t.minute >= 0 && t.minute <= 59 &&
    t.second >= 0 && t.second <= 59 &&
    t.millisecond >= 0 && t.millisecond <= 999
  );
}

function utcMs(t: LocalDateTime): number {
  const d = new Date(0);
  d.setUTCFullYear(t.year, t.month - 1, t.day);
  d.setUTCHours(t.hour, t.minute, t.second, t.millisecond);
  return d.getTime();
}

/**
 * The instant (ms since the epoch) a wall-clock time names in `zone`, or null when it names none
 * (inside a DST gap). In a DST overlap the earlier instant (the offset before the change) wins.
 */
const resolved = new Map<string, number | null>();

export function localToEpochMs(t: LocalDateTime, zone: string): number | null {
  const wall = utcMs(t);
  if (zone === "UTC" || zone === "Etc/UTC") return wall;
  // Bank files repeat the same dates and times: Intl is slow, so answers are remembered.
  const key = `${zone}|${wall}`;
  const known = resolved.get(key);
  if (known !== undefined) return known;
  const instant = resolveLocal(wall, zone);
  if (resolved.size >= 10_000) resolved.clear();
  resolved.set(key, instant);
  return instant;
}

function resolveLocal(wall: number, zone: string): number | null {
  // Offsets around the wall time: try each candidate and keep those that read back as `wall`.
  const candidates = new Set<number>();
  for (const probe of [wall - 86_400_000, wall, wall + 86_400_000]) candidates.add(zoneOffsetMs(probe, zone));
  const fits: number[] = [];
  for (const offset of candidates) {
    const instant = wall - offset;
    if (zoneOffsetMs(instant, zone) === offset) fits.push(instant);
  }
  if (fits.length === 0) return null;
  return Math.min(...fits);
}

export interface ParsedInstant {
  /** µs since the epoch, UTC. */
  readonly us: bigint;
  /** The local date as written, YYYY-MM-DD. */
  readonly date: string;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

export function isoDate(year: number, month: number, day: number): string {
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** `Z` or ±HH:MM to minutes east of UTC, or null when out of range. */
function offsetMinutes(text: string): number | null {
  if (text === "Z") return 0;
  const m = /^([+-])([0-9]{2}):([0-9]{2})$/.exec(text);
  if (m === null) return null;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  if (hours > 18 || minutes > 59) return null;
  return (m[1] === "-" ? -1 : 1) * (hours * 60 + minutes);
}

function toInstant(t: LocalDateTime, offset: string | null, zone: string): ParsedInstant | null {
  if (!isRealLocal(t)) return null;
  let ms: number | null;
  if (offset !== null) {
    const minutes = offsetMinutes(offset);
    if (minutes === null) return null;
    ms = utcMs(t) - minutes * 60_000;
  } else {
    ms = localToEpochMs(t, zone);
  }
  if (ms === null || !Number.isFinite(ms)) return null;
  return { us: BigInt(ms) * 1000n, date: isoDate(t.year, t.month, t.day) };
}

/** Parses `value` with the first format it matches whole; null when none matches. */
export function parseWithFormats(
  value: string,
  formats: readonly CompiledFormat[],
  zone: string,
): ParsedInstant | null {
  for (const format of formats) {
    const m = format.regex.exec(value);
    if (m === null) continue;
    const t: LocalDateTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, millisecond: 0 };
    let offset: string | null = null;
    format.groups.forEach((token, i) => {
      const text = m[i + 1]!;
      if (token === "XXX") offset = text;
      else if (token === "yyyy") t.year = Number(text);
      else if (token === "MM") t.month = Number(text);
      else if (token === "dd") t.day = Number(text);
      else if (token === "HH") t.hour = Number(text);
      else if (token === "mm") t.minute = Number(text);
      else if (token === "ss") t.second = Number(text);
      else t.millisecond = Number(text);
    });
    // A value of a format's shape that names no real instant ("2023-02-30", a DST gap) does not
    // fit that format; the next one may still fit it.
    const instant = toInstant(t, offset, zone);
    if (instant !== null) return instant;
  }
  return null;
}

const ISO_PATTERN =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?)?(Z|[+-][0-9]{2}:[0-9]{2})?$/;

/**
 * ISO 8601 as camt writes it: xs:date (`2016-04-10`, optionally with an offset) or xs:dateTime
 * (`2007-10-18T13:15:00+01:00`, fraction up to 9 digits, offset optional). Without an offset the
 * value is local in `zone`. Fractions beyond µs are cut (not rounded). `date` is the date part as
 * written.
 */
export function parseIsoDateTime(value: string, zone: string): ParsedInstant | null {
  const m = ISO_PATTERN.exec(value);
  if (m === null) return null;
  const fraction = (m[7] ?? "").padEnd(6, "0");
  const t: LocalDateTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4] ?? "0"),
    minute: Number(m[5] ?? "0"),
    second: Number(m[6] ?? "0"),
    millisecond: Number(fraction.slice(0, 3)),
  };
  const instant = toInstant(t, m[8] ?? null, zone);
  if (instant === null) return null;
  return { us: instant.us + BigInt(Number(fraction.slice(3, 6))), date: instant.date };
}
