// The HTTP ceiling: a bare Fastify server that echoes a JSON body, run in its own process.
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.post("/echo", async (request) => request.body);
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
process.stdout.write(`${address}\n`);
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
