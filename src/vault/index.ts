// The vault module's public surface: field-level envelope encryption, blind indexes, field types
// with masking and derived attributes, reveal auditing, key rotation and coverage (docs/vault.md).
import type { Database } from "../db/database.ts";
import { DatabaseDataKeyStore } from "./data-keys.ts";
import { LocalKeyProvider } from "./key-provider.ts";
import { registeredIndexes, registeredPurposes } from "./registry.ts";
import { SUITE_OF_NAME, type SuiteName } from "./suites.ts";
import { Vault } from "./vault.ts";

export { Vault, VaultError, encryptLegacy, blindIndexLegacy, parseCiphertext, looksEncrypted, normaliseForIndex, maskBankAccount, maskPersonName } from "./vault.ts";
export { LocalKeyProvider, loadOrCreateMasterKey, type KeyProvider } from "./key-provider.ts";
export { KeyRing, DatabaseDataKeyStore, MemoryDataKeyStore, type DataKeyStore } from "./data-keys.ts";
export { SUITE_OF_NAME, suite, type SuiteId, type SuiteName } from "./suites.ts";
export { FIELD_TYPES, bankAccount, bankCard, email, mobile, personName, residentId, type FieldType, type FieldTypeName } from "./fields.ts";
export { SENSITIVE_COLUMNS, columnName, registeredIndexes, registeredPurposes, type SensitiveColumn } from "./registry.ts";
export { AuditLog, type AuditEntry, type VerifyResult } from "./audit.ts";
export { Reencryptor, type ReencryptBatch } from "./reencrypt.ts";
export { coverageReport, formatCoverage, type CoverageReport } from "./coverage.ts";
export { registerVaultRoutes, type Revealer } from "./routes.ts";

/** The vault of a Tally process: keys in the database, wrapped by the local key file's master key. */
export async function openVault(db: Database, settings: { keyFile: string; suite: SuiteName }): Promise<Vault> {
  const suiteId = SUITE_OF_NAME[settings.suite];
  return Vault.open({
    store: new DatabaseDataKeyStore(db),
    provider: LocalKeyProvider.fromFile(settings.keyFile, suiteId),
    suite: suiteId,
    purposes: registeredPurposes(),
    indexes: registeredIndexes(),
  });
}
