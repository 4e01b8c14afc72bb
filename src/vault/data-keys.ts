// Data keys: random keys per purpose and version, stored wrapped by the key provider in
// `vault_data_keys` and kept unwrapped in memory. `data` keys encrypt values (a new version on
// each rotation); `index` keys compute blind indexes (one per index, never rotated: a new index
// key would need every index recomputed, and the index reveals no value).
import { randomBytes } from "node:crypto";
import type { Database } from "../db/database.ts";
import { VaultError } from "./errors.ts";
import type { KeyProvider } from "./key-provider.ts";
import { suite, type SuiteId } from "./suites.ts";

export type KeyKind = "data" | "index";

export interface DataKeyRow {
  readonly kind: KeyKind;
  readonly purpose: string;
  readonly version: number;
  readonly suite: SuiteId;
  readonly provider: string;
  readonly wrappedKey: string;
  readonly createdAt: bigint;
}

/** Where wrapped keys live: the database, or memory (unit tests, benchmarks). */
export interface DataKeyStore {
  load(): Promise<DataKeyRow[]>;
  /** Inserts unless (kind, purpose, version) exists; false when another process won. */
  insert(row: DataKeyRow): Promise<boolean>;
}

export class DatabaseDataKeyStore implements DataKeyStore {
  constructor(private readonly db: Database) {}

  async load(): Promise<DataKeyRow[]> {
    // The writer connection: a key another process just created must be visible at once.
    const rows = await this.db.kysely.selectFrom("vault_data_keys").selectAll().execute();
    return rows.map((r) => ({
      kind: r.kind as KeyKind,
      purpose: r.purpose,
      version: Number(r.version),
      suite: r.suite as SuiteId,
      provider: r.provider,
      wrappedKey: r.wrapped_key,
      createdAt: BigInt(r.created_at),
    }));
  }

  async insert(row: DataKeyRow): Promise<boolean> {
    const r = await this.db.kysely
      .insertInto("vault_data_keys")
      .values({ kind: row.kind, purpose: row.purpose, version: row.version, suite: row.suite, provider: row.provider, wrapped_key: row.wrappedKey, created_at: row.createdAt })
      .onConflict((oc) => oc.columns(["kind", "purpose", "version"]).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
}

export class MemoryDataKeyStore implements DataKeyStore {
  readonly rows: DataKeyRow[] = [];
  async load(): Promise<DataKeyRow[]> {
    return [...this.rows];
  }
  async insert(row: DataKeyRow): Promise<boolean> {
    if (this.rows.some((r) => r.kind === row.kind && r.purpose === row.purpose && r.version === row.version)) return false;
    this.rows.push(row);
    return true;
  }
}

export interface UnwrappedKey {
  readonly kind: KeyKind;
  readonly purpose: string;
  readonly version: number;
  readonly suite: SuiteId;
  readonly key: Buffer;
}

const contextOf = (r: { kind: KeyKind; purpose: string; version: number; suite: SuiteId }) => `tally-vault:${r.kind}:${r.purpose}:${r.version}:${r.suite}`;
const nameOf = (kind: KeyKind, purpose: string, version: number) => `${kind}:${purpose}:${version}`;

/** The unwrapped keys of this process, refreshed from the store. */
export class KeyRing {
  private readonly keys = new Map<string, UnwrappedKey>();
  private readonly current = new Map<string, number>();

  constructor(
    private readonly store: DataKeyStore,
    readonly provider: KeyProvider,
    /** The suite new keys are created in. */
    readonly suiteId: SuiteId,
    private readonly nowUs: () => bigint = () => BigInt(Date.now()) * 1000n,
  ) {}

  /** Reads every key row and unwraps the ones not yet held. */
  async refresh(): Promise<void> {
    for (const row of await this.store.load()) {
      const name = nameOf(row.kind, row.purpose, row.version);
      if (this.keys.has(name)) continue;
      if (row.provider !== this.provider.id) throw new VaultError(`data key ${name} is wrapped by provider "${row.provider}", not "${this.provider.id}"`);
      const key = await this.provider.unwrap(row.wrappedKey, contextOf(row));
      if (key.length !== (row.kind === "index" ? 32 : suite(row.suite).keyBytes)) throw new VaultError(`data key ${name} has the wrong length`);
      this.keys.set(name, { kind: row.kind, purpose: row.purpose, version: row.version, suite: row.suite, key });
      const currentName = `${row.kind}:${row.purpose}`;
      if ((this.current.get(currentName) ?? 0) < row.version) this.current.set(currentName, row.version);
    }
  }

  get(kind: KeyKind, purpose: string, version: number): UnwrappedKey | undefined {
    return this.keys.get(nameOf(kind, purpose, version));
  }

  /** The newest version of a purpose's key, or undefined when it has none yet. */
  currentKey(kind: KeyKind, purpose: string): UnwrappedKey | undefined {
    const version = this.current.get(`${kind}:${purpose}`);
    return version === undefined ? undefined : this.get(kind, purpose, version);
  }

  versions(kind: KeyKind, purpose: string): number[] {
    return [...this.keys.values()].filter((k) => k.kind === kind && k.purpose === purpose).map((k) => k.version).sort((a, b) => a - b);
  }

  /** Makes sure a purpose has a key (creating version 1 when it has none). */
  async ensure(kind: KeyKind, purpose: string): Promise<UnwrappedKey> {
    const existing = this.currentKey(kind, purpose);
    if (existing) return existing;
    await this.refresh();
    return this.currentKey(kind, purpose) ?? (await this.create(kind, purpose, 1));
  }

  /** A new version of a purpose's data key; new values are encrypted with it from now on. */
  async rotate(purpose: string): Promise<number> {
    for (let attempt = 0; attempt < 10; attempt++) {
      await this.refresh();
      const next = (this.current.get(`data:${purpose}`) ?? 0) + 1;
      const created = await this.tryCreate("data", purpose, next);
      if (created) return next;
    }
    throw new VaultError(`could not create a new data key version for ${purpose}: too many concurrent rotations`);
  }

  private async create(kind: KeyKind, purpose: string, version: number): Promise<UnwrappedKey> {
    await this.tryCreate(kind, purpose, version);
    await this.refresh();
    const key = this.get(kind, purpose, version);
    if (!key) throw new VaultError(`data key ${nameOf(kind, purpose, version)} was not stored`);
    return key;
  }

  private async tryCreate(kind: KeyKind, purpose: string, version: number): Promise<boolean> {
    const suiteId = this.suiteId;
    let key: Buffer;
    // A blind index written by the first cut (HMAC-SHA256 under an HKDF-derived key) keeps
    // matching when the provider can still derive that key and the suite is the same.
    const legacy = kind === "index" && version === 1 && suiteId === "aes-256-gcm" ? this.provider.legacyKey?.(`idx:${purpose}:1`) : undefined;
    if (legacy) key = legacy;
    else key = randomBytes(kind === "index" ? 32 : suite(suiteId).keyBytes);
    const row = { kind, purpose, version, suite: suiteId, provider: this.provider.id, createdAt: this.nowUs() };
    const wrappedKey = await this.provider.wrap(key, contextOf(row));
    const inserted = await this.store.insert({ ...row, wrappedKey });
    if (inserted) {
      this.keys.set(nameOf(kind, purpose, version), { kind, purpose, version, suite: suiteId, key });
      if ((this.current.get(`${kind}:${purpose}`) ?? 0) < version) this.current.set(`${kind}:${purpose}`, version);
    }
    return inserted;
  }
}
