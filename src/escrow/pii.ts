// Masked forms of the personal data on agreements (the clear values live only in the vault's
// ciphertext). Name matching goes through a blind index of the normalised name.
import { maskBankAccount, maskPersonName } from "../vault/vault.ts";
import type { PayeeDetails, PayerDetails } from "./model.ts";

/** `11010519491231002X` → `110105********002X` */
export function maskIdNumber(id: string): string {
  return id.length <= 10 ? "*".repeat(id.length) : `${id.slice(0, 6)}${"*".repeat(id.length - 10)}${id.slice(-4)}`;
}

/** `13812345678` → `138****5678` */
export function maskPhone(phone: string): string {
  return phone.length < 7 ? "*".repeat(phone.length) : `${phone.slice(0, 3)}${"*".repeat(phone.length - 7)}${phone.slice(-4)}`;
}

/** Names compare without spaces and case (a bank may write `WANG XIAOMING` or `王 小明`). */
export function normaliseName(name: string): string {
  return name.normalize("NFKC").replace(/\s+/g, "").toLowerCase();
}

export function maskPayer(p: PayerDetails): Record<string, string> {
  return {
    name: maskPersonName(p.name),
    ...(p.id_number ? { id_number: maskIdNumber(p.id_number) } : {}),
    ...(p.phone ? { phone: maskPhone(p.phone) } : {}),
  };
}

export function maskPayee(p: PayeeDetails): Record<string, string> {
  return {
    name: maskPersonName(p.name),
    bank_account_number: maskBankAccount(p.bank_account_number),
    ...(p.account_name ? { account_name: maskPersonName(p.account_name) } : {}),
  };
}
