// Operations endpoints: success rates (PAYMENTS.md).
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "typebox";
import type { Database } from "../db/database.ts";
import { stringifyJson } from "../http/json.ts";
import { sendRendered } from "../http/server.ts";
import type { Clock } from "../kernel/clock.ts";
import { parseTimestampUs } from "../kernel/clock.ts";
import { ApiError } from "../kernel/errors.ts";
import { successRates, type GroupBy } from "./success-rates.ts";

const RatesQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ maxLength: 64 })),
    to: Type.Optional(Type.String({ maxLength: 64 })),
    group_by: Type.Optional(Type.Union([Type.Literal("channel"), Type.Literal("method"), Type.Literal("day")])),
  },
  { additionalProperties: false },
);

const WINDOW_US_MAX = 366n * 86_400_000_000n;

export function registerOpsRoutes(app: FastifyInstance, deps: { db: Database; clock: Clock }): void {
  app.get(
    "/v1/stats/success-rates",
    { config: { scope: "stats:read" }, schema: { tags: ["stats"], summary: "Effective success rates of pay-in and payout attempts", querystring: RatesQuery } },
    async (request, reply) => {
      const q = request.query as Static<typeof RatesQuery>;
      const parse = (value: string, param: string) => {
        const us = parseTimestampUs(value);
        if (us === null) throw new ApiError("validation_failed", `${param} must be an RFC 3339 timestamp with an offset`, param);
        return us;
      };
      // "Current as of the request": the default window includes an attempt made this microsecond.
      const to = q.to !== undefined ? parse(q.to, "to") : deps.clock.nowUs() + 1n;
      const from = q.from !== undefined ? parse(q.from, "from") : to - 86_400_000_000n;
      if (from >= to) throw new ApiError("validation_failed", "from must be before to", "from");
      if (to - from > WINDOW_US_MAX) throw new ApiError("validation_failed", "the window may span at most 366 days", "from");
      const rates = await successRates(deps.db, from, to, (q.group_by ?? "channel") as GroupBy);
      return sendRendered(reply, { status: 200, body: stringifyJson(rates) });
    },
  );
}
