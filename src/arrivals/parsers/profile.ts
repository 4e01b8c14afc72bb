// Bank profiles (ESCROW.md "Bank profiles"): validation with the field that is wrong, and the
// compiled form the JSON/CSV/MT940 readers use.

import { compileDateFormat, isValidTimeZone, type CompiledFormat } from "./dates.ts";
import { exponentOf } from "./decimal.ts";
import { compileFieldPath, compileJsonPath, type PathSegment } from "./jsonpath.ts";
import type { BankProfile } from "./types.ts";

export const PROFILE_FORMATS = ["camt054", "mt940", "json", "csv"] as const;
const TOP_LEVEL = new Set([
  "format",
  "fields",
  "amount_unit",
  "date_formats",
  "timezone",
  "mt940_reference",
  "encoding",
  "currency",
  "csv_delimiter",
]);
/** Fields a JSON/CSV profile may name; the required ones must be named. */
export const FIELD_NAMES = [
  "entries",
  "account",
  "amount",
  "currency",
  "direction",
  "credit_value",
  "debit_value",
  "bank_reference",
  "payer_name",
  "payer_account",
  "remittance",
  "booked_at",
] as const;
const REQUIRED_FIELDS = ["amount", "bank_reference", "booked_at"] as const;
/** Values, not paths or columns. */
const VALUE_FIELDS = new Set(["credit_value", "debit_value"]);

export type ProfileResult = { profile: BankProfile } | { error: string; field: string };

function fail(field: string, error: string): { error: string; field: string } {
  return { error, field };
}

export function compileReferenceRule(source: string): RegExp | { error: string } {
  if (typeof source !== "string" || source.length === 0 || source.length > 500) {
    return { error: "must be a regular expression of 1 to 500 characters" };
  }
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    return { error: `is not a valid regular expression: ${(e as Error).message}` };
  }
  const groups = (new RegExp(`${source}|`).exec("")?.length ?? 1) - 1;
  if (groups < 1) return { error: "needs a capture group: its first group is the bank reference" };
  return re;
}

