// A JSON reader that keeps numbers as their source text (so "1234.50" and 1234.50 both stay exact
// decimals; no float ever exists), with an explicit stack (deep nesting cannot overflow the call
// stack; it is refused past MAX_DEPTH), and the RFC 9535 JSONPath subset banks use.

export const MAX_DEPTH = 128;

/** A JSON number, as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

export class JsonError extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING_RUN = /[^"\\\u0000-\u001f]*/y;

/** Parses JSON text strictly (RFC 8259); throws JsonError with the offset of the problem. */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const n = text.length;
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i += 1;
      else break;
    }
  };
  const fail = (what: string): never => {
    throw new JsonError(`${what} at offset ${i}`);
  };
  const readString = (): string => {
    i += 1; // opening quote
    let out = "";
    for (;;) {
      STRING_RUN.lastIndex = i;
      STRING_RUN.exec(text);
      out += text.slice(i, STRING_RUN.lastIndex);
      i = STRING_RUN.lastIndex;
      if (i >= n) fail("unterminated string");
      const c = text[i];
      if (c === '"') {
        i += 1;
        return out;
      }
      if (c !== "\\") fail("control character in string");
      const e = text[i + 1];
      i += 2;
      if (e === "u") {
        const hex = text.slice(i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
      } else {
        const map: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        const v = e === undefined ? undefined : map[e];
        if (v === undefined) fail("bad escape");
        out += v;
      }
    }
  };
  const readScalar = (): JsonValue => {
    const c = text[i];
    if (c === '"') return readString();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null || m[0].length === 0) fail("unexpected character");
    i += m![0].length;
    return new JsonNumber(m![0]);
  };

  type Frame = { kind: "array"; value: JsonValue[] } | { kind: "object"; value: { [k: string]: JsonValue }; key: string | null };
  const stack: Frame[] = [];
  let result: JsonValue | undefined;
  const put = (v: JsonValue): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) result = v;
    else if (top.kind === "array") top.value.push(v);
    else {
      Object.defineProperty(top.value, top.key!, { value: v, enumerable: true, writable: true, configurable: true });
      top.key = null;
    }
  };

  ws();
  for (;;) {
    const top = stack[stack.length - 1];
    // Expect a value (or a key in an object).
    if (top?.kind === "object" && top.key === null) {
      if (text[i] !== '"') fail("expected a key");
      top.key = readString();
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i += 1;
      ws();
    }
    const c = text[i];
    if (c === "[" || c === "{") {
      if (stack.length >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
      i += 1;
      ws();
      const frame: Frame = c === "[" ? { kind: "array", value: [] } : { kind: "object", value: {}, key: null };
      const empty = text[i] === (c === "[" ? "]" : "}");
      if (empty) {
        i += 1;
        put(frame.value);
      } else {
        stack.push(frame);
        continue;
      }
    } else {
      if (i >= n) fail("unexpected end");
      put(readScalar());
    }
    // After a value: close containers or move to the next item.
    for (;;) {
      ws();
      const t = stack[stack.length - 1];
      if (t === undefined) {
        if (i !== n) fail("trailing characters");
        return result!;
      }
      const close = t.kind === "array" ? "]" : "}";
      if (text[i] === ",") {
        i += 1;
        ws();
        break;
      }
      if (text[i] === close) {
        i += 1;
        stack.pop();
        put(t.value);
        continue;
      }
      fail(`expected ',' or '${close}'`);
    }
  }
}

export type PathSegment = { kind: "name"; name: string } | { kind: "index"; index: number } | { kind: "wildcard" };

/**
 * Compiles an RFC 9535 JSONPath of the subset `$`, `.name`, `.*`, `['name']`, `["name"]`, `[n]`,
 * `[*]`. Anything else (descendants `..`, filters, slices, unions, functions) is refused by name.
 */
