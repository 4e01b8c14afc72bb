// The bench's lean load generator (bench/load.ts): what it counts, and that bad answers and
// failing servers end the run with errors counted instead of hanging or counting them as answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { load } from "../../bench/load.ts";

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function close(server: Server): Promise<void> {
  (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (text += d));
    req.on("end", () => resolve(text));
  });
}

test("counts answers, sends each request's own body and headers, and measures latency", async () => {
  const seen: string[] = [];
  const auth = new Set<string | undefined>();
  let answered = 0;
  const server = createHttpServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    seen.push((JSON.parse(body) as { id: string }).id);
    auth.add(req.headers.authorization);
    assert.equal(req.headers["content-type"], "application/json");
    res.writeHead(201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
    answered++;
  });
  const url = await listen(server);
  let n = 0;
  try {
    const result = await load({ url, path: "/t", connections: 4, seconds: 0.5, body: () => `{"id":"r${n++}","note":"日本"}`, headers: { authorization: "Bearer k" } });
    assert.equal(result.errors, 0);
    assert.equal(result.non2xx, 0);
    assert.ok(result.requests > 20, `${result.requests} answers in 0.5 s`);
    // Answers still outstanding at the deadline are not counted: at most one per connection.
    assert.ok(result.requests <= answered && answered <= result.requests + 4, `${result.requests} counted, ${answered} answered`);
    assert.equal(new Set(seen).size, seen.length, "every request carried its own body");
    assert.deepEqual([...auth], ["Bearer k"]);
    assert.ok(Math.abs(result.rps - result.requests / result.seconds) < 1e-6);
    assert.ok(result.seconds >= 0.49 && result.seconds < 0.6, `ran ${result.seconds} s`);
    const { p50, p99, max } = result.latencyMs;
    assert.ok(p50 > 0 && p50 <= p99 && p99 <= max, `p50 ${p50}, p99 ${p99}, max ${max}`);
  } finally {
    await close(server);
  }
});

test("answers other than 2xx are counted as answers and as non-2xx", async () => {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(404, { "content-type": "application/json", "content-length": 21 }).end('{"error":"not_found"}'));
  });
  const url = await listen(server);
  try {
    const result = await load({ url, path: "/missing", connections: 2, seconds: 0.3, body: () => "{}" });
    assert.ok(result.requests > 0);
    assert.equal(result.non2xx, result.requests);
    assert.equal(result.errors, 0);
  } finally {
    await close(server);
  }
});

test("an answer split across packets, with its header names in capitals, is read whole", async () => {
  const server = createNetServer((socket: Socket) => {
    let buffered = "";
    socket.on("data", (d) => {
      buffered += d.toString("latin1");
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(buffered)![1]);
      if (buffered.length < end + 4 + length) return;
      buffered = buffered.slice(end + 4 + length);
      socket.write("HTTP/1.1 200 OK\r\nX-Note: content-length: 1\r\nContent-Length:  11\r\n");
      setTimeout(() => socket.write("\r\n{\"ok\":"), 5);
      setTimeout(() => socket.write("true}"), 10);
    });
  });
  const url = await listen(server);
  try {
    const result = await load({ url, path: "/", connections: 1, seconds: 0.3, body: () => '{"a":1}' });
    assert.ok(result.requests >= 5, `${result.requests} answers`);
    assert.equal(result.errors, 0);
    assert.ok(result.latencyMs.p50 >= 9, `p50 ${result.latencyMs.p50} ms for an answer finished after 10 ms`);
  } finally {
    await close(server);
  }
});

test("an answer without Content-Length is an error, not an answer, and the run still ends", async () => {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"chunked":');
      res.end("true}");
    });
  });
  const url = await listen(server);
  try {
    const result = await load({ url, path: "/", connections: 2, seconds: 0.3, body: () => "{}" });
    assert.equal(result.requests, 0);
    assert.ok(result.errors > 0);
  } finally {
    await close(server);
  }
});

test("a server that drops connections or refuses them ends the run with errors counted", async () => {
  const dropping = createNetServer((socket: Socket) => socket.once("data", () => socket.destroy()));
  const url = await listen(dropping);
  try {
    const result = await load({ url, path: "/", connections: 3, seconds: 0.3, body: () => "{}" });
    assert.equal(result.requests, 0);
    assert.ok(result.errors >= 3, `${result.errors} errors`);
  } finally {
    await close(dropping);
  }
  // The port is closed now: every connection is refused.
  const refused = await load({ url, path: "/", connections: 2, seconds: 0.2, body: () => "{}" });
  assert.equal(refused.requests, 0);
  assert.ok(refused.errors >= 2);
  assert.ok(refused.seconds < 0.3);
});

test("a header holding a line break is refused before anything is sent", async () => {
  await assert.rejects(
    load({ url: "http://127.0.0.1:9", path: "/", connections: 1, seconds: 0.1, body: () => "{}", headers: { "x-a": "b\r\nx-injected: 1" } }),
    /line break/,
  );
});

test("an IPv6 address in the URL (in brackets) is connected to", async () => {
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": "2" }).end("{}"));
  });
  await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
  try {
    const url = `http://[::1]:${(server.address() as { port: number }).port}`;
    const result = await load({ url, path: "/", connections: 2, seconds: 0.3, body: () => "{}" });
    assert.equal(result.errors, 0);
    assert.ok(result.requests > 0, `${result.requests} answers`);
  } finally {
    await close(server);
  }
});
