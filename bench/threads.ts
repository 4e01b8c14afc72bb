// CPU time of a process's threads, from /proc (Linux): where a figure's time goes. The main thread
// has the process's own id; of the others, the one that used the most CPU over a measured run is
// the engine's writer thread (SQLite), and the rest are V8's helper threads (garbage collection,
// compilation) and libuv's pool. Elsewhere than Linux there is no figure.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export type ThreadTimes = Map<string, number>;

/** User + system CPU seconds per thread id of process `pid` (this one by default), or null where /proc is not there. */
export function threadTimes(pid: number = process.pid): ThreadTimes | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out: ThreadTimes = new Map();
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

export interface CpuSplit {
  /** Microseconds of CPU per unit of work. */
  readonly main: number;
  readonly busiestOther: number;
  readonly rest: number;
}

/**
 * CPU per unit of work between two snapshots of process `pid`'s threads (this one by default),
 * split into the main thread, the busiest other thread and the rest.
 */
export function cpuSplit(before: ThreadTimes | null, after: ThreadTimes | null, units: number, pid: number = process.pid): CpuSplit | null {
  if (!before || !after || units <= 0) return null;
  const main = String(pid);
  let mainSeconds = 0;
  const others: number[] = [];
  for (const [tid, seconds] of after) {
    const used = seconds - (before.get(tid) ?? 0);
    if (tid === main) mainSeconds = used;
    else others.push(used);
  }
  others.sort((a, b) => b - a);
  const busiest = others[0] ?? 0;
  const rest = others.slice(1).reduce((a, b) => a + b, 0);
  const perUnit = (seconds: number) => (seconds * 1e6) / units;
  return { main: perUnit(mainSeconds), busiestOther: perUnit(busiest), rest: perUnit(rest) };
}

/**
 * Nanoseconds the main thread of process `pid` has spent on a core, and waiting for one while
 * runnable, since it started (`/proc/<pid>/task/<pid>/schedstat`); null where that is not there.
 * Over a run, running time against wall time tells a main thread that is short of CPU (running
 * nearly all the time, or waiting for a core) from one that sleeps, waiting on other threads.
 */
export function mainThreadSchedule(pid: number = process.pid): { runningNs: number; waitingNs: number } | null {
  try {
    const [running, waiting] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").trim().split(" ");
    const runningNs = Number(running);
    const waitingNs = Number(waiting);
    return Number.isFinite(runningNs) && Number.isFinite(waitingNs) ? { runningNs, waitingNs } : null;
  } catch {
    return null;
  }
}
