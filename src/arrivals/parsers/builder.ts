// Collects what a parser reads into a ParsedDocument, numbering entries across the whole
// document. With `onEntry` the entries are handed over one by one and not kept, so a very large
// file is parsed in memory bounded by the largest entry, not by the file.

import type {
  NoticeFormat,
  ParsedBalance,
  ParsedDocument,
  ParsedEntry,
  ParsedStatement,
  QuarantineReason,
} from "./types.ts";

export interface ParseOptions {
  /** IANA zone for local dates (camt without offset, MT940 dates); default the profile's, else UTC. */
  readonly timezone?: string;
  /** Receives every entry as soon as it is complete; the returned statements then hold no entries. */
  readonly onEntry?: (entry: ParsedEntry, statementIndex: number) => void;
}

export type EntryDraft = Omit<ParsedEntry, "position">;

export interface StatementDraft {
  account: string | null;
  currency: string | null;
  opening: ParsedBalance | null;
  closing: ParsedBalance | null;
  fromDate: string | null;
  toDate: string | null;
  entries: ParsedEntry[];
  entryCount: number;
  /** Its index in the document (not part of the result). */
  index?: number;
}

export function emptyStatement(): StatementDraft {
  return {
    account: null,
    currency: null,
    opening: null,
    closing: null,
    fromDate: null,
    toDate: null,
    entries: [],
    entryCount: 0,
  };
}

export class DocumentBuilder {
  readonly statements: StatementDraft[] = [];
  readonly errors: QuarantineReason[] = [];
  messageType: string | null = null;
  private position = 0;

  constructor(
    public format: NoticeFormat,
    private readonly onEntry?: (entry: ParsedEntry, statementIndex: number) => void,
  ) {}

  startStatement(): StatementDraft {
    const s = emptyStatement();
    s.index = this.statements.length;
    this.statements.push(s);
    return s;
  }

  current(): StatementDraft {
    return this.statements[this.statements.length - 1] ?? this.startStatement();
  }

  addEntry(draft: EntryDraft, statement: StatementDraft = this.current()): void {
    const entry: ParsedEntry = { position: this.position, ...draft };
    this.position += 1;
    statement.entryCount += 1;
    if (this.onEntry !== undefined) this.onEntry(entry, statement.index ?? this.statements.indexOf(statement));
    else statement.entries.push(entry);
  }

  /** Forgets what was read (a body in the wrong encoding is wrong as a whole). Entries already given to onEntry stay given. */
  discard(): void {
    this.statements.length = 0;
  }

  error(code: QuarantineReason["code"], field: string, value?: string): void {
    // A hostile body could produce endless errors; a handful says enough.
    if (this.errors.length >= 20) return;
    this.errors.push(value === undefined ? { code, field } : { code, field, value: value.slice(0, 200) });
  }

  build(): ParsedDocument {
    const statements: ParsedStatement[] = this.statements.map(({ index: _index, ...s }) => s);
    return { format: this.format, messageType: this.messageType, statements, errors: this.errors };
  }
}

/** The first reason wins; later checks only fill in values. */
export function firstReason(...reasons: (QuarantineReason | null)[]): QuarantineReason | null {
  for (const r of reasons) if (r !== null) return r;
  return null;
}

const interned = new Map<string, string>();
/** One shared copy of a short, often repeated value (currency, status, date), so a large document's entries do not each hold their own. */
export function intern(s: string): string;
export function intern(s: string | null): string | null;
export function intern(s: string | null): string | null {
  if (s === null || s.length > 32) return s;
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size >= 4096) interned.clear();
  interned.set(s, s);
  return s;
}
