import assert from "node:assert/strict";
import { test } from "node:test";
import { compileDateFormat, parseIsoDateTime, parseWithFormats, isValidTimeZone, type CompiledFormat } from "../../src/arrivals/parsers/dates.ts";

function fmt(...formats: string[]): CompiledFormat[] {
  return formats.map((f) => {
    const c = compileDateFormat(f);
    assert.ok(!("error" in c), `${f}: ${"error" in c ? c.error : ""}`);
    return c;
  });
}
const iso = (us: bigint | undefined) => (us === undefined ? null : new Date(Number(us / 1000n)).toISOString());

test("date formats: valid and invalid tokens", () => {
  for (const ok of ["yyyyMMdd HHmmss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss.SSSXXX", "dd/MM/yyyy", "yyyy年MM月dd日 HH时mm分", "yyyyMMdd"]) {
    assert.ok(!("error" in compileDateFormat(ok)), ok);
  }
  for (const bad of ["yy-MM-dd", "yyyy-M-dd", "yyyy-MM-d", "YYYY-MM-dd", "yyyy-MM-dd hh:mm", "yyyy-MM-dd HH:mm:ss.SS", "yyyy-MM-ddZ", "yyyy-MM-dd HH:mm:ssX", "yyyy-MMM-dd", "MM-dd", "yyyy-MM-dd-dd", "", "yyyy-MM-dd a"]) {
    assert.ok("error" in compileDateFormat(bad), bad);
  }
});

