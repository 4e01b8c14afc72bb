// Field types of personal data: each normalises and validates a raw value (a 400
// validation_failed naming the field when it is not one), masks it for responses, and derives the
// attributes analytics may keep instead of the value (a birth date's year, a card's BIN).
import { ApiError } from "../kernel/errors.ts";

export type FieldTypeName = "resident_id" | "bank_card" | "bank_account" | "mobile" | "person_name" | "email";

export interface FieldType {
  readonly name: FieldTypeName;
  /** The canonical form stored and indexed; throws ApiError("validation_failed", …, param). */
  normalise(raw: string, param: string): string;
  mask(value: string): string;
  derive(value: string): Readonly<Record<string, string>>;
}

const invalid = (param: string, message: string) => new ApiError("validation_failed", `${param} ${message}`, param);
const VALUE_LENGTH_MAX = 256;

function text(raw: unknown, param: string): string {
  if (typeof raw !== "string") throw invalid(param, "must be a string");
  if (raw.length > VALUE_LENGTH_MAX) throw invalid(param, `must be at most ${VALUE_LENGTH_MAX} characters`);
  return raw.normalize("NFC");
}

// GB 11643-1999: 17 digits (6 region, 8 birth date, 3 sequence; the last odd for men) and a check
// character: Σ(digit × 2^(17−i) mod 11) gives the index into "10X98765432".
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] as const;
const ID_CHECK = "10X98765432";

export function residentIdCheckCharacter(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11]!;
}

function validDate(yyyymmdd: string): boolean {
  const y = Number(yyyymmdd.slice(0, 4));
  const m = Number(yyyymmdd.slice(4, 6));
  const d = Number(yyyymmdd.slice(6, 8));
  if (y < 1800 || m < 1 || m > 12 || d < 1) return false;
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

export const residentId: FieldType = {
  name: "resident_id",
  normalise(raw, param) {
    const v = text(raw, param).replace(/\s+/g, "").toUpperCase();
    if (!/^[1-9]\d{16}[\dX]$/.test(v)) throw invalid(param, "must be an 18-character resident ID number (17 digits and a check digit or X)");
    if (!validDate(v.slice(6, 14))) throw invalid(param, "has no valid birth date");
    if (residentIdCheckCharacter(v.slice(0, 17)) !== v[17]) throw invalid(param, "has a wrong check digit");
    return v;
  },
  mask: (v) => `${v.slice(0, 6)}${"*".repeat(8)}${v.slice(-4)}`,
  derive: (v) => ({
    region_code: v.slice(0, 6),
    birth_date: `${v.slice(6, 10)}-${v.slice(10, 12)}-${v.slice(12, 14)}`,
    sex: Number(v[16]) % 2 === 1 ? "male" : "female",
  }),
};

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** `6222021234567893445` → `6222 **** **** 3445`; short numbers keep only their last four. */
export function maskBankAccountNumber(number: string): string {
  const digits = number.replace(/\s+/g, "");
  if (digits.length <= 8) return `${"*".repeat(Math.max(digits.length - 4, 0))}${digits.slice(-4)}`;
  return `${digits.slice(0, 4)} **** **** ${digits.slice(-4)}`;
}

export const bankCard: FieldType = {
  name: "bank_card",
  normalise(raw, param) {
    const v = text(raw, param).replace(/[\s-]+/g, "");
    if (!/^\d{12,19}$/.test(v)) throw invalid(param, "must be a bank card number of 12 to 19 digits");
    if (!luhnValid(v)) throw invalid(param, "fails the card number check digit (Luhn)");
    return v;
  },
  mask: maskBankAccountNumber,
  derive: (v) => ({ bin: v.slice(0, 6), last4: v.slice(-4) }),
};

/** A bank account (a card or a corporate account, which has no check digit): 8 to 30 digits. */
export const bankAccount: FieldType = {
  name: "bank_account",
  normalise(raw, param) {
    const v = text(raw, param).replace(/\s+/g, "");
    if (!/^\d{8,30}$/.test(v)) throw invalid(param, "must be 8 to 30 digits");
    return v;
  },
  mask: maskBankAccountNumber,
  derive: (v) => ({ bin: v.slice(0, 6), last4: v.slice(-4) }),
};

export const mobile: FieldType = {
  name: "mobile",
  normalise(raw, param) {
    let v = text(raw, param).replace(/[\s-]+/g, "");
    if (v.startsWith("+86")) v = v.slice(3);
    else if (v.startsWith("0086")) v = v.slice(4);
    if (!/^1[3-9]\d{9}$/.test(v)) throw invalid(param, "must be a mainland China mobile number (11 digits starting 13-19)");
    return v;
  },
  mask: (v) => `${v.slice(0, 3)}****${v.slice(-4)}`,
  derive: (v) => ({ prefix: v.slice(0, 3) }),
};

/** `张三` → `张*`; `John Smith` → `J*** Smith`. */
export function maskPersonName(name: string): string {
  const trimmed = name.trim();
  const words = trimmed.split(/\s+/);
  if (words.length > 1) return `${[...words[0]!][0]}${"*".repeat(3)} ${words.slice(1).join(" ")}`;
  const chars = [...trimmed];
  if (chars.length <= 1) return "*";
  // 张三 → 张*; 王小明 → 王*明 (ESCROW.md): the first and, from three characters on, the last stay.
  if (chars.length === 2) return `${chars[0]}*`;
  return `${chars[0]}${"*".repeat(chars.length - 2)}${chars.at(-1)}`;
}

const NAME_LENGTH_MAX = 100;

export const personName: FieldType = {
  name: "person_name",
  normalise(raw, param) {
    const v = text(raw, param).trim().replace(/\s+/g, " ");
    if (v.length === 0) throw invalid(param, "must not be empty");
    if ([...v].length > NAME_LENGTH_MAX) throw invalid(param, `must be at most ${NAME_LENGTH_MAX} characters`);
    // Digits are allowed: an account name may be a company's (“58同城”), not only a person's.
    if (/[\p{Cc}\p{Cf}<>]/u.test(v)) throw invalid(param, "must be a name (no control characters or markup)");
    return v;
  },
  mask: maskPersonName,
  derive: () => ({}),
};

export const email: FieldType = {
  name: "email",
  normalise(raw, param) {
    const v = text(raw, param).trim();
    const at = v.lastIndexOf("@");
    const local = v.slice(0, at);
    const domain = v.slice(at + 1).toLowerCase();
    if (at < 1 || local.length > 64 || !/^[^\s@"<>()[\]\\,;:]+$/.test(local) || !/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(domain)) {
      throw invalid(param, "must be an email address");
    }
    return `${local}@${domain}`;
  },
  mask: (v) => {
    const at = v.lastIndexOf("@");
    return `${[...v.slice(0, at)][0]}***${v.slice(at)}`;
  },
  derive: (v) => ({ domain: v.slice(v.lastIndexOf("@") + 1) }),
};

export const FIELD_TYPES: Readonly<Record<FieldTypeName, FieldType>> = {
  resident_id: residentId,
  bank_card: bankCard,
  bank_account: bankAccount,
  mobile,
  person_name: personName,
  email,
};
