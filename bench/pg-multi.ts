// Several Tally engine processes on one PostgreSQL database, posting at the same time: the
// combined transfers per second (all transfers over the time the slowest process took). Each
// process first posts `warmUp` transfers of its own, so that it is measured warm, as the
// single-process figure is (its engine has posted the earlier runs' transfers).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export async function multiProcessPostgres(url: string, processes: number, transfersEach: number, hot: boolean, warmUp: number): Promise<number> {
  const children = Array.from({ length: processes }, () =>
    spawn(process.execPath, ["--import", "tsx", "bench/pg-process.ts", url, String(transfersEach), hot ? "hot" : "uniform", String(warmUp)], {
      stdio: ["pipe", "pipe", "inherit"],
    }),
  );
  const lines = children.map((c) => createInterface({ input: c.stdout! })[Symbol.asyncIterator]());
  for (const l of lines) {
    const first = await l.next();
    if (first.value !== "ready") throw new Error(`engine process did not start: ${first.value}`);
  }
  for (const c of children) c.stdin!.write("go\n");
  const results = await Promise.all(lines.map(async (l) => JSON.parse((await l.next()).value as string) as { transfers: number; seconds: number }));
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))));
  const transfers = results.reduce((n, r) => n + r.transfers, 0);
  return transfers / Math.max(...results.map((r) => r.seconds));
}