export function validateProfile(input: unknown): ProfileResult {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return fail("", "a profile is a JSON object");
  const p = input as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!TOP_LEVEL.has(key)) return fail(key, `unknown profile field ${JSON.stringify(key)}`);
  }
  const format = p["format"];
  if (typeof format !== "string" || !(PROFILE_FORMATS as readonly string[]).includes(format)) {
    return fail("format", `must be one of ${PROFILE_FORMATS.join(", ")}`);
  }
  if (p["encoding"] !== undefined && p["encoding"] !== "utf-8" && p["encoding"] !== "gb18030") {
    return fail("encoding", "must be utf-8 or gb18030");
  }
  if (p["timezone"] !== undefined && !isValidTimeZone(p["timezone"])) {
    return fail("timezone", "must be an IANA time zone name (e.g. Asia/Shanghai)");
  }
  if (p["mt940_reference"] !== undefined) {
    if (format !== "mt940") return fail("mt940_reference", "only applies to format mt940");
    const r = compileReferenceRule(p["mt940_reference"] as string);
    if ("error" in r) return fail("mt940_reference", r.error);
  }
  if (p["currency"] !== undefined && (typeof p["currency"] !== "string" || exponentOf(p["currency"]) === null)) {
    return fail("currency", "must be an ISO 4217 currency code");
  }
  const tabular = format === "json" || format === "csv";
  if (!tabular) {
    for (const key of ["fields", "amount_unit", "date_formats", "currency", "csv_delimiter"]) {
      if (p[key] !== undefined) return fail(key, `only applies to formats json and csv`);
    }
    return { profile: input as BankProfile };
  }
  if (p["csv_delimiter"] !== undefined) {
    if (format !== "csv") return fail("csv_delimiter", "only applies to format csv");
    const d = p["csv_delimiter"];
    if (typeof d !== "string" || d.length !== 1 || d === '"' || d === "\r" || d === "\n") {
      return fail("csv_delimiter", "must be one character other than a quote or a line break");
    }
  }
  const amountUnit = p["amount_unit"];
  if (amountUnit !== "major" && amountUnit !== "minor") return fail("amount_unit", "must be major or minor");

  const fields = p["fields"];
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return fail("fields", "must be an object");
  const f = fields as Record<string, unknown>;
  for (const [key, value] of Object.entries(f)) {
    if (!(FIELD_NAMES as readonly string[]).includes(key)) return fail(`fields.${key}`, `unknown field (known: ${FIELD_NAMES.join(", ")})`);
    if (typeof value !== "string" || value.length === 0 || value.length > 200) return fail(`fields.${key}`, "must be a non-empty string");
  }
  for (const key of REQUIRED_FIELDS) {
    if (f[key] === undefined) return fail(`fields.${key}`, "is required");
  }
  if (f["direction"] !== undefined && f["credit_value"] === undefined) {
    return fail("fields.credit_value", "is required with fields.direction");
  }
  if (f["direction"] === undefined && (f["credit_value"] !== undefined || f["debit_value"] !== undefined)) {
    return fail("fields.direction", "is required with credit_value/debit_value");
  }
  if (f["currency"] === undefined && p["currency"] === undefined) return fail("fields.currency", "is required unless the profile sets currency");
  if (format === "json") {
    if (f["entries"] === undefined) return fail("fields.entries", "is required for json: a JSONPath selecting the array of entries");
    const c = compileJsonPath(f["entries"] as string);
    if ("error" in c) return fail("fields.entries", c.error);
    for (const [key, value] of Object.entries(f)) {
      if (key === "entries" || VALUE_FIELDS.has(key)) continue;
      const path = compileFieldPath(value as string);
      if ("error" in path) return fail(`fields.${key}`, path.error);
    }
  } else if (f["entries"] !== undefined) {
    return fail("fields.entries", "only applies to format json (CSV rows are the entries)");
  }

  const formats = p["date_formats"];
  if (!Array.isArray(formats) || formats.length === 0 || formats.length > 20) {
    return fail("date_formats", "must be a list of 1 to 20 date formats");
  }
  let needsZone = false;
  for (const [i, fmt] of formats.entries()) {
    const c = compileDateFormat(fmt as string);
    if ("error" in c) return fail(`date_formats[${i}]`, `${JSON.stringify(fmt)} ${c.error}`);
    if (!c.hasOffset) needsZone = true;
  }
  if (needsZone && p["timezone"] === undefined) return fail("timezone", "is required when a date format has no XXX offset");
  return { profile: input as BankProfile };
}

export interface CompiledProfile {
  readonly profile: BankProfile;
  readonly dateFormats: readonly CompiledFormat[];
  readonly timezone: string;
  readonly entries: PathSegment[] | null;
  readonly paths: ReadonlyMap<string, { fromRoot: boolean; segments: PathSegment[] }>;
  readonly reference: RegExp | null;
}

/** Compiles a validated profile; throws on an invalid one (validate first). */
export function compileProfile(profile: BankProfile): CompiledProfile {
  const checked = validateProfile(profile);
  if ("error" in checked) throw new TypeError(`invalid bank profile: ${checked.field} ${checked.error}`);
  const dateFormats = (profile.date_formats ?? []).map((f) => compileDateFormat(f) as CompiledFormat);
  const paths = new Map<string, { fromRoot: boolean; segments: PathSegment[] }>();
  let entries: PathSegment[] | null = null;
  if (profile.format === "json") {
    entries = compileJsonPath(profile.fields!["entries"]!) as PathSegment[];
    for (const [key, value] of Object.entries(profile.fields ?? {})) {
      if (key === "entries" || VALUE_FIELDS.has(key)) continue;
      paths.set(key, compileFieldPath(value) as { fromRoot: boolean; segments: PathSegment[] });
    }
  }
  const reference = profile.mt940_reference === undefined ? null : (compileReferenceRule(profile.mt940_reference) as RegExp);
  return { profile, dateFormats, timezone: profile.timezone ?? "UTC", entries, paths, reference };
}