const SH = "Asia/Shanghai";
const cases: [string, string[], string, string | null][] = [
  // value, formats, zone, expected instant (ISO, UTC) or null
  ["20230615 143000", ["yyyyMMdd HHmmss"], SH, "2023-06-15T06:30:00.000Z"],
  ["2023-06-15 14:30:00", ["yyyyMMdd HHmmss", "yyyy-MM-dd HH:mm:ss"], SH, "2023-06-15T06:30:00.000Z"],
  ["2023-01-15 14:30:00", ["yyyy-MM-dd HH:mm:ss"], SH, "2023-01-15T06:30:00.000Z"], // +08:00 in winter too
  ["2023-06-15T14:30:00.123+02:00", ["yyyy-MM-ddTHH:mm:ss.SSSXXX"], SH, "2023-06-15T12:30:00.123Z"], // the offset wins
  ["2023-06-15T14:30:00.123Z", ["yyyy-MM-ddTHH:mm:ss.SSSXXX"], SH, "2023-06-15T14:30:00.123Z"],
  ["2023-06-15T14:30:00-05:30", ["yyyy-MM-ddTHH:mm:ssXXX"], SH, "2023-06-15T20:00:00.000Z"],
  ["15/06/2023", ["dd/MM/yyyy"], SH, "2023-06-14T16:00:00.000Z"],
  ["2023年06月15日", ["yyyy年MM月dd日"], SH, "2023-06-14T16:00:00.000Z"],
  // Europe/Berlin: CET +01:00 in winter, CEST +02:00 in summer
  ["2023-01-10 12:00", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-01-10T11:00:00.000Z"],
  ["2023-07-10 12:00", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-07-10T10:00:00.000Z"],
  ["2023-03-26 01:59", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-03-26T00:59:00.000Z"],
  ["2023-03-26 02:30", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", null], // inside the spring-forward gap
  ["2023-03-26 03:00", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-03-26T01:00:00.000Z"],
  ["2023-10-29 02:30", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-10-29T00:30:00.000Z"], // overlap: the earlier
  ["2023-10-29 03:30", ["yyyy-MM-dd HH:mm"], "Europe/Berlin", "2023-10-29T02:30:00.000Z"],
  ["2024-02-29 00:00", ["yyyy-MM-dd HH:mm"], "UTC", "2024-02-29T00:00:00.000Z"],
  // never a real instant
  ["2023-02-29 00:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-02-30 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-04-31 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-13-01 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-00-10 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-00 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15 24:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15 23:60", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15 23:59:60", ["yyyy-MM-dd HH:mm:ss"], SH, null],
  ["2023-06-15T10:00:00+24:00", ["yyyy-MM-ddTHH:mm:ssXXX"], SH, null],
  // must match whole: untrimmed, case-sensitive, exact widths
  [" 2023-06-15 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15 10:00 ", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15\t10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-6-15 10:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15 10:00:00", ["yyyy-MM-dd HH:mm"], SH, null],
  ["2023-06-15t10:00:00Z", ["yyyy-MM-ddTHH:mm:ssXXX"], SH, null],
  ["2023-06-15T10:00:00z", ["yyyy-MM-ddTHH:mm:ssXXX"], SH, null],
  ["2023-06-15T10:00:00+0800", ["yyyy-MM-ddTHH:mm:ssXXX"], SH, null],
  ["2023-06-15T10:00:00.12Z", ["yyyy-MM-ddTHH:mm:ss.SSSXXX"], SH, null],
  ["２０２３-06-15 10:00", ["yyyy-MM-dd HH:mm"], SH, null], // full-width digits are not digits
  ["2023/06/15 10:00", ["yyyy-MM-dd HH:mm"], SH, null], // the incident: a new format the profile does not know
  ["", ["yyyy-MM-dd HH:mm"], SH, null],
];

for (const [value, formats, zone, want] of cases) {
  test(`date ${JSON.stringify(value)} with ${formats.join(" | ")} in ${zone}`, () => {
    const r = parseWithFormats(value, fmt(...formats), zone);
    assert.equal(iso(r?.us), want);
  });
}

test("dates: a shape that names no instant falls through to the next format", () => {
  const r = parseWithFormats("13/01/2023", fmt("MM/dd/yyyy", "dd/MM/yyyy"), "UTC");
  assert.equal(iso(r?.us), "2023-01-13T00:00:00.000Z");
  assert.equal(r?.date, "2023-01-13");
});

test("dates: the local booking date is the date as written", () => {
  assert.equal(parseWithFormats("2023-06-15 00:30", fmt("yyyy-MM-dd HH:mm"), SH)?.date, "2023-06-15");
  assert.equal(parseIsoDateTime("2007-10-18T23:15:00-05:00", "UTC")?.date, "2007-10-18");
});

test("ISO 8601 (camt)", () => {
  assert.equal(iso(parseIsoDateTime("2016-04-10", "UTC")?.us), "2016-04-10T00:00:00.000Z");
  assert.equal(iso(parseIsoDateTime("2016-04-10", "Europe/Zurich")?.us), "2016-04-09T22:00:00.000Z");
  assert.equal(iso(parseIsoDateTime("2007-10-18T13:15:00+01:00", "UTC")?.us), "2007-10-18T12:15:00.000Z");
  assert.equal(iso(parseIsoDateTime("2024-11-30T23:00:00Z", SH)?.us), "2024-11-30T23:00:00.000Z");
  assert.equal(parseIsoDateTime("2025-07-23T00:00:00.000000000", "UTC")?.us, 1753228800000000n);
  assert.equal(parseIsoDateTime("2025-07-23T00:00:00.123456789Z", "UTC")?.us, 1753228800123456n);
  for (const bad of ["2016-02-30", "2016-4-10", "20160410", "2016-04-10T25:00:00", "2016-04-10 10:00:00", "2016-04-10T10:00", "", " 2016-04-10"]) {
    assert.equal(parseIsoDateTime(bad, "UTC"), null, bad);
  }
});

test("time zones are validated through Intl", () => {
  for (const z of ["Asia/Shanghai", "Europe/Berlin", "UTC", "America/New_York"]) assert.ok(isValidTimeZone(z), z);
  for (const z of ["Mars/Olympus", "", "+08:00x", 8, null]) assert.ok(!isValidTimeZone(z), String(z));
});
