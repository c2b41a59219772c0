// deno-lint-ignore-file no-console
/**
 * `deno task demo`: Piggy end to end on one machine, in a few seconds, with nothing left running.
 *
 * 1. Starts the local Kubernetes API and AWS stand-ins (testing/), seeds AWS from
 *    demo/aws.yaml, and starts the real webhook (cli/webhook.ts, the shipped permission flags)
 *    over HTTPS with a fresh CA, configured as the Helm chart configures it.
 * 2. For each manifest of demo/k8s/: stores its Secrets and ServiceAccounts in the Kubernetes
 *    stand-in, submits each Pod to `/mutate` as an AdmissionReview, prints what the returned JSON
 *    Patch changed (a diff of the pod before and after), and checks that admitting the result again
 *    returns no patch.
 * 3. Starts every wrapped container as the kubelet would: its command (`/piggy/piggy-env -- …`)
 *    through the real launcher (cli/piggy_env.ts), with the env of the mutated spec and a pod-bound
 *    token; the demo app prints the values it received, checked against demo/aws.yaml. Once, it
 *    also runs another command with the same token and shows that the webhook refuses it.
 *
 * What differs from a cluster is printed as a "local run" note. Exit code 0 when every pod was
 * mutated and every app printed its values; 1 with a message (and the webhook's last log lines)
 * otherwise. The last lines name the PIDs it started; all of them have exited by then.
 * `DEMO_AWS_DATA` names another AWS data file (tests use it to check failures).
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { loadAwsSeed, loadManifests } from "../testing/demo_data.ts";
import {
  bold,
  done,
  red,
  runPod,
  showFailure,
  startServices,
  storeObject,
} from "../testing/demo_story.ts";
import { Running } from "../testing/running.ts";

/** The demo gives up (and cleans up) after this long. */
const WATCHDOG_MS = 120_000;

async function run(running: Running): Promise<void> {
  const seed = loadAwsSeed(Deno.env.get("DEMO_AWS_DATA") || undefined);
  const manifests = loadManifests();
  const pods = manifests.flatMap((manifest) => manifest.objects).filter((o) => o.kind === "Pod");
  console.log(
    bold(`Piggy demo: ${pods.length} pods of demo/k8s/, AWS data of demo/aws.yaml (fake values)`),
  );
  const context = await startServices(seed, running);
  for (const manifest of manifests) {
    console.log("");
    console.log(bold(`── ${manifest.file}`));
    for (const object of manifest.objects) {
      if (object.kind === "Pod") await runPod(context, object as Pod);
      else storeObject(context, object);
    }
  }
  console.log("");
}

const started = performance.now();
const running = new Running();
const failure = await running.guard(() => run(running), WATCHDOG_MS);
if (failure) showFailure(failure, running);
const cleanupFailures = await running.stopAll();
const seconds = ((performance.now() - started) / 1000).toFixed(1);
for (const line of cleanupFailures) console.log(`${red("✖")} cleanup failed: ${line}`);
console.log(`processes started: ${running.pids.join(" ")}`);
if (failure || cleanupFailures.length > 0) Deno.exit(1);
done(`demo finished in ${seconds} s; the webhook and the stand-ins are stopped`);
Deno.exit(0);
