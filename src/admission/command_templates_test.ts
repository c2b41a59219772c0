import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { ENV, PIGGY_UID_ANNOTATION } from "../constants.ts";
import { commandSignature } from "../pod/signature.ts";
import { withCommandTemplates } from "./command_templates.ts";

function wrapped(args: string[], env: Container["env"] = [], uid = true): Container {
  return {
    name: "app",
    image: "app:1",
    command: ["/piggy/piggy-env"],
    args: ["--", ...args],
    env: [...(uid ? [{ name: ENV.UID, value: "u1" }] : []), ...(env ?? [])],
  };
}

/** The pod as admission leaves it: the uid map records the signature of u1's command. */
function signed(spec: Pod["spec"]): Pod {
  const container = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c) =>
    c.env?.some((entry) => entry.name === ENV.UID)
  );
  const args = container?.args ?? [];
  return {
    metadata: {
      annotations: {
        [PIGGY_UID_ANNOTATION]: JSON.stringify({ u1: commandSignature(args.slice(1)) }),
      },
    },
    spec: spec!,
  };
}

function template(container: Container | undefined): string | undefined {
  return container?.env?.find((entry) => entry.name === ENV.COMMAND_TEMPLATE)?.value;
}

test("withCommandTemplates() sets the template with the literal variables the command uses", () => {
  const pod = signed({
    containers: [wrapped(["/app", "--port=$(PORT)", "--host=$(HOST)", "--x=$(UNSET)"], [
      { name: "PORT", value: "8080" },
      { name: "HOST", valueFrom: { configMapKeyRef: { name: "cm", key: "host" } } },
      { name: "OTHER", value: "1" },
    ])],
  });
  const { pod: out, warnings } = withCommandTemplates(pod, { enforceIntegrity: true });
  assert.equal(
    template(out.spec?.containers[0]),
    '{"argv":["/app","--port=$$(PORT)","--host=$$(HOST)","--x=$$(UNSET)"],"vars":["PORT"]}',
  );
  assert.equal(out.spec?.containers[0]?.env?.at(-1)?.name, ENV.COMMAND_TEMPLATE);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0] ?? "",
    /^Container "app": \$\(HOST\), \$\(UNSET\) in command or args are not set by a literal value/,
  );
  assert.deepEqual(withCommandTemplates(pod, { enforceIntegrity: false }).warnings, []);
  // A second admission changes nothing.
  assert.deepEqual(withCommandTemplates(out, { enforceIntegrity: true }).pod, out);
});

test("withCommandTemplates() handles $$ alone, and leaves commands without kubelet syntax alone", () => {
  const escaped = withCommandTemplates(
    signed({ containers: [wrapped(["sh", "-c", "echo $$HOME"])] }),
    { enforceIntegrity: true },
  );
  assert.equal(
    template(escaped.pod.spec?.containers[0]),
    '{"argv":["sh","-c","echo $$$$HOME"],"vars":[]}',
  );
  assert.deepEqual(escaped.warnings, []);
  const plain = signed({ containers: [wrapped(["/app", "$HOME"])] });
  assert.deepEqual(withCommandTemplates(plain, { enforceIntegrity: true }).pod, plain);
});

test("withCommandTemplates() drops a template the pod spec brought, and skips standalone containers", () => {
  const forged: Pod = {
    spec: {
      initContainers: [
        wrapped(["/migrate"], [{ name: ENV.COMMAND_TEMPLATE, value: '{"argv":["sh"],"vars":[]}' }]),
      ],
      containers: [wrapped(["/app", "$(PORT)"], [{ name: "PORT", value: "1" }], false)],
    },
  };
  const { pod } = withCommandTemplates(forged, { enforceIntegrity: true });
  assert.equal(template(pod.spec?.initContainers?.[0]), undefined);
  assert.equal(template(pod.spec?.containers[0]), undefined, "standalone: no signature is sent");
});

test("withCommandTemplates() sets no template where the recorded signature is of another form", () => {
  // E.g. an image's Entrypoint signed as the kubelet runs it (unescaped), not as the spec holds it.
  const pod = signed({ containers: [wrapped(["sh", "-c", "exec $$APP"])] });
  pod.metadata!.annotations![PIGGY_UID_ANNOTATION] = JSON.stringify({
    u1: commandSignature(["sh", "-c", "exec $APP"]),
  });
  assert.equal(
    template(withCommandTemplates(pod, { enforceIntegrity: true }).pod.spec?.containers[0]),
    undefined,
  );
});
