// One of several engine processes sharing a PostgreSQL database (bench/run.ts starts them):
// opens the engine, warms it up, reports "ready", waits for "go" on stdin, posts its transfers and
// prints {"transfers", "seconds"} as one JSON line.
import { createInterface } from "node:readline";
import { engineThroughput, openEngine } from "./engine.ts";

const [url, totalText, hotText, warmText] = process.argv.slice(2);
const total = Number(totalText);
const bench = await openEngine(url!);
await engineThroughput(bench.engine, Number(warmText), 1000, hotText === "hot");
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line !== "go") continue;
  const started = performance.now();
  const tps = await engineThroughput(bench.engine, total, 1000, hotText === "hot");
  process.stdout.write(`${JSON.stringify({ transfers: total, seconds: (performance.now() - started) / 1000, tps })}\n`);
  break;
}
await bench.close();
process.exit(0);