export function compileJsonPath(path: string): PathSegment[] | { error: string } {
  if (typeof path !== "string" || !path.startsWith("$")) return { error: "must start with $" };
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < path.length) {
    const rest = path.slice(i);
    if (rest.startsWith("..")) return { error: "descendant segments (..) are not supported" };
    if (rest.startsWith(".*")) {
      segments.push({ kind: "wildcard" });
      i += 2;
      continue;
    }
    const dot = /^\.([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)/.exec(rest);
    if (dot !== null) {
      segments.push({ kind: "name", name: dot[1]! });
      i += dot[0].length;
      continue;
    }
    if (rest.startsWith("[*]")) {
      segments.push({ kind: "wildcard" });
      i += 3;
      continue;
    }
    const index = /^\[(-?(?:0|[1-9][0-9]{0,8}))\]/.exec(rest);
    if (index !== null) {
      segments.push({ kind: "index", index: Number(index[1]) });
      i += index[0].length;
      continue;
    }
    const quoted = /^\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/.exec(rest);
    if (quoted !== null) {
      const raw = quoted[1] ?? quoted[2] ?? "";
      if (/\\u/.test(raw)) return { error: "\\u escapes in names are not supported" };
      segments.push({ kind: "name", name: raw.replace(/\\(.)/g, "$1") });
      i += quoted[0].length;
      continue;
    }
    if (rest.startsWith("[?")) return { error: "filter selectors ([?...]) are not supported" };
    if (/^\[[^\]]*:/.test(rest)) return { error: "array slices are not supported" };
    if (/^\[[^\]]*,/.test(rest)) return { error: "unions (several selectors in one []) are not supported" };
    return { error: `unsupported or invalid syntax at ${JSON.stringify(rest.slice(0, 20))} (supported: $ .name ['name'] [n] [*])` };
  }
  return segments;
}

/** The nodes a compiled path selects (RFC 9535 semantics for the supported subset). */
export function selectNodes(root: JsonValue, segments: readonly PathSegment[]): JsonValue[] {
  let nodes: JsonValue[] = [root];
  for (const s of segments) {
    const next: JsonValue[] = [];
    for (const node of nodes) {
      if (s.kind === "name") {
        if (isObject(node) && Object.hasOwn(node, s.name)) next.push(node[s.name]!);
      } else if (s.kind === "index") {
        if (Array.isArray(node)) {
          const k = s.index < 0 ? node.length + s.index : s.index;
          if (k >= 0 && k < node.length) next.push(node[k]!);
        }
      } else if (Array.isArray(node)) next.push(...node);
      else if (isObject(node)) next.push(...Object.values(node));
    }
    nodes = next;
  }
  return nodes;
}

export function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/** A dotted field path relative to an entry ("payer.name", "items.0.x"); leading "$" = from the root. */
export function compileFieldPath(path: string): { fromRoot: boolean; segments: PathSegment[] } | { error: string } {
  if (typeof path !== "string" || path.length === 0) return { error: "must be a non-empty string" };
  if (path.startsWith("$")) {
    const segments = compileJsonPath(path);
    if ("error" in segments) return segments;
    if (segments.some((s) => s.kind === "wildcard")) return { error: "a field must select one value (no wildcards)" };
    return { fromRoot: true, segments };
  }
  const parts = path.split(".");
  if (parts.some((p) => p.length === 0)) return { error: "has an empty segment" };
  return { fromRoot: false, segments: parts.map((p) => (/^(0|[1-9][0-9]{0,8})$/.test(p) ? { kind: "index", index: Number(p) } : { kind: "name", name: p })) };
}

/** Reads one field: a string, a number as written, a boolean as "true"/"false"; null otherwise. */
export function readField(entry: JsonValue, root: JsonValue, path: { fromRoot: boolean; segments: PathSegment[] }): string | null {
  let node: JsonValue | undefined = path.fromRoot ? root : entry;
  for (const s of path.segments) {
    if (node === undefined) return null;
    if (s.kind === "name") node = isObject(node) && Object.hasOwn(node, s.name) ? node[s.name] : undefined;
    else if (s.kind === "index") node = Array.isArray(node) ? node[s.index < 0 ? node.length + s.index : s.index] : isObject(node) ? node[String(s.index)] : undefined;
    else return null;
  }
  if (typeof node === "string") return node;
  if (node instanceof JsonNumber) return node.text;
  if (typeof node === "boolean") return String(node);
  return null;
}
