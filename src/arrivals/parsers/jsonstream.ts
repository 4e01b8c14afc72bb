// JSON notices read as a stream: text pieces are tokenised as they come, only the entries (the
// elements of the array `fields.entries` selects) are built as values, one at a time, and each is
// handed over when complete. Memory is bounded by the largest entry, not the body, as long as the
// root fields a profile names ("$.header.account") come before the entries array; when one comes
// after it, entries wait for it (bounded only by the body). Numbers stay their source text.

import type { DocumentBuilder, StatementDraft } from "./builder.ts";
import { JsonNumber, MAX_DEPTH, readField, type JsonValue, type PathSegment } from "./jsonpath.ts";
import type { CompiledProfile } from "./profile.ts";
import { recordToEntry } from "./tabular.ts";

const MAX_TOKEN = 1024 * 1024;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const STRING_PREFIX = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*(?:\\(?:u[0-9a-fA-F]{0,3})?)?$/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const NUMBER_PREFIX = /-?(?:0|[1-9][0-9]*)?(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?$/y;

class Abort extends Error {}
export function isJsonAbort(e: unknown): boolean {
  return e instanceof Abort;
}

type Selector = string | number;

interface Frame {
  kind: "array" | "object";
  /** The value being built (inside an entry), or null when only walked through. */
  value: JsonValue[] | { [k: string]: JsonValue } | null;
  key: string | null;
  index: number;
  /** This container's own location matches the entries path so far. */
  onPath: boolean;
  /** Root field paths (indices into rootPaths) this container's location still matches. */
  rootCandidates: number[];
  isEntries: boolean;
}

function segmentMatches(s: PathSegment, selector: Selector): boolean {
  if (s.kind === "wildcard") return true;
  if (s.kind === "name") return selector === s.name;
  return selector === s.index;
}

/** Whether the streaming reader can evaluate these paths (negative indices need the array's length). */
export function streamable(p: CompiledProfile): boolean {
  const all = [p.entries ?? [], ...[...p.paths.values()].filter((x) => x.fromRoot).map((x) => x.segments)];
  return all.every((segs) => segs.every((s) => s.kind !== "index" || s.index >= 0));
}

export function jsonStreamParser(doc: DocumentBuilder, p: CompiledProfile) {
  const segments = p.entries!;
  const rootFields = [...p.paths].filter(([, v]) => v.fromRoot);
  const rootValues = new Map<string, string | null>();
  const frames: Frame[] = [];
  let buf = "";
  let i = 0;
  let state: "value" | "firstValue" | "after" | "key" | "firstKey" | "colon" | "done" = "value";
  let selected = 0;
  let statement: StatementDraft | null = null;
  let pending: JsonValue[] = [];

  const fail = (message: string): never => {
    doc.error("malformed", "body", message);
    throw new Abort(message);
  };
  const entriesError = (message: string): never => {
    doc.error("missing_field", "entries", message);
    throw new Abort(message);
  };

  const emit = (item: JsonValue): void => {
    const get = (field: string): string | null | undefined => {
      const path = p.paths.get(field);
      if (path === undefined) return undefined;
      if (path.fromRoot) return rootValues.get(field) ?? null;
      return readField(item, item, path);
    };
    const entry = recordToEntry(get, p);
    const isObject = typeof item === "object" && item !== null && !Array.isArray(item) && !(item instanceof JsonNumber);
    doc.addEntry(isObject ? entry : { ...entry, quarantine: { code: "malformed", field: "entries", value: "an entry is not an object" } }, statement!);
    statement!.account ??= entry.account;
    statement!.currency ??= entry.currency;
  };
  const flush = (force: boolean): void => {
    if (pending.length === 0) return;
    if (!force && rootValues.size < rootFields.length) return;
    for (const item of pending) emit(item);
    pending = [];
  };

  /** Where the next value goes, and what it is. */
  const place = (value: JsonValue | null, container: Frame | null): void => {
    const parent = frames[frames.length - 1];
    const depth = frames.length;
    const selector: Selector | null = parent === undefined ? null : parent.kind === "array" ? parent.index : parent.key;
    const onPath =
      parent === undefined ? true : parent.onPath && depth <= segments.length && segmentMatches(segments[depth - 1]!, selector!);
    let rootCandidates: number[] = [];
    if (rootFields.length > 0) {
      const from = parent === undefined ? rootFields.map((_, k) => k) : parent.rootCandidates;
      rootCandidates = from.filter((k) => {
        const segs = rootFields[k]![1].segments;
        return parent === undefined || (depth <= segs.length && segmentMatches(segs[depth - 1]!, selector!));
      });
    }
    if (onPath && depth === segments.length) {
      selected += 1;
      if (selected > 1) entriesError(`${p.profile.fields?.["entries"]} selects more than one node, not one array`);
      if (container === null || container.kind !== "array") entriesError(`${p.profile.fields?.["entries"]} selects a non-array, not one array`);
      container!.isEntries = true;
      statement = doc.startStatement();
    }
    // Inside an entry (the entries array is the parent, or an ancestor is being built), build it.
    const building = parent !== undefined && (parent.isEntries || parent.value !== null);
    if (container !== null) {
      container.onPath = onPath;
      container.rootCandidates = rootCandidates;
      if (building) container.value = container.kind === "array" ? [] : {};
      if (frames.length >= MAX_DEPTH) fail(`JSON nested deeper than ${MAX_DEPTH}`);
      frames.push(container);
      return;
    }
    for (const k of rootCandidates) {
      if (rootFields[k]![1].segments.length === depth && !rootValues.has(rootFields[k]![0])) {
        rootValues.set(rootFields[k]![0], typeof value === "string" ? value : value instanceof JsonNumber ? value.text : typeof value === "boolean" ? String(value) : null);
      }
    }
    if (building) attach(parent!, value!);
    afterValue();
  };

  const attach = (parent: Frame, value: JsonValue): void => {
    if (parent.isEntries) {
      pending.push(value);
      flush(false);
    } else if (parent.value !== null) {
      if (Array.isArray(parent.value)) parent.value.push(value);
      else Object.defineProperty(parent.value, parent.key!, { value, enumerable: true, writable: true, configurable: true });
    }
  };

  const afterValue = (): void => {
    const parent = frames[frames.length - 1];
    if (parent === undefined) state = "done";
    else state = "after";
  };

  const closeContainer = (): void => {
    const frame = frames.pop()!;
    if (frame.isEntries) flush(false);
    const parent = frames[frames.length - 1];
    if (parent !== undefined && (parent.isEntries || parent.value !== null) && frame.value !== null) attach(parent, frame.value);
    afterValue();
  };

  const pump = (final: boolean): void => {
    for (;;) {
      while (i < buf.length) {
        const c = buf.charCodeAt(i);
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i += 1;
        else break;
      }
      if (i >= buf.length) return;
      const c = buf[i]!;
      switch (state) {
        case "done":
          return fail("trailing characters after the JSON value");
        case "colon":
          if (c !== ":") fail("expected ':'");
          i += 1;
          state = "value";
          continue;
        case "after": {
          const top = frames[frames.length - 1]!;
          if (c === ",") {
            i += 1;
            if (top.kind === "array") {
              top.index += 1;
              state = "value";
            } else state = "key";
            continue;
          }
          if ((c === "]" && top.kind === "array") || (c === "}" && top.kind === "object")) {
            i += 1;
            closeContainer();
            continue;
          }
          return fail(`expected ',' or '${top.kind === "array" ? "]" : "}"}'`);
        }
        case "firstKey":
        case "key": {
          if (c === "}" && state === "firstKey") {
            i += 1;
            closeContainer();
            continue;
          }
          if (c !== '"') fail("expected a key");
          const key = readString(final);
          if (key === null) return;
          frames[frames.length - 1]!.key = key;
          state = "colon";
          continue;
        }
        case "firstValue":
        case "value": {
          if (c === "]" && state === "firstValue") {
            i += 1;
            closeContainer();
            continue;
          }
          if (c === "[" || c === "{") {
            i += 1;
            place(null, { kind: c === "[" ? "array" : "object", value: null, key: null, index: 0, onPath: false, rootCandidates: [], isEntries: false });
            state = c === "[" ? "firstValue" : "firstKey";
            continue;
          }
          if (c === '"') {
            const text = readString(final);
            if (text === null) return;
            place(text, null);
            continue;
          }
          if (c === "t" || c === "f" || c === "n") {
            const word = c === "t" ? "true" : c === "f" ? "false" : "null";
            if (buf.startsWith(word, i)) {
              i += word.length;
              place(word === "true" ? true : word === "false" ? false : null, null);
              continue;
            }
            if (!final && buf.length - i < word.length && word.startsWith(buf.slice(i))) return;
            return fail("unexpected literal");
          }
          if (!final) {
            // Everything left is (the start of) a number: it may go on in the next piece.
            NUMBER_PREFIX.lastIndex = i;
            if (NUMBER_PREFIX.test(buf)) return;
          }
          NUMBER.lastIndex = i;
          const m = NUMBER.exec(buf);
          if (m === null || m[0].length === 0) return fail("unexpected character");
          i += m[0].length;
          place(new JsonNumber(m[0]), null);
          continue;
        }
      }
    }
  };

  const readString = (final: boolean): string | null => {
    STRING.lastIndex = i;
    const m = STRING.exec(buf);
    if (m !== null) {
      i += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    STRING_PREFIX.lastIndex = i;
    if (!final && STRING_PREFIX.test(buf)) return null; // the rest comes in the next piece
    return fail(final ? "unterminated string" : "invalid string");
  };

  return {
    write(text: string) {
      buf = i > 0 ? buf.slice(i) + text : buf + text;
      i = 0;
      pump(false);
      if (buf.length - i > MAX_TOKEN) fail("a JSON token longer than 1 MiB");
    },
    close() {
      pump(true);
      if (state !== "done") fail(frames.length > 0 || buf.trim() !== "" ? "the JSON ends early (truncated?)" : "empty body");
      if (selected === 0) entriesError(`${p.profile.fields?.["entries"]} selects nothing, not one array`);
      flush(true);
    },
  };
}
