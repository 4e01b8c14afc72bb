// Small helpers for benchmark figures: medians of repeated runs with their spread.

export interface Figure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number[];
}

export function figure(runs: number[]): Figure {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, runs };
}

export async function repeat(times: number, run: () => Promise<number>): Promise<Figure> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await run());
  return figure(values);
}

export function fmt(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  return n.toFixed(2);
}
