// deno-lint-ignore-file no-console
/**
 * Prints the demo manifests (demo/k8s/*.yaml) as one multi-document YAML stream for
 * `kubectl apply -f -`, with `AWS_ENDPOINT_URL` added to the containers of standalone pods so that
 * their launcher reads LocalStack instead of AWS (in proxy mode only the webhook talks to AWS, and
 * the Helm release gets the endpoint through its `env` values). Used by scripts/dev.sh.
 *
 * ```sh
 * deno run -A scripts/dev/render_manifests.ts --aws-endpoint http://localstack.localstack.svc.cluster.local:4566
 * ```
 *
 * Without `--aws-endpoint` the manifests are printed unchanged (for a real AWS account).
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { stringify } from "yaml";
import {
  type DemoManifest,
  type KubeObject,
  loadManifests,
  withAwsEndpoint,
} from "../../testing/demo_data.ts";

/**
 * Renders the manifests as a YAML stream, each document preceded by a `# Source:` comment.
 *
 * @param manifests the demo manifests
 * @param awsEndpoint endpoint for standalone pods; unchanged manifests when empty
 */
export function renderManifests(manifests: DemoManifest[], awsEndpoint = ""): string {
  const documents: string[] = [];
  for (const manifest of manifests) {
    for (const object of manifest.objects) {
      const rendered: KubeObject = object.kind === "Pod" && awsEndpoint !== ""
        ? withAwsEndpoint(object as Pod, awsEndpoint) as KubeObject
        : object;
      documents.push(`# Source: ${manifest.file}\n${stringify(rendered, { lineWidth: 0 })}`);
    }
  }
  return documents.join("---\n");
}

if (import.meta.main) {
  const index = Deno.args.indexOf("--aws-endpoint");
  const endpoint = index === -1 ? "" : Deno.args[index + 1] ?? "";
  if (index !== -1 && !/^https?:\/\//.test(endpoint)) {
    console.error("Usage: render_manifests.ts [--aws-endpoint http(s)://host:port]");
    Deno.exit(2);
  }
  console.log(renderManifests(loadManifests(), endpoint).trimEnd());
}
