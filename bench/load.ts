// A lean closed-loop HTTP/1.1 load generator for small requests: `connections` keep-alive sockets,
// each with one request outstanding, written and read straight off `net` sockets. It exists
// because the load generator shares this machine's two cores with the server it measures:
// autocannon spent 32–39 µs of CPU per request (its JavaScript HTTP parser, an object per request,
// a histogram per request), as much as the echo server it loaded, so the echo ceiling and Tally's
// figures measured both programs at once. This one reads only what it needs from each answer (the
// status, the end of the headers, Content-Length) and records latencies in a flat array.
// Answers must carry Content-Length (Fastify's JSON answers do); a chunked or closed answer counts
// as an error, and the socket is replaced.
import { connect, type Socket } from "node:net";

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  readonly connections: number;
  readonly seconds: number;
  /** The next request's body (JSON text); called once per request. */
  readonly body: () => string;
  readonly headers?: Record<string, string>;
}

export interface LoadResult {
  /** Answers completed within the run. */
  readonly requests: number;
  readonly seconds: number;
  /** Answers per second over the run. */
  readonly rps: number;
  readonly non2xx: number;
  /** Sockets that failed or closed with a request outstanding, and answers that could not be read. */
  readonly errors: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = Buffer.from("\r\ncontent-length:");

/** Where `needle` starts in `haystack` at or after `from`, comparing ASCII letters without case. */
function indexOfIgnoringCase(haystack: Buffer, needle: Buffer, from: number, end: number): number {
  const first = needle[2]!; // the needle begins with CRLF
  outer: for (let i = haystack.indexOf(13, from); i !== -1 && i + needle.length <= end; i = haystack.indexOf(13, i + 1)) {
    if (haystack[i + 1] !== 10 || (haystack[i + 2]! | 0x20) !== first) continue;
    for (let j = 3; j < needle.length; j++) {
      const c = haystack[i + j]!;
      if ((c >= 65 && c <= 90 ? c | 0x20 : c) !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** The value of p (0..1) among sorted values, nearest rank. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const port = Number(target.port || 80);
  // A URL's hostname keeps an IPv6 address in brackets ("[::1]"); a socket wants it without.
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  let head = `POST ${options.path} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\n`;
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (/[\r\n]/.test(name + value)) throw new Error(`header ${name} holds a line break`);
    head += `${name}: ${value}\r\n`;
  }
  head += "Content-Length: ";

  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let non2xx = 0;
  let errors = 0;
  let running = true;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const sockets = new Set<Socket>();
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let open = 0;

  const record = (ms: number) => {
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = ms;
  };

  const startConnection = () => {
    open++;
    const socket = connect({ port, host, noDelay: true });
    sockets.add(socket);
    let pending: Buffer | null = null;
    let sentAt = 0;
    let outstanding = false;
    const send = () => {
      const body = options.body();
      sentAt = performance.now();
      outstanding = true;
      socket.write(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    socket.on("connect", send);
    socket.on("data", (chunk: Buffer) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      for (;;) {
        const headerEnd = buf.indexOf(HEADER_END);
        if (headerEnd === -1) {
          pending = buf;
          return;
        }
        const at = indexOfIgnoringCase(buf, CONTENT_LENGTH, 0, headerEnd + 2);
        let length = -1;
        if (at !== -1) {
          length = 0;
          for (let i = at + CONTENT_LENGTH.length; i < headerEnd; i++) {
            const c = buf[i]!;
            if (c === 32) continue;
            if (c < 48 || c > 57) break;
            length = length * 10 + (c - 48);
          }
        }
        if (length < 0 || buf[9]! < 49 || buf[9]! > 53) {
          // No Content-Length, or no status line: this client cannot tell where the answer ends.
          errors++;
          outstanding = false;
          socket.destroy();
          return;
        }
        const total = headerEnd + 4 + length;
        if (buf.length < total) {
          pending = buf;
          return;
        }
        const now = performance.now();
        if (outstanding && now <= deadline) {
          record(now - sentAt);
          if (buf[9] !== 50) non2xx++; // the status's first digit, "HTTP/1.1 2xx"
        }
        outstanding = false;
        buf = buf.subarray(total);
        if (running && now < deadline) send();
        else {
          socket.end();
          return;
        }
        if (buf.length === 0) return;
      }
    });
    socket.on("error", () => {
      // Counted once, in "close" below.
    });
    socket.on("close", (hadError: boolean) => {
      sockets.delete(socket);
      open--;
      const now = performance.now();
      if ((outstanding || hadError) && running && now <= deadline) errors++;
      // A socket that failed is replaced after a pause, so a server that refuses connections
      // is not dialled in a tight loop.
      if (running && now < deadline) {
        open++; // the replacement, counted from now so the run cannot end without it
        setTimeout(() => {
          open--;
          if (running && performance.now() < deadline) startConnection();
          else if (open === 0) finish();
        }, hadError ? 10 : 0);
      } else if (open === 0) finish();
    });
  };

  for (let i = 0; i < options.connections; i++) startConnection();
  const timer = setTimeout(() => {
    running = false;
    // Answers still outstanding at the deadline are not counted; their sockets are closed.
    for (const s of sockets) s.destroy();
    if (open === 0) finish();
  }, Math.max(0, deadline - performance.now()) + 1);
  await done;
  clearTimeout(timer);
  const seconds = Math.min(performance.now(), deadline) - started;
  const sorted = latencies.subarray(0, count).sort();
  return {
    requests: count,
    seconds: seconds / 1000,
    rps: count / (seconds / 1000),
    non2xx,
    errors,
    latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: count ? sorted[count - 1]! : 0 },
  };
}
