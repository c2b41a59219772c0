// deno-lint-ignore-file no-console
/**
 * The benchmark ceiling: a bare `Deno.serve` HTTPS handler that parses the JSON body and
 * re-serialises it, nothing else. Prints its port on stdout.
 *
 * @module
 */

const [certFile, keyFile] = Deno.args;
if (!certFile || !keyFile) throw new Error("usage: bare_server.ts CERT KEY");
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  cert: Deno.readTextFileSync(certFile),
  key: Deno.readTextFileSync(keyFile),
  onListen: ({ port }) => console.log(port),
}, async (request) => {
  const body = await request.json();
  return new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
});
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
