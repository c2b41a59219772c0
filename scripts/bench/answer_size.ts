// deno-lint-ignore-file no-console
/**
 * Benchmark: what a larger answer costs on the webhook's server stack (the TLS front and
 * `Deno.serve`), without Piggy: the ceiling of `mutate.ts` (`bare_server.ts`, the 3-container
 * pod's AdmissionReview echoed, ~3.6 KB) against the same echo padded to the size of Piggy's
 * `/mutate` answer (`--answer-bytes`, default 7,530), alternately, with `wrk` (1 thread, 50
 * connections). The CPU per request of the two is the part of Piggy's cost that comes from its
 * answer being larger than the ceiling's.
 *
 * Run: `npx deno run -A scripts/bench/answer_size.ts [--answer-bytes 7530] [--seconds 5] [--rounds 3]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { threeContainerReview } from "../../testing/flow.ts";
import { createTestCa } from "../../testing/pki.ts";
import { alternate, ensureWrk, startBareServer } from "./wrk.ts";

const { values } = parseArgs({
  options: {
    "answer-bytes": { type: "string", default: "7530" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    rounds: { type: "string", default: "3" },
  },
});
const args = {
  seconds: Number(values.seconds),
  connections: Number(values.connections),
  rounds: Math.max(1, Number(values.rounds)),
};
ensureWrk();
const body = JSON.stringify(threeContainerReview("bench"));
const ca = createTestCa("piggy-bench");
const serving = ca.issue("bare");

const plain = await startBareServer(serving.certFile, serving.keyFile);
const padded = await startBareServer(serving.certFile, serving.keyFile, values["answer-bytes"]);
try {
  const requests = [{ path: "/mutate", body, headers: { "content-type": "application/json" } }];
  console.log(
    `request body ${body.length} bytes; echo ${body.length} bytes against ` +
      `${values["answer-bytes"]} bytes; wrk -t1 -c${args.connections} -d${args.seconds}s`,
  );
  await alternate(
    { label: "bare JSON echo", port: plain.port, requests, pid: plain.child.pid },
    {
      label: `the same echo padded to ${values["answer-bytes"]} bytes`,
      port: padded.port,
      requests,
      pid: padded.child.pid,
    },
    args,
  );
} finally {
  await Promise.all([plain.stop(), padded.stop()]);
  await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
}
