// A closed-loop HTTP load: `connections` clients, each sending one request and waiting for its
// answer before the next, over keep-alive connections with Node's own HTTP client. Used for the
// batch endpoint: autocannon parses responses in JavaScript, and with 2000 results per answer
// (~80 KB) it took two thirds of a core of the two, against a sixth for this client.
import { Agent, request } from "node:http";

export interface ClosedLoopResult {
  readonly requests: number;
  readonly seconds: number;
  /** Answers with a status other than 2xx. */
  readonly non2xx: number;
}

export async function closedLoop(url: string, connections: number, seconds: number, body: () => string, headers: Record<string, string>): Promise<ClosedLoopResult> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const post = (text: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          agent, host: target.hostname, port: target.port, path: target.pathname, method: "POST",
          headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(text);
    });
  let requests = 0;
  let non2xx = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < deadline) {
          const status = await post(body());
          requests++;
          if (status < 200 || status > 299) non2xx++;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { requests, seconds: (performance.now() - started) / 1000, non2xx };
}
