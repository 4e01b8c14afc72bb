declare module "autocannon" {
  interface Result {
    requests: { average: number; mean: number; total: number };
    latency: { p50: number; p99: number; p90: number; average: number; max: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    duration: number;
    "2xx": number;
  }
  function autocannon(options: Record<string, unknown>): Promise<Result>;
  export default autocannon;
}
