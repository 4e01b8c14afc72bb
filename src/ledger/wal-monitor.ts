// Makes the SQLite writer's WAL checkpoints visible. The writer copies the write-ahead log into
// the database file about every 1000 frames (sqlite-writer-worker.ts); a checkpoint that fails,
// or one that cannot copy frames because a reader still holds an old snapshot, loses nothing, but
// the WAL then grows without bound, every read walks a longer log, and the disk fills in the end.
// Quietly, unless someone looks: this turns each checkpoint's report into metrics and log lines.
import type { Logger } from "pino";
import type { MetricsRegistry } from "../ops/metrics.ts";
import type { WalReport } from "./sqlite-writer-worker.ts";

export interface WalMonitorOptions {
  readonly logger: Logger;
  readonly registry: MetricsRegistry;
  /** Frames not yet copied into the database file from which a warning is logged. */
  readonly backlogWarnFrames: number;
  readonly nowMs: () => number;
  /** While a condition lasts, it is logged again at most this often. */
  readonly repeatLogMs?: number;
}

export class WalMonitor {
  /** Frames in the WAL after the last checkpoint. */
  frames = 0;
  /** Frames of the WAL not copied into the database file after the last checkpoint. */
  backlog = 0;
  failures = 0;
  private failing = false;
  private behind = false;
  private failureLoggedAt = -Infinity;
  private backlogLoggedAt = -Infinity;
  private readonly failuresTotal;
  private readonly repeatLogMs: number;

  constructor(private readonly options: WalMonitorOptions) {
    this.repeatLogMs = options.repeatLogMs ?? 60_000;
    const { registry } = options;
    registry.gauge("tally_ledger_sqlite_wal_frames", "Frames in the SQLite write-ahead log after the last checkpoint").collect(() => this.frames);
    registry
      .gauge("tally_ledger_sqlite_wal_backlog_frames", "Frames of the SQLite write-ahead log not yet copied into the database file")
      .collect(() => this.backlog);
    this.failuresTotal = registry.counter("tally_ledger_sqlite_checkpoint_failures_total", "SQLite WAL checkpoints that failed (the frames stay in the log)");
  }

  report(wal: WalReport["wal"]): void {
    const { logger } = this.options;
    const now = this.options.nowMs();
    if (wal.frames >= 0) {
      this.frames = wal.frames;
      this.backlog = Math.max(0, wal.frames - wal.checkpointed);
    }
    if (wal.error !== null) {
      this.failures++;
      this.failuresTotal.inc();
      if (!this.failing || now - this.failureLoggedAt >= this.repeatLogMs) {
        logger.error(
          { walFrames: this.frames, walBacklogFrames: this.backlog, checkpointFailures: this.failures, error: wal.error },
          "SQLite WAL checkpoint failed: nothing is lost, but the write-ahead log grows until a checkpoint succeeds",
        );
        this.failureLoggedAt = now;
      }
      this.failing = true;
      return;
    }
    if (this.failing) {
      logger.info({ walFrames: this.frames, walBacklogFrames: this.backlog, checkpointFailures: this.failures }, "SQLite WAL checkpoints succeed again");
      this.failing = false;
    }
    if (this.backlog >= this.options.backlogWarnFrames) {
      if (!this.behind || now - this.backlogLoggedAt >= this.repeatLogMs) {
        logger.warn(
          { walFrames: this.frames, walBacklogFrames: this.backlog },
          "SQLite WAL checkpoints cannot keep up: frames stay in the write-ahead log while a reader holds an old snapshot (a long read transaction?)",
        );
        this.backlogLoggedAt = now;
      }
      this.behind = true;
    } else if (this.behind) {
      logger.info({ walFrames: this.frames, walBacklogFrames: this.backlog }, "SQLite WAL checkpoints have caught up");
      this.behind = false;
    }
  }
}
