// Payments through the HTTP API with the simulator channel: clients that each create a payment
// and pay it (two requests, the second answered after the channel replied and the ledger posted),
// as many at once as `concurrency`. The figure is completed payments per second.
import { Agent, request } from "node:http";

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(url: string, path: string, body: string, auth: Record<string, string>): Promise<{ status: number; text: string }> {
  const target = new URL(path, url);
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, hostname: target.hostname, port: target.port, path: target.pathname, method: "POST", headers: { ...auth, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Creates the merchant account the payments credit. */
export async function setUpMerchant(url: string, auth: Record<string, string>): Promise<void> {
  const res = await post(url, "/v1/ledger/accounts", JSON.stringify({ id: "wallet:bench", currency: "CNY" }), auth);
  if (res.status !== 201 && res.status !== 200) throw new Error(`merchant account: ${res.status} ${res.text}`);
}

export async function paymentsThroughput(url: string, auth: Record<string, string>, seconds: number, concurrency: number): Promise<{ paymentsPerSecond: number; p99Ms: number }> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let completed = 0;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const created = await post(url, "/v1/payments", '{"amount":250000,"currency":"CNY","merchant_account_id":"wallet:bench","methods":["simulator"]}', auth);
      if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text}`);
      const id = (JSON.parse(created.text) as { id: string }).id;
      const paid = await post(url, `/v1/payments/${id}/attempts`, '{"method":"simulator","simulator":{"outcome":"succeeded"}}', auth);
      if (paid.status !== 201 || !paid.text.includes('"status":"succeeded"')) throw new Error(`attempt: ${paid.status} ${paid.text}`);
      latencies.push(performance.now() - t0);
      completed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { paymentsPerSecond: completed / elapsed, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}
