// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format for GET /metrics. Services stay plain; wiring code records into this.

type Labels = Record<string, string>;

const labelKeyCache = new Map<string, string>();
const LABEL_KEY_CACHE_MAX = 10_000;

/** The rendered label set, cached: the same few label sets are observed on every request. */
function labelKey(labels: Labels): string {
  let composite = "";
  for (const k in labels) composite += `${k}\u0001${labels[k]}\u0002`;
  let key = labelKeyCache.get(composite);
  if (key === undefined) {
    key = renderLabels(labels);
    if (labelKeyCache.size < LABEL_KEY_CACHE_MAX) labelKeyCache.set(composite, key);
  }
  return key;
}

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",");
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${v}`);
    return lines.join("\n");
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  private collector?: () => Array<[Labels, number]>;
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  /** Reads the value when /metrics is scraped instead of keeping it up to date. */
  collect(fn: () => Array<[Labels, number]> | number): void {
    this.collector = () => {
      const v = fn();
      return typeof v === "number" ? [[{}, v]] : v;
    };
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    const values = new Map(this.values);
    if (this.collector) for (const [labels, v] of this.collector()) values.set(labelKey(labels), v);
    if (values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${v}`);
    return lines.join("\n");
  }
}

/** One label set of a histogram: observing through it skips finding the set by its labels. */
export class HistogramSeries {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(private readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length).fill(0);
  }
  observe(value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, HistogramSeries>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    this.labelled(labels).observe(value);
  }
  /** The series of a label set, for callers that observe the same set many times. */
  labelled(labels: Labels): HistogramSeries {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = new HistogramSeries(this.buckets);
      this.series.set(key, s);
    }
    return s;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const prefix = k ? `${k},` : "";
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{${prefix}le="${b}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${k ? `{${k}}` : ""} ${s.sum}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ""} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join("\n") + "\n";
  }
  private add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
}

/** The metrics every Tally process exports. */
export function coreMetrics(registry: MetricsRegistry) {
  return {
    httpDuration: registry.histogram(
      "tally_http_request_duration_seconds",
      "HTTP request latency by route and status class",
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ),
    transfersPosted: registry.counter("tally_ledger_transfers_posted_total", "Transfers committed to the ledger"),
    holdsExpired: registry.counter("tally_ledger_holds_expired_total", "Holds released by expiry"),
    batchSize: registry.histogram(
      "tally_ledger_batch_transfers",
      "Transfers per engine batch (group commit size)",
      [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8190],
    ),
    batchDuration: registry.histogram(
      "tally_ledger_batch_duration_seconds",
      "Time to apply and commit one engine batch",
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    ),
    queueDepth: registry.gauge("tally_ledger_engine_queue_transfers", "Transfers waiting for the engine"),
  };
}
export type CoreMetrics = ReturnType<typeof coreMetrics>;
